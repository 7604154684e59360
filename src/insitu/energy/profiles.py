"""Cost profiles: joules and seconds per hardware event, each number with where it comes from.

A profile prices every :class:`~insitu.hardware.Event` kind. Pricing is linear and additive:
the cost of a log is the sum over kinds of ``count * price``.

Time, from the critical path. The event log holds totals, not a schedule, so time is carried
by the events that *are* steps of the critical path, and not by the events that happen in
parallel inside them:

- operations of a whole array (``array_read``, ``parallel_update``, ``emulation_step``) and
  operations done one after another (``device_read`` in write-verify, host link bytes) carry
  seconds: their count times their duration is the time they take;
- operations of single devices or lines inside an array operation (``mac``, ``dac_conversion``,
  ``adc_conversion``, ``device_pulse``, ``line_pulse``, ``activation``, ``neuron_step``,
  ``synaptic_event``, ``adc_sample``) carry energy only: a read of a 784 x 32 array is one
  ``array_read`` long, however many devices take part, but each of its 25,088 MACs costs energy.

Counts are totals over chip instances; instances are separate chips working side by side, so
the time of one chip is the total divided by the number of instances (done by the report).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from insitu.errors import ConfigError
from insitu.hardware import Event

ASSUMPTION = "ASSUMPTION"
"""Prefix of every source string that is an assumption rather than a published figure."""


@dataclass(frozen=True)
class Price:
    """One number of a profile: ``value`` (joules or seconds per event) and its source."""

    value: float
    source: str

    def __post_init__(self) -> None:
        if not (self.value >= 0.0 and self.value < float("inf")):
            raise ConfigError(f"price = {self.value!r}; need a finite value >= 0")
        if not self.source.strip():
            raise ConfigError("every price needs a source (a citation or a stated assumption)")

    @property
    def is_assumption(self) -> bool:
        """True when the source says the value is an assumption."""
        return self.source.startswith(ASSUMPTION)


@dataclass(frozen=True)
class EventCost:
    """Energy (J per event) and critical-path time (s per event) of one event kind."""

    joules: Price
    seconds: Price


@dataclass(frozen=True)
class CostProfile:
    """Prices of every event kind on one chip, with a one-line description."""

    name: str
    description: str
    costs: Mapping[str, EventCost] = field(default_factory=dict)

    def __post_init__(self) -> None:
        costs = {str(k): v for k, v in self.costs.items()}
        kinds = {str(e) for e in Event}
        missing = sorted(kinds - set(costs))
        if missing:
            raise ConfigError(f"profile {self.name!r} does not price: {', '.join(missing)}")
        unknown = sorted(set(costs) - kinds)
        if unknown:
            raise ConfigError(
                f"profile {self.name!r} prices unknown event kinds {', '.join(unknown)}; "
                f"known: {', '.join(sorted(kinds))}"
            )
        object.__setattr__(self, "costs", dict(costs))

    def __getitem__(self, kind: Event | str) -> EventCost:
        key = str(kind)
        if key not in self.costs:
            raise ConfigError(
                f"event kind {key!r} is not priced by profile {self.name!r}; "
                f"known kinds: {', '.join(sorted(self.costs))}"
            )
        return self.costs[key]

    def __iter__(self) -> Iterator[tuple[str, EventCost]]:
        return iter(sorted(self.costs.items()))

    def not_applicable(self) -> list[str]:
        """Event kinds this profile leaves unpriced: those its chip kind never logs."""
        return [kind for kind, cost in self if cost.joules.source.startswith("not applicable")]

    @property
    def chip_kind(self) -> str:
        """``"spiking"`` for a profile that prices emulation steps, else ``"crossbar"``."""
        return "crossbar" if str(Event.EMULATION_STEP) in self.not_applicable() else "spiking"

    def replace(self, kind: Event | str, cost: EventCost) -> CostProfile:
        """A copy with ``kind`` priced at ``cost`` (for what-if studies)."""
        self[kind]  # unknown kinds raise
        costs = dict(self.costs)
        costs[str(kind)] = cost
        return CostProfile(self.name, self.description, costs)


@dataclass(frozen=True)
class Priced:
    """An event log priced: joules and seconds per event kind (totals over instances)."""

    profile: str
    counts: Mapping[str, float]
    joules: Mapping[str, float]
    seconds: Mapping[str, float]

    @property
    def total_joules(self) -> float:
        """Energy of every event (J)."""
        return float(sum(self.joules.values()))

    @property
    def total_seconds(self) -> float:
        """Critical-path time summed over instances (s); divide by instances for one chip."""
        return float(sum(self.seconds.values()))

    def scaled(self, factor: float) -> Priced:
        """Every count and cost times ``factor`` (e.g. 1 / samples for per-sample figures)."""
        return Priced(
            self.profile,
            {k: v * factor for k, v in self.counts.items()},
            {k: v * factor for k, v in self.joules.items()},
            {k: v * factor for k, v in self.seconds.items()},
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: totals and the breakdown by event kind."""
        return {
            "profile": self.profile,
            "joules": self.total_joules,
            "seconds": self.total_seconds,
            "by_kind": {
                k: {"count": self.counts[k], "joules": self.joules[k], "seconds": self.seconds[k]}
                for k in sorted(self.counts)
            },
        }


def price(counts: Mapping[str, float], profile: CostProfile) -> Priced:
    """Price event ``counts`` (kind -> count, as ``EventLog.counts()``) with ``profile``.

    Raises ConfigError for a negative or non-finite count or an unknown event kind.
    """
    joules: dict[str, float] = {}
    seconds: dict[str, float] = {}
    clean: dict[str, float] = {}
    for kind, count in counts.items():
        n = float(count)
        if not (n >= 0.0 and n < float("inf")):
            raise ConfigError(f"event count for {kind} = {count!r}; need a finite count >= 0")
        cost = profile[kind]
        clean[kind] = n
        joules[kind] = n * cost.joules.value
        seconds[kind] = n * cost.seconds.value
    return Priced(profile.name, clean, joules, seconds)
