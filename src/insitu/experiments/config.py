"""Typed, validated run configuration (pydantic): every field checked before any work starts."""

from __future__ import annotations

import copy
import enum
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from torch import Tensor

from insitu.algorithms import ALGORITHMS, RULES, rule_names
from insitu.algorithms.base import parse_options
from insitu.algorithms.registry import RuleKind
from insitu.data import DATASET_NAMES, check_dataset_options
from insitu.devices import DeviceParams, device_names, get_device
from insitu.energy import check_profile_kind
from insitu.errors import ConfigError, UnknownNameError
from insitu.hardware import (
    Activation,
    ChipConfig,
    PairMode,
    Periphery,
    TileConfig,
    UpdateMode,
    UpdateParams,
)


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    def to_yaml(self, given: DatasetRecord | None = None) -> str:
        """The resolved configuration as YAML; ``given``: the data the run used instead of
        ``dataset`` (passed in Python), said beside that field and above the rest."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if given is None:
            return text
        head = (
            f"data given in Python: dataset {given.name!r}, {len(given.y_train)} train / "
            f"{len(given.y_test)} test samples; the `dataset` field below was not used"
        )
        aside = f"NOT USED: the run trained on {given.name!r}, given in Python"
        lines = [
            f"{line}  # {aside}" if line.startswith("dataset:") else line
            for line in text.splitlines()
        ]
        return f"# {head}\n" + "\n".join(lines) + "\n"


def check_rule(name: str, kind: RuleKind) -> str:
    """``name`` if it is a rule of ``kind`` (:data:`insitu.algorithms.RULES`); otherwise a
    ValueError naming the rules of ``kind`` and, for a rule of the other kind, its command."""
    valid = ", ".join(rule_names(kind))
    rule = RULES.get(name)
    if rule is None:
        what = "algorithm" if kind == "crossbar" else "spiking algorithm"
        raise ValueError(f"unknown {what} {name!r}; valid: {valid}")
    if rule.kind != kind:
        use = (
            f"insitu train --algorithm {name}"
            if rule.kind == "crossbar"
            else f"insitu spiking --set algorithm={name}"
        )
        raise ValueError(f"{name} is a {rule.kind} rule: use `{use}` ({kind} rules: {valid})")
    return name


class PeripheryConfig(_Strict):
    """DAC/ADC and analog noise around every tile (see :class:`insitu.hardware.Periphery`)."""

    dac_bits: int | None = Field(7, ge=1, le=24)
    adc_bits: int | None = Field(9, ge=1, le=24)
    input_bound: float = Field(1.0, gt=0)
    output_bound: float = Field(12.0, gt=0)
    output_noise: float = Field(0.06, ge=0)
    noise_management: bool = True


class UpdateConfig(_Strict):
    """How updates become pulses (see :class:`insitu.hardware.UpdateParams`)."""

    mode: UpdateMode = UpdateMode.STOCHASTIC
    max_pulses: int = Field(31, ge=1, le=10_000)
    sequential: bool = True
    dynamic_length: bool = True
    threshold: float = Field(0.5, ge=0, lt=1)


class TrainConfig(_Strict):
    """One training run."""

    # Descriptions are what `insitu config` shows for fields without a range or choices.
    algorithm: str = Field("analog-sgd", description="see insitu algorithms")
    algorithm_options: dict[str, Any] = Field(default_factory=dict, description="per rule")
    device: str = Field("ecram-organic", description="see insitu devices")
    dataset: str = Field("digits", description=", ".join(DATASET_NAMES))
    dataset_options: dict[str, Any] = Field(default_factory=dict, description="braille only")
    hidden: list[int] = Field(default_factory=lambda: [32], description="sizes, each >= 1")
    activation: Activation = Activation.SIGMOID
    epochs: int = Field(20, ge=1, le=100_000)
    batch_size: int = Field(10, ge=1, le=100_000)
    lr: float = Field(0.1, gt=0, le=100)
    lr_decay: float = Field(1.0, gt=0, le=1)  # the learning rate is multiplied by this per epoch
    instances: int = Field(4, ge=1, le=4096)
    seed: int = Field(0, ge=0, le=2**63 - 1)  # torch generators take seeds below 2**64
    variation: float | None = Field(None, ge=0, le=2)
    device_overrides: dict[str, Any] = Field(
        default_factory=dict, description="see insitu devices show"
    )
    pair: PairMode = PairMode.DIFFERENTIAL
    weight_scale: float = Field(1.0, gt=0)
    periphery: PeripheryConfig = PeripheryConfig()
    update: UpdateConfig = UpdateConfig()
    data_dir: str | None = Field(None, description="an existing folder")
    validation_fraction: float = Field(0.0, ge=0, lt=1)
    limit_train: int | None = Field(None, ge=1)
    limit_test: int | None = Field(None, ge=1)
    eval_train_limit: int | None = Field(2000, ge=1)
    energy_profile: str | None = Field(
        None, description="see insitu energy --profiles; null: the chip's own"
    )

    @field_validator("energy_profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        if v is not None:
            check_profile_kind(v, "crossbar")
        return v

    # Save the full run state every this many training batches (and always at epoch ends),
    # so a killed run resumes with `insitu run --resume RUN_DIR`; None: at epoch ends only.
    checkpoint_every: int | None = Field(None, ge=1)

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, v: str) -> str:
        return check_rule(v, "crossbar")

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        if v not in device_names():
            raise ValueError(f"unknown device preset {v!r}; valid: {', '.join(device_names())}")
        return v

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        # Deferred: spiking_config builds on this module.
        from insitu.experiments.spiking_config import SPIKING_DATASETS

        if v not in DATASET_NAMES and v in SPIKING_DATASETS:
            raise ValueError(
                f"{v} is a spiking dataset: use `insitu spiking --set dataset={v}` "
                f"(crossbar datasets: {', '.join(DATASET_NAMES)})"
            )
        if v not in DATASET_NAMES:
            raise ValueError(f"unknown dataset {v!r}; valid: {', '.join(DATASET_NAMES)}")
        return v

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError(f"hidden layer sizes must be >= 1, got {v}")
        return v

    @field_validator("device_overrides")
    @classmethod
    def _typed_overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Each value must have its DeviceParams field's type; unknown names are left for
        # DeviceParams.replace, which names them and lists the valid ones.
        hints = typing.get_type_hints(DeviceParams)
        typed = {}
        for key, value in v.items():
            if key in hints:
                try:
                    value = TypeAdapter(hints[key]).validate_python(value)
                except ValidationError as err:
                    msg = err.errors()[0]["msg"]
                    raise ValueError(f"{key} = {value!r}: {msg}") from None
            typed[key] = value
        return typed

    def run_name(self) -> str:
        """What new run directories of this config are named after."""
        return f"{self.algorithm}-{self.device}-{self.dataset}"

    def device_params(self) -> DeviceParams:
        """The device preset with variation and overrides applied (validated)."""
        params = get_device(self.device)
        if self.variation is not None:
            params = params.with_variation(self.variation)
        if self.device_overrides:
            params = params.replace(**self.device_overrides)
        return params

    def chip_config(self, n_features: int, n_outputs: int) -> ChipConfig:
        """The chip this run trains on."""
        tile = TileConfig(
            device=self.device_params(),
            periphery=Periphery(**self.periphery.model_dump()),
            update=UpdateParams(**self.update.model_dump()),
            pair=self.pair,
            weight_scale=self.weight_scale,
        )
        return ChipConfig((n_features, *self.hidden, n_outputs), tile, self.activation)


class DatasetRecord(Protocol):
    """What a run records of its data (a Dataset or a SpikeDataset)."""

    @property
    def name(self) -> str: ...
    @property
    def y_train(self) -> Tensor: ...
    @property
    def y_test(self) -> Tensor: ...


GIVEN_IN_PYTHON = "given in Python"


def dataset_record(ds: DatasetRecord, *, given: bool) -> dict[str, Any]:
    """The summary fields saying which data a run used: its name, where it came from (the
    config's ``dataset`` or an object ``given`` in Python) and its split sizes."""
    return {
        "dataset": ds.name,
        "dataset_source": GIVEN_IN_PYTHON if given else "config",
        "dataset_sizes": {"train": len(ds.y_train), "test": len(ds.y_test)},
    }


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n  " + "\n  ".join(lines)


def make_config(values: dict[str, Any]) -> TrainConfig:
    """Validate ``values`` into a TrainConfig; errors name each offending field."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"a configuration must be a mapping of fields, got {type(values).__name__}"
        )
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"configuration field names must be text, got {odd[0]!r}")
    try:
        cfg = TrainConfig(**values)
        cfg.device_params()  # device overrides and variation are validated by the physics
        parse_options(ALGORITHMS[cfg.algorithm], cfg.algorithm_options)
        check_dataset_options(cfg.dataset, cfg.dataset_options)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    except UnknownNameError:
        raise
    return cfg


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``values[a][b] = value`` for ``key`` "a.b", making groups as needed."""
    parts = key.strip().split(".")
    node = values
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {part} is not a group of settings")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of fields in a YAML config file (not yet validated); empty for an empty file.

    Every way the file can be unreadable (missing, a folder, not UTF-8, not YAML, a YAML value
    PyYAML cannot build such as the date 2001-13-45, not a mapping) raises ConfigError.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {p} cannot be read as UTF-8 text: {err}") from None
    try:
        values = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as err:
        raise ConfigError(f"config file {p} is not valid YAML: {err}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {p} must hold a mapping of fields, got {type(values).__name__}"
        )
    return values


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML config file."""
    return make_config(read_config_file(path))


class FieldDoc(NamedTuple):
    """One settable field of a config model, as ``insitu config`` lists it."""

    name: str  # dotted, as --set takes it: "periphery.adc_bits"
    type: str
    default: str
    allowed: str  # the range from the Field constraints, the choices, or the description


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal or (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    ):
        return "choice"
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "None"
    return str(annotation) if origin is not None else str(annotation.__name__)


def _bound(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10**7:
        return f"{value:.2e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _allowed(info: Any) -> str:
    """The interval of ge/gt/le/lt constraints, or the choices of an enum or Literal."""
    low = high = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            low = f"[{_bound(m.ge)}"
        elif isinstance(m, annotated_types.Gt):
            low = f"({_bound(m.gt)}"
        elif isinstance(m, annotated_types.Le):
            high = f"{_bound(m.le)}]"
        elif isinstance(m, annotated_types.Lt):
            high = f"{_bound(m.lt)})"
    if low is not None or high is not None:
        return f"{low or '(-inf'}, {high or 'inf)'}"
    choices = [
        a
        for a in (info.annotation, *typing.get_args(info.annotation))
        if isinstance(a, type) and issubclass(a, enum.Enum)
    ]
    if choices:
        return ", ".join(str(c.value) for c in choices[0])
    if typing.get_origin(info.annotation) is typing.Literal:
        return ", ".join(str(a) for a in typing.get_args(info.annotation))
    return info.description or ""


def field_docs(model: type[BaseModel], prefix: str = "") -> list[FieldDoc]:
    """Every field of ``model`` and of the models nested in it (dotted names), read from the
    pydantic model itself, so the listing cannot fall behind the config."""
    docs: list[FieldDoc] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs += field_docs(annotation, f"{prefix}{name}.")
            continue
        default = info.get_default(call_default_factory=True)
        shown = yaml.safe_dump(
            default.value if isinstance(default, enum.Enum) else default,
            default_flow_style=True,
        ).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        docs.append(FieldDoc(prefix + name, _type_name(annotation), shown, _allowed(info)))
    return docs
