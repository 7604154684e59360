"""The options of the spiking trainers (:mod:`insitu.algorithms.spiking`), checked on entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from insitu.errors import ConfigError, check_range

# Valid range of every numeric option: (low, high, low excluded). Wide enough for any sane
# run, narrow enough that a typo (lr = 1e9, a penalty of 1e6) is caught before training.
_OPTION_RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, 1.0, True),
    "surrogate_beta": (0.0, 1e4, True),
    "readout_penalty": (0.0, 1e3, False),
    "rate_penalty": (0.0, 1e3, False),
    "rate_limit": (0.0, 1e6, False),
    "init_scale": (0.0, 1e3, True),
    "sum_scale": (0.0, 1e6, True),
    "logit_scale": (0.0, 1e6, True),
}


def _range_text(name: str) -> str:
    low, high, low_open = _OPTION_RANGES[name]
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def _number(name: str, value: object) -> float:
    """``value`` as a float: numbers, and text that reads as one (YAML reads ``1e9`` and
    ``nan`` as text); anything else names the option and its range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{name} = {value!r} is not a number; expected one in {_range_text(name)}")


@dataclass(frozen=True)
class SpikingOptions:
    """Options of the spiking trainers (valid ranges in ``_OPTION_RANGES``).

    Attributes:
        lr: Adam learning rate (model weight units: voltage per spike), in (0, 1].
        surrogate_beta: steepness of the SuperSpike surrogate derivative, per threshold-to-leak
            voltage, in (0, 1e4].
        readout: ``max`` (maximum over time, the paper's MNIST readout) or ``sum`` (sum over
            time, its SHD readout) of the readout membrane, fed to the softmax.
        readout_penalty: weight of mean((readout maximum)^2), keeps the readout in ADC range;
            in [0, 1e3].
        rate_penalty: weight of mean(relu(count - rate_limit)^2) over hidden neurons and
            samples (count = spikes of one neuron in one sample); in [0, 1e3].
        rate_limit: spikes per hidden neuron per sample tolerated without penalty; [0, 1e6].
        init_scale: initial weights are normal with std ``init_scale / sqrt(fan_in)`` in units of
            the threshold-to-leak voltage; clipped to what the synapses can hold; (0, 1e3].
        sum_scale: readout sum over time is divided by this before the softmax (``sum`` only);
            (0, 1e6].
        logit_scale: the softmax's inputs are the readout scores times this: the readout
            membrane must stay inside the ADC's range, which is narrow for logits; (0, 1e6].
    """

    lr: float = 2e-3
    surrogate_beta: float = 10.0
    readout: Literal["max", "sum"] = "max"
    readout_penalty: float = 1e-3
    rate_penalty: float = 1e-3
    rate_limit: float = 2.0
    init_scale: float = 2.0
    sum_scale: float = 10.0
    logit_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, (low, high, low_open) in _OPTION_RANGES.items():
            value = _number(name, getattr(self, name))
            check_range(name, value, low=low, high=high, low_open=low_open)  # NaN fails too
            object.__setattr__(self, name, value)
        if self.readout not in ("max", "sum"):
            raise ConfigError(f"readout = {self.readout!r}; expected 'max' or 'sum'")

    @classmethod
    def parse(cls, values: dict[str, Any] | None) -> SpikingOptions:
        """Options from a mapping; unknown keys are named with the valid ones."""
        values = dict(values or {})
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - valid, key=str)
        if unknown:
            raise ConfigError(f"unknown spiking option(s) {unknown}; valid: {sorted(valid)}")
        try:
            return cls(**values)
        except ConfigError as err:  # the config's own name for the field
            raise ConfigError(f"algorithm_options.{err}") from None
