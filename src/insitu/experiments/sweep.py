"""Sweep configurations: a grid and/or random search over any config fields and seeds.

A sweep file names a base run config (a file, or fields inline), the fields to vary (dotted
names such as ``device_overrides.dw_min``), the seeds and the metric to compare. It expands into
trials, each a complete run config, every one validated before any work starts.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from insitu.errors import ConfigError
from insitu.experiments.config import make_config
from insitu.experiments.config_files import (
    StrictModel,
    describe_errors,
    read_config_file,
    set_dotted,
)

# Metrics a sweep can compare (final values of a run); energy totals are "energy.<name>".
SWEEP_METRICS = (
    "test_acc_mean",
    "test_acc_std",
    "train_acc_mean",
    "loss_mean",
    "device_pulses",
    "array_reads",
)


class RandomParam(StrictModel):
    """How one field is drawn in a random search: from ``choices``, or between low and high."""

    choices: list[Any] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False  # draw uniformly in log space (for rates and step sizes)
    integer: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> RandomParam:
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must list at least one value")
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give choices: [...] or both low: and high:")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got {self.low}")
        return self

    def draw(self, rng: random.Random) -> Any:
        if self.choices is not None:
            return copy.deepcopy(rng.choice(self.choices))
        assert self.low is not None and self.high is not None
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.integer else value


class SweepConfig(StrictModel):
    """One sweep: base config, varied fields, seeds, the metric to compare."""

    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    base: str | dict[str, Any] = Field(default_factory=dict)  # a config file, or fields inline
    fixed: dict[str, Any] = Field(default_factory=dict)  # dotted fields set in every trial
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: dict[str, RandomParam] = Field(default_factory=dict)
    samples: int = Field(0, ge=0, le=100_000)  # random draws (per grid point)
    sample_seed: int = Field(0, ge=0)  # seed of the random draws, so a re-run draws the same
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    metric: str = "test_acc_mean"
    mode: Literal["max", "min"] = "max"
    # Ray Tune re-runs a failed trial (its worker died, or it raised) this often.
    retries: int = Field(1, ge=0, le=10)

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid field {key!r} lists no values")
        return v

    @field_validator("seeds")
    @classmethod
    def _valid_seeds(cls, v: list[int]) -> list[int]:
        if any(s < 0 or s > 2**63 - 1 for s in v):
            raise ValueError(f"seeds must be in 0 .. 2**63-1, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in SWEEP_METRICS and not v.startswith("energy."):
            raise ValueError(
                f"unknown metric {v!r}; valid: {', '.join(SWEEP_METRICS)} or energy.<total>"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        both = sorted(set(self.grid) & set(self.random))
        if both:
            raise ValueError(f"fields both in grid and random: {', '.join(both)}")
        for key in [*self.grid, *self.random, *self.fixed]:
            if key == "seed" or not key or any(not p for p in key.split(".")):
                raise ValueError(
                    f"cannot sweep {key!r}: give dotted config field names"
                    + (" (list seeds under seeds:)" if key == "seed" else "")
                )
        if self.random and self.samples < 1:
            raise ValueError("random: needs samples: >= 1 (how many draws)")
        if self.samples and not self.random:
            raise ValueError("samples: is set but random: names no fields to draw")
        return self

    @property
    def swept(self) -> list[str]:
        """The varied fields, in order."""
        return [*self.grid, *self.random]


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its name, the swept values, the seed and the full config values."""

    name: str
    params: dict[str, Any]
    seed: int
    values: dict[str, Any]


def read_sweep(path: str | Path) -> tuple[SweepConfig, dict[str, Any]]:
    """The validated sweep in ``path`` and its base config values (relative paths resolved)."""
    p = Path(path)
    raw = read_config_file(p)  # the same clear errors for unreadable YAML
    sweep = make_sweep(raw)
    return sweep, base_values(sweep, p.parent)


def make_sweep(values: dict[str, Any]) -> SweepConfig:
    """Validate a sweep mapping; errors name each offending field."""
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"sweep field names must be text, got {odd[0]!r}")
    try:
        return SweepConfig(**values)
    except ValidationError as err:
        raise ConfigError(describe_errors(err).replace("configuration", "sweep", 1)) from None


def base_values(sweep: SweepConfig, relative_to: Path) -> dict[str, Any]:
    """The base config's fields: read from its file (relative to the sweep file) or inline."""
    if isinstance(sweep.base, dict):
        return copy.deepcopy(sweep.base)
    path = Path(sweep.base)
    if not path.is_absolute():
        path = relative_to / path
    return read_config_file(path)


def expand(sweep: SweepConfig, base: dict[str, Any]) -> list[Trial]:
    """Every trial of the sweep, each config validated; an invalid one names trial and field."""
    rng = random.Random(sweep.sample_seed)
    grid_points = [
        dict(zip(sweep.grid, combo, strict=True))
        for combo in itertools.product(*sweep.grid.values())
    ]
    points: list[dict[str, Any]] = []
    for point in grid_points:
        if not sweep.random:
            points.append(point)
            continue
        for _ in range(sweep.samples):
            drawn = {k: p.draw(rng) for k, p in sweep.random.items()}
            points.append({**point, **drawn})
    return trials_at(sweep, base, points)


def trials_at(
    sweep: SweepConfig, base: dict[str, Any], points: list[dict[str, Any]]
) -> list[Trial]:
    """One trial per point (swept field -> value) and seed, in that order, each validated."""
    trials: list[Trial] = []
    for point in points:
        for seed in sweep.seeds:
            values = copy.deepcopy(base)
            for key, value in sweep.fixed.items():
                set_dotted(values, key, value)
            for key, value in point.items():
                set_dotted(values, key, value)
            values["seed"] = seed
            name = f"trial-{len(trials):03d}"
            try:
                make_config(values)
            except ConfigError as err:
                described = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise ConfigError(f"{name} ({described}, seed={seed}): {err}") from None
            trials.append(Trial(name, point, seed, values))
    return trials


def resolved_text(sweep: SweepConfig, base: dict[str, Any], trials: list[Trial]) -> str:
    """The sweep as run, base and trials spelled out: kept in the sweep directory."""
    doc = {
        "sweep": sweep.model_dump(mode="json"),
        "base": base,
        "trials": [
            {"name": t.name, "seed": t.seed, "params": json.loads(json.dumps(t.params))}
            for t in trials
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)
