"""Run configurations: defaults, every invalid value named, YAML round trips, fuzzing the loader."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insitu.algorithms import algorithm_names
from insitu.data import DATASET_NAMES
from insitu.devices import DeviceParams, device_names, get_device
from insitu.energy import profile_names
from insitu.errors import ConfigError, UnknownNameError
from insitu.experiments import TrainConfig, load_config, make_config
from insitu.experiments.config import PeripheryConfig, UpdateConfig, read_config_file
from insitu.hardware import Activation, CellKind, PairMode, UpdateMode

TOP_FIELDS = sorted(TrainConfig.model_fields)
PERIPHERY_FIELDS = sorted(PeripheryConfig.model_fields)
UPDATE_FIELDS = sorted(UpdateConfig.model_fields)
DEVICE_FIELDS = sorted(f.name for f in dataclasses.fields(DeviceParams))


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


# -- defaults ----------------------------------------------------------------------------------


def test_defaults_are_valid() -> None:
    cfg = make_config({})
    assert cfg == TrainConfig()
    assert cfg.algorithm == "analog-sgd"
    assert cfg.device == "ecram-organic"
    assert cfg.dataset == "digits"
    assert cfg.device_params() == get_device("ecram-organic")
    chip = cfg.chip_config(64, 10)
    assert chip.layers == (64, *cfg.hidden, 10)
    assert chip.activation is Activation.SIGMOID
    assert chip.tile.pair is PairMode.DIFFERENTIAL
    assert chip.tile.update.mode is UpdateMode.STOCHASTIC
    assert chip.tile.periphery.adc_bits == cfg.periphery.adc_bits


@pytest.mark.parametrize("device", device_names())
@pytest.mark.parametrize("algorithm", algorithm_names())
def test_every_device_and_algorithm_is_accepted(device: str, algorithm: str) -> None:
    cfg = make_config({"device": device, "algorithm": algorithm})
    assert cfg.device_params().name == device
    cfg.chip_config(64, 10)


def test_overrides_and_variation_reach_the_device() -> None:
    cfg = make_config({"variation": 0.2, "device_overrides": {"stuck_low": 0.1, "dw_min": 0.004}})
    params = cfg.device_params()
    assert params.stuck_low == 0.1
    assert params.dw_min == 0.004
    assert params.dw_min_dtod == 0.2
    assert cfg.chip_config(64, 10).tile.device == params


def test_config_is_immutable() -> None:
    cfg = make_config({})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        cfg.lr = 0.5  # type: ignore[misc]


# -- errors name what is wrong -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"lrr": 0.1}, "lrr"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"periphery": {"adc_bitz": 8}}, "adc_bitz"),
        ({"update": {"max_pulse": 8}}, "max_pulse"),
    ],
)
def test_unknown_key_is_named(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(values)
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"epochs": "many"}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"lr": "fast"}, "lr"),
        ({"hidden": "wide"}, "hidden"),
        ({"hidden": [32, "x"]}, "hidden"),
        ({"instances": [4]}, "instances"),
        ({"periphery": 3}, "periphery"),
        ({"periphery": {"output_noise": "loud"}}, "periphery.output_noise"),
        ({"periphery": {"noise_management": "sometimes"}}, "noise_management"),
        ({"update": {"mode": "telepathic"}}, "update.mode"),
        ({"activation": "softplus"}, "activation"),
        ({"pair": "triple"}, "pair"),
        ({"device_overrides": ["stuck_low"]}, "device_overrides"),
        ({"device_overrides": {"g_min": "low"}}, "g_min"),
        ({"device_overrides": {"dw_min": None}}, "dw_min"),
        ({"device_overrides": {"model": "quantum"}}, "model"),
    ],
)
def test_wrong_type_names_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(values)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"instances": 0}, "instances"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),  # beyond what a torch generator takes
        ({"hidden": [0]}, "hidden"),
        ({"hidden": [16, -2]}, "hidden"),
        ({"periphery": {"adc_bits": 0}}, "adc_bits"),
        ({"periphery": {"dac_bits": 25}}, "dac_bits"),
        ({"periphery": {"output_noise": -1}}, "output_noise"),
        ({"periphery": {"output_bound": 0}}, "output_bound"),
        ({"periphery": {"input_bound": float("inf")}}, "input_bound"),
        ({"update": {"max_pulses": 0}}, "max_pulses"),
        ({"weight_scale": 0}, "weight_scale"),
        ({"weight_scale": float("inf")}, "weight_scale"),
        ({"variation": 3}, "variation"),
        ({"variation": -0.1}, "variation"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"limit_train": 0}, "limit_train"),
        ({"limit_test": -5}, "limit_test"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"device_overrides": {"stuck_low": 1.5}}, "stuck_low"),
        ({"device_overrides": {"stuck_high": -0.5}}, "stuck_high"),
        ({"device_overrides": {"dw_min": -1e-3}}, "dw_min"),
        ({"device_overrides": {"nonexistent": 1}}, "nonexistent"),
    ],
)
def test_out_of_range_names_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(values)
    assert field in str(info.value)


def test_unknown_device_override_lists_valid_parameters() -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"device_overrides": {"nonexistent": 1}})
    message = one_line(info.value)
    for name in ("dw_min", "stuck_low", "g_max"):
        assert name in message


@pytest.mark.parametrize(
    ("field", "valid"),
    [
        ("device", device_names()),
        ("algorithm", algorithm_names()),
        ("dataset", list(DATASET_NAMES)),
    ],
)
def test_unknown_name_lists_valid_names(field: str, valid: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make_config({field: "no-such-thing"})
    message = one_line(info.value)
    assert field in message
    assert "no-such-thing" in message
    for name in valid:
        assert name in message


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"lr": -1, "epochs": "x", "periphery": {"adc_bits": 0}})
    message = str(info.value)
    assert "lr" in message and "epochs" in message and "adc_bits" in message


@pytest.mark.parametrize("values", [None, [], "lr: 0.1", 3, ["lr", 0.1]])
def test_non_mapping_is_rejected(values: Any) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        make_config(values)


def test_non_text_field_names_are_rejected() -> None:
    values: dict[Any, Any] = {1: 2}  # YAML allows such keys ("1: 2")
    with pytest.raises(ConfigError, match="text"):
        make_config(values)


# -- YAML ------------------------------------------------------------------------------------


def test_yaml_round_trip_of_defaults(tmp_path: Path) -> None:
    cfg = make_config({})
    path = tmp_path / "cfg.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg


def test_yaml_round_trip_of_every_kind_of_field(tmp_path: Path) -> None:
    cfg = make_config(
        {
            "algorithm": "transfer",
            "device": "reram-taox",
            "dataset": "mnist",
            "hidden": [128, 64],
            "activation": "tanh",
            "epochs": 3,
            "batch_size": 32,
            "lr": 0.05,
            "instances": 8,
            "seed": 2**40,
            "variation": 0.15,
            "device_overrides": {"stuck_low": 0.01, "noise_mode": "additive", "n_states": None},
            "pair": "reference",
            "weight_scale": 2.5,
            "periphery": {"adc_bits": None, "output_noise": 0.0, "noise_management": False},
            "update": {"mode": "count", "max_pulses": 100, "sequential": False},
            "data_dir": "../shared/data",
            "validation_fraction": 0.1,
            "limit_train": 1000,
            "limit_test": None,
            "eval_train_limit": None,
        }
    )
    text = cfg.to_yaml()
    assert yaml.safe_load(text)["update"]["mode"] == "count"  # plain YAML, no python tags
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    loaded = load_config(path)
    assert loaded == cfg
    assert loaded.to_yaml() == text
    assert loaded.device_params() == cfg.device_params()


def test_load_config_reads_partial_files(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("# a comment\nlr: 0.02\nperiphery:\n  adc_bits: 6\n")
    cfg = load_config(path)
    assert cfg.lr == 0.02
    assert cfg.periphery.adc_bits == 6
    assert cfg.periphery.dac_bits == PeripheryConfig().dac_bits


@pytest.mark.parametrize("text", ["", "# nothing here\n", "---\n"])
def test_empty_config_file_gives_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    assert load_config(path) == TrainConfig()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("lr: [0.1\n", "YAML"),
        ("{{{", "YAML"),
        ("lr: 0.1\n\tepochs: 2\n", "YAML"),
        ("!!python/object:os.system {}\n", "YAML"),
        ("when: 2001-13-45\n", "YAML"),  # PyYAML builds dates itself and raises ValueError
        ("- lr\n- 0.1\n", "mapping"),
        ("false\n", "mapping"),
        ("just text\n", "mapping"),
        ("1: 2\n", "text"),
        ("lr: .nan\n", "lr"),
    ],
)
def test_bad_config_files_raise_config_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words):
        load_config(path)


def test_unreadable_config_files_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)  # a folder
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00lr: 0.1")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(binary)


def test_read_config_file_returns_raw_values(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("lr: 0.5\nhidden: [4]\nunknown_key: 1\n")
    # Not validated yet: the CLI merges its options into this before make_config.
    assert read_config_file(path) == {"lr": 0.5, "hidden": [4], "unknown_key": 1}


# -- fuzzing: only ConfigError ever escapes ----------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["ideal", "tanh", "count", "reference", "digits", "software", "1e-3"])
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
SUB_KEYS = st.sampled_from(PERIPHERY_FIELDS + UPDATE_FIELDS + DEVICE_FIELDS) | st.text(max_size=8)
ANY_KEY = st.text(max_size=10) | st.integers() | st.none() | st.booleans()
CONFIG_DICTS = st.dictionaries(
    st.sampled_from(TOP_FIELDS) | ANY_KEY,
    JSON_LIKE | st.dictionaries(SUB_KEYS | ANY_KEY, JSON_LIKE, max_size=5),
    max_size=8,
)

# Mostly valid configurations, each field sometimes swapped for junk: reaches the deeper checks
# (device physics, chip building, YAML round trip) that random dicts rarely get past.
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "algorithm": st.sampled_from(algorithm_names()),
    "algorithm_options": st.dictionaries(
        st.sampled_from(["order", "refresh", "bogus"]),
        st.sampled_from(["output-first", "input-first", "sideways"]) | st.booleans(),
        max_size=2,
    ),
    "device": st.sampled_from(device_names()),
    "dataset": st.sampled_from(list(DATASET_NAMES)),
    "dataset_options": st.dictionaries(
        st.sampled_from(["flip_rate", "train_per_class", "bogus"]),
        st.floats(0, 1) | st.integers(-5, 300),
        max_size=2,
    ),
    "hidden": st.lists(st.integers(1, 512), max_size=3),
    "activation": st.sampled_from([str(a) for a in Activation]),
    "epochs": st.integers(1, 100),
    "batch_size": st.integers(1, 1000),
    "lr": st.floats(1e-6, 100),
    "lr_decay": st.floats(-1, 2),
    "instances": st.integers(1, 64),
    "seed": st.integers(0, 2**63 - 1),
    "variation": st.none() | st.floats(0, 2),
    "device_overrides": st.dictionaries(
        st.sampled_from(["stuck_low", "stuck_high", "dw_min", "read_noise", "dw_min_std"]),
        st.floats(0, 1) | _FLOATS,
        max_size=3,
    ),
    "pair": st.sampled_from([str(p) for p in PairMode]),
    "weight_scale": st.floats(1e-3, 10),
    "periphery": st.fixed_dictionaries(
        {},
        optional={
            "dac_bits": st.none() | st.integers(0, 30),
            "adc_bits": st.none() | st.integers(0, 30),
            "output_bound": _FLOATS,
            "output_noise": _FLOATS,
            "noise_management": st.booleans(),
        },
    ),
    "update": st.fixed_dictionaries(
        {},
        optional={
            "mode": st.sampled_from([str(m) for m in UpdateMode]),
            "max_pulses": st.integers(0, 20_000),
            "sequential": st.booleans(),
            "dynamic_length": st.booleans(),
            "threshold": st.floats(-1, 2),
        },
    ),
    "cell": st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from([str(k) for k in CellKind]) | st.text(max_size=6),
            "gamma": st.floats(-1, 2),
            "transfer_every": st.integers(-1, 100),
            "columns": st.integers(-1, 100),
            "transfer_lr": _FLOATS,
            "threshold": st.floats(-1, 5),
            "chop_prob": st.floats(-1, 2),
            "tail_weight": st.floats(-1, 100),
        },
    ),
    "max_inputs": st.none() | st.integers(-1, 600),
    "max_outputs": st.none() | st.integers(-1, 600),
    "validation_fraction": st.floats(0, 1),
    "limit_train": st.none() | st.integers(-1, 10**6),
    "limit_test": st.none() | st.integers(-1, 10**6),
    "eval_train_limit": st.none() | st.integers(-1, 10**6),
    "energy_profile": st.none() | st.sampled_from([*profile_names(), "nope"]),
    "checkpoint_every": st.none() | st.integers(-1, 10**6),
}
NEAR_VALID_DICTS = st.fixed_dictionaries(
    {}, optional={k: v | v | v | JSON_LIKE for k, v in VALID_FIELDS.items()}
)


def test_near_valid_strategy_covers_every_field() -> None:
    assert set(VALID_FIELDS) == set(TOP_FIELDS) - {"data_dir"}


def _check_loaded(make: Any) -> None:
    """Either a config comes back that can build a chip and survives YAML, or a ConfigError."""
    try:
        cfg = make()
    except ConfigError as err:  # UnknownNameError is a ConfigError
        assert isinstance(err, ConfigError | UnknownNameError)
        assert str(err)
        return
    assert isinstance(cfg, TrainConfig)
    cfg.chip_config(64, 10)
    assert make_config(yaml.safe_load(cfg.to_yaml())) == cfg


@settings(max_examples=200, deadline=None)
@given(values=CONFIG_DICTS)
def test_make_config_raises_only_config_error(values: dict[Any, Any]) -> None:
    _check_loaded(lambda: make_config(values))


@settings(max_examples=300, deadline=None)
@given(values=NEAR_VALID_DICTS)
def test_make_config_on_near_valid_dicts_raises_only_config_error(values: dict[str, Any]) -> None:
    _check_loaded(lambda: make_config(values))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_load_config_on_random_text_raises_only_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    _check_loaded(lambda: load_config(path))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=CONFIG_DICTS | NEAR_VALID_DICTS, junk=st.text(max_size=20))
def test_load_config_on_random_yaml_raises_only_config_error(
    tmp_path: Path, values: dict[Any, Any], junk: str
) -> None:
    # Real YAML mappings (with some real field names), sometimes with a random tail.
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True) + junk, encoding="utf-8")
    _check_loaded(lambda: load_config(path))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=100))
def test_load_config_on_random_bytes_raises_only_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(data)
    _check_loaded(lambda: load_config(path))
