"""Learning rules. They drive a chip only through its public operations."""

from __future__ import annotations

from insitu.algorithms.activity_difference import ActivityDifference, ActivityDifferenceFloat
from insitu.algorithms.activity_options import ActivityDifferenceOptions
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
from insitu.algorithms.registry import (
    ALGORITHMS,
    RULES,
    SPIKING_ALGORITHMS,
    Rule,
    algorithm_names,
    make_spiking_trainer,
    make_trainer,
    rule_names,
)
from insitu.algorithms.software import Software, SoftwareMLP
from insitu.algorithms.transfer import Transfer

__all__ = [
    "ALGORITHMS",
    "RULES",
    "SPIKING_ALGORITHMS",
    "ActivityDifference",
    "ActivityDifferenceFloat",
    "ActivityDifferenceOptions",
    "AnalogSGD",
    "ChipTrainer",
    "Progressive",
    "ProgressiveOptions",
    "Rule",
    "Software",
    "SoftwareMLP",
    "Trainer",
    "Transfer",
    "algorithm_names",
    "glorot_weights",
    "make_spiking_trainer",
    "make_trainer",
    "parse_options",
    "rule_names",
    "softmax_error",
    "squared_error",
]
