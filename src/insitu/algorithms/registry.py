"""The one registry of learning rules: each rule's name, the kind of run it trains (a crossbar
network or a spiking one), the class that builds it and what it does."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from insitu.algorithms.activity_difference import ActivityDifference, ActivityDifferenceFloat
from insitu.algorithms.analog_sgd import AnalogSGD
from insitu.algorithms.base import Trainer
from insitu.algorithms.progressive import Progressive
from insitu.algorithms.software import Software
from insitu.algorithms.spiking import Deploy, InTheLoop, SoftwareSNN, SpikingTrainer
from insitu.algorithms.transfer import Transfer
from insitu.errors import UnknownNameError
from insitu.hardware import ChipConfig
from insitu.hardware.spiking import SpikingChipConfig

RuleKind = Literal["crossbar", "spiking"]
RULE_KINDS: tuple[RuleKind, ...] = ("crossbar", "spiking")


@dataclass(frozen=True)
class Rule:
    """One learning rule: ``factory(chip_config, instances=..., seed=..., ...)`` builds it."""

    name: str
    kind: RuleKind
    factory: type[Trainer] | type[SpikingTrainer]
    description: str


def _rules(kind: RuleKind, *classes: type[Trainer] | type[SpikingTrainer]) -> list[Rule]:
    return [Rule(cls.name, kind, cls, cls.description) for cls in classes]


RULES: MappingProxyType[str, Rule] = MappingProxyType(
    {
        rule.name: rule
        for rule in (
            *_rules(
                "crossbar",
                Software,
                Transfer,
                AnalogSGD,
                Progressive,
                ActivityDifference,
                ActivityDifferenceFloat,
            ),
            *_rules("spiking", SoftwareSNN, InTheLoop, Deploy),
        )
    }
)

# Views of RULES by kind (each rule's class, typed for its kind's trainers).
ALGORITHMS: dict[str, type[Trainer]] = {
    name: rule.factory for name, rule in RULES.items() if issubclass(rule.factory, Trainer)
}
SPIKING_ALGORITHMS: dict[str, type[SpikingTrainer]] = {
    name: rule.factory for name, rule in RULES.items() if issubclass(rule.factory, SpikingTrainer)
}


def rule_names(kind: RuleKind | None = None) -> list[str]:
    """Names of the rules of ``kind`` (None: every rule), sorted."""
    return sorted(name for name, rule in RULES.items() if kind in (None, rule.kind))


def algorithm_names() -> list[str]:
    """Names of the crossbar rules."""
    return rule_names("crossbar")


def unknown_rule(name: str, kind: RuleKind) -> UnknownNameError:
    """The error for ``name``, not a rule of ``kind``: it lists the rules of ``kind``."""
    what = "algorithm" if kind == "crossbar" else "spiking algorithm"
    return UnknownNameError(what, name, rule_names(kind))


def make_trainer(name: str, config: ChipConfig, **kwargs: Any) -> Trainer:
    """Build the crossbar trainer called ``name``; an unknown name lists the valid ones."""
    if name not in ALGORITHMS:
        raise unknown_rule(name, "crossbar")
    return ALGORITHMS[name](config, **kwargs)


def make_spiking_trainer(name: str, config: SpikingChipConfig, **kwargs: Any) -> SpikingTrainer:
    """Build the spiking trainer called ``name``; an unknown name lists the valid ones."""
    if name not in SPIKING_ALGORITHMS:
        raise unknown_rule(name, "spiking")
    return SPIKING_ALGORITHMS[name](config, **kwargs)
