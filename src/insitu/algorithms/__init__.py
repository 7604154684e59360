"""Learning rules. They drive a chip only through its public operations."""

from __future__ import annotations

from typing import Any

from insitu.algorithms.activity_difference import (
    ActivityDifference,
    ActivityDifferenceFloat,
    ActivityDifferenceOptions,
)
from insitu.algorithms.analog_sgd import AnalogSGD
from insitu.algorithms.base import (
    Trainer,
    glorot_weights,
    parse_options,
    softmax_error,
    squared_error,
)
from insitu.algorithms.chip_trainer import ChipTrainer
from insitu.algorithms.progressive import Progressive, ProgressiveOptions
from insitu.algorithms.software import Software, SoftwareMLP
from insitu.algorithms.transfer import Transfer
from insitu.errors import UnknownNameError
from insitu.hardware import ChipConfig

ALGORITHMS: dict[str, type[Trainer]] = {
    cls.name: cls
    for cls in (
        Software,
        Transfer,
        AnalogSGD,
        Progressive,
        ActivityDifference,
        ActivityDifferenceFloat,
    )
}


def algorithm_names() -> list[str]:
    """Names of every learning rule."""
    return sorted(ALGORITHMS)


def make_trainer(name: str, config: ChipConfig, **kwargs: Any) -> Trainer:
    """Build the trainer called ``name``; an unknown name lists the valid ones."""
    try:
        cls = ALGORITHMS[name]
    except KeyError:
        raise UnknownNameError("algorithm", name, ALGORITHMS) from None
    return cls(config, **kwargs)


__all__ = [
    "ALGORITHMS",
    "ActivityDifference",
    "ActivityDifferenceFloat",
    "ActivityDifferenceOptions",
    "AnalogSGD",
    "ChipTrainer",
    "Progressive",
    "ProgressiveOptions",
    "Software",
    "SoftwareMLP",
    "Trainer",
    "Transfer",
    "algorithm_names",
    "glorot_weights",
    "make_trainer",
    "parse_options",
    "softmax_error",
    "squared_error",
]
