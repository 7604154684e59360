"""DeviceParams validation, replace/with_variation, and the named presets."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from insitu.devices import DeviceParams, NoiseMode, ResponseModel, device_names, get_device
from insitu.errors import ConfigError, UnknownNameError


def linear(**changes: Any) -> DeviceParams:
    """A valid linear-step device with ``changes`` applied."""
    base: dict[str, Any] = {
        "name": "test",
        "model": ResponseModel.LINEAR_STEP,
        "dw_min": 0.01,
        "slope_up": 0.2,
        "slope_down": 0.3,
        "dw_min_std": 0.1,
    }
    base.update(changes)
    return DeviceParams(**base)


# (constructor changes, a word the error message must contain)
OUT_OF_RANGE: list[tuple[dict[str, Any], str]] = [
    ({"dw_min": -0.01}, "dw_min"),
    ({"dw_min": 0.0}, "dw_min"),
    ({"dw_min": 2.0}, "dw_min"),  # more than the whole range in one pulse
    ({"up_down": 1.0}, "up_down"),
    ({"up_down": -1.5}, "up_down"),
    ({"slope_up": -0.1}, "slope_up"),
    ({"slope_down": -0.1}, "slope_down"),
    ({"dw_min_std": -0.1}, "dw_min_std"),
    ({"read_noise": -1e-3}, "read_noise"),
    ({"reset_std": -1e-3}, "reset_std"),
    ({"stuck_low": 1.5}, "stuck_low"),
    ({"stuck_high": 1.01}, "stuck_high"),
    ({"stuck_low": -0.1}, "stuck_low"),
    ({"stuck_low": 0.6, "stuck_high": 0.6}, "stuck_low + stuck_high"),
    ({"g_ref": 1.5}, "g_ref"),
    ({"g_ref": -0.5}, "g_ref"),
    ({"g_ref": 0.0}, "g_ref"),
    ({"g_min": 1.0}, "g_min"),
    ({"n_states": 1}, "n_states"),
    ({"n_states": 0}, "n_states"),
    ({"drift_nu": -0.01}, "drift_nu"),
    ({"drift_nu": 1.5}, "drift_nu"),
    ({"retention_tau": 0.0}, "retention_tau"),
    ({"retention_tau": -5.0}, "retention_tau"),
    ({"dw_min_dtod": -0.1}, "dw_min_dtod"),
    ({"bounds_dtod": 3.0}, "bounds_dtod"),
    ({"slope_dtod": -0.1}, "slope_dtod"),
    ({"up_down_dtod": -0.1}, "up_down_dtod"),
    ({"drift_nu_dtod": -0.1}, "drift_nu_dtod"),
    ({"pulse_width": 0.0}, "pulse_width"),
    ({"exponent": -1.0}, "exponent"),
    ({"dw_min": float("nan")}, "dw_min"),
    # One pulse would overshoot the saturation level (kappa * dw >= 1).
    ({"slope_up": 60.0}, "slope_up"),
    ({"slope_down": 60.0}, "slope_down"),
    # Model and parameters disagree.
    ({"model": "constant-step"}, "slope"),
    ({"model": "constant-step", "slope_up": 0.0}, "slope"),
    ({"model": "soft-bounds"}, "slope"),
    ({"model": "soft-bounds", "slope_up": 1.0, "slope_down": 0.5}, "slope"),
    ({"model": "soft-bounds", "slope_up": 1.0, "slope_down": 1.0, "exponent": 2.0}, "exponent"),
    ({"exponent": 2.0}, "exponent"),
    ({"model": "power-step"}, "exponent"),
    ({"model": "power-step", "exponent": 2.0, "slope_up": 0.0}, "slope"),
    ({"model": "ideal", "slope_up": 0.0, "slope_down": 0.0}, "dw_min_std"),
    ({"model": "ideal", "dw_min_std": 0.0}, "slope_up"),
    (
        {"model": "ideal", "slope_up": 0, "slope_down": 0, "dw_min_std": 0, "read_noise": 0.01},
        "read_noise",
    ),
    (
        {"model": "ideal", "slope_up": 0, "slope_down": 0, "dw_min_std": 0, "up_down": 0.1},
        "up_down",
    ),
]


@pytest.mark.parametrize(("changes", "word"), OUT_OF_RANGE, ids=lambda v: str(v))
def test_out_of_range_raises_config_error_naming_the_field(
    changes: dict[str, Any], word: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(word)):
        linear(**changes)


@pytest.mark.parametrize(("changes", "word"), OUT_OF_RANGE, ids=lambda v: str(v))
def test_replace_validates_too(changes: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(word)):
        linear().replace(**changes)


def test_error_names_the_device() -> None:
    with pytest.raises(ConfigError, match="'test'"):
        linear(dw_min=-1.0)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        linear(stuck_low=2.0)


@pytest.mark.parametrize(
    ("field", "value"), [("model", "memristor-ish"), ("noise_mode", "sometimes")]
)
def test_unknown_enum_value_lists_the_valid_ones(field: str, value: str) -> None:
    with pytest.raises(UnknownNameError) as info:
        linear(**{field: value})
    enum = ResponseModel if field == "model" else NoiseMode
    for member in enum:
        assert member.value in str(info.value)


def test_valid_models_construct() -> None:
    assert linear().model is ResponseModel.LINEAR_STEP
    assert linear(model="constant-step", slope_up=0, slope_down=0).model is (
        ResponseModel.CONSTANT_STEP
    )
    assert linear(model="soft-bounds", slope_up=1, slope_down=1).kappa_up == pytest.approx(2.0)
    assert linear(model="power-step", exponent=2.0).exponent == 2.0
    ideal = linear(model="ideal", slope_up=0, slope_down=0, dw_min_std=0)
    assert ideal.model is ResponseModel.IDEAL
    assert linear(noise_mode="additive").noise_mode is NoiseMode.ADDITIVE
    assert linear(n_states=2).n_states == 2


def test_derived_quantities() -> None:
    p = linear(g_min=0.0, g_max=2.0, g_ref=0.5, dw_min=0.01, slope_up=0.3, slope_down=0.25)
    assert p.g_range == pytest.approx(2.0)
    assert p.kappa_up == pytest.approx(0.3 / 1.5)
    assert p.kappa_down == pytest.approx(0.25 / 0.5)
    assert p.states == pytest.approx(200.0)


def test_replace_unknown_field_lists_valid_fields() -> None:
    with pytest.raises(ConfigError) as info:
        linear().replace(dw_mni=0.1, colour="red")
    message = str(info.value)
    assert "colour" in message and "dw_mni" in message
    for f in dataclasses.fields(DeviceParams):
        assert f.name in message


def test_replace_returns_a_new_validated_copy() -> None:
    p = linear()
    q = p.replace(dw_min=0.02)
    assert q.dw_min == 0.02 and p.dw_min == 0.01
    assert q.replace(dw_min=0.01) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.dw_min = 0.5  # type: ignore[misc]


def test_with_variation_sets_every_spread() -> None:
    p = linear(drift_nu=0.05)
    q = p.with_variation(0.2)
    assert q.dw_min_dtod == pytest.approx(0.2)
    assert q.bounds_dtod == pytest.approx(0.2)
    assert q.up_down_dtod == pytest.approx(0.02)
    assert q.slope_dtod == pytest.approx(0.2 * 0.3)
    assert q.drift_nu_dtod == pytest.approx(0.2)
    # Everything else is unchanged.
    assert q.replace(
        dw_min_dtod=0, bounds_dtod=0, up_down_dtod=0, slope_dtod=0, drift_nu_dtod=0
    ) == p.replace(dw_min_dtod=0, bounds_dtod=0, up_down_dtod=0, slope_dtod=0, drift_nu_dtod=0)


def test_with_variation_zero_and_no_drift() -> None:
    q = linear().with_variation(0.0)
    assert q.dw_min_dtod == q.bounds_dtod == q.slope_dtod == q.drift_nu_dtod == 0.0
    # No drift: no drift spread; no slope: no slope spread.
    assert linear().with_variation(0.3).drift_nu_dtod == 0.0
    flat = linear(model="constant-step", slope_up=0, slope_down=0).with_variation(0.3)
    assert flat.slope_dtod == 0.0


@pytest.mark.parametrize("sigma", [-0.1, 2.5, float("nan")])
def test_with_variation_out_of_range(sigma: float) -> None:
    with pytest.raises(ConfigError, match="variation"):
        linear().with_variation(sigma)


@pytest.mark.parametrize("name", device_names())
def test_every_preset_validates_and_cites_a_source(name: str) -> None:
    p = get_device(name)
    assert p.name == name
    p.validate()
    assert dataclasses.replace(p) == p  # re-running __post_init__ accepts it
    assert len(p.source) > 40
    if name != "ideal":
        # A citation: a year or a DOI.
        assert re.search(r"(19|20)\d\d|doi", p.source), p.source
    assert p.g_min < p.g_ref < p.g_max
    # Coarser only where the preset says so by its levels (a few-state device, on purpose).
    assert p.states >= 10 or p.n_states == round(p.states) + 1


@pytest.mark.parametrize("name", device_names())
def test_every_preset_accepts_variation(name: str) -> None:
    p = get_device(name)
    assert p.with_variation(0.1).dw_min_dtod == pytest.approx(0.1)


def test_the_presets_the_design_needs_exist() -> None:
    names = set(device_names())
    assert {"ideal", "ecram-organic", "ecram-liwo3", "reram-taox", "pcm"} <= names
    assert device_names() == sorted(names)


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_device("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in device_names():
        assert name in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)
