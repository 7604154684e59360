"""Exceptions with messages that say what is wrong and what would be right."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class InsituError(Exception):
    """Base of every error insitu raises on purpose."""


class ConfigError(InsituError, ValueError):
    """A parameter or configuration value is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A preset, algorithm, dataset or other named choice does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataError(InsituError):
    """A data file is missing, unreadable or fails its checksum."""


class StorageError(InsituError):
    """A file or directory cannot be written: no space, read-only, or something in the way.

    ``directory`` is where the write was going and ``no_space`` whether freeing space is the
    fix, so the command line can say how to go on.
    """

    def __init__(self, message: str, directory: Path, *, no_space: bool = False) -> None:
        super().__init__(message)
        self.directory = directory
        self.no_space = no_space

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process pools: rebuild from all three
        return (type(self), (self.args[0], self.directory), {"no_space": self.no_space})


class DivergenceError(InsituError):
    """Training produced NaN or infinite values."""


# What a trainer says when its network's output is NaN or infinite.
OUTPUT_DIVERGED = (
    "training diverged: the network output is NaN or infinite; lower the learning rate or check "
    "the device and periphery parameters"
)


def check_range(
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ConfigError naming ``name`` if ``value`` lies outside [low, high].

    ``low_open``/``high_open`` make the bound strict. NaN is always out of range.
    """
    bad = value != value  # NaN
    if low is not None:
        bad = bad or (value <= low if low_open else value < low)
    if high is not None:
        bad = bad or (value >= high if high_open else value > high)
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        brackets = ("(" if low_open or low is None else "[") + lo + ", " + hi
        brackets += ")" if high_open or high is None else "]"
        raise ConfigError(f"{name} = {value!r} is out of range; expected a value in {brackets}")


def check_count(name: str, value: int, low: int, high: int | None = None) -> None:
    """Raise ConfigError naming ``name`` unless ``value`` is an integer in [low, high].

    numpy integers count as integers; ``True``/``False`` do not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} = {value!r} must be an integer")
    check_range(name, int(value), low=low, high=high)
