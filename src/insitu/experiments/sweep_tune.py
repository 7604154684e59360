"""Sweeps on Ray Tune: its schedulers (ASHA early stopping) and search over insitu's sweeps.

The sweep's trials are the same run directories as on the local pool: Tune runs each trial
(one CPU) through :func:`insitu.experiments.sweep_trial.run_trial`, which reports every
epoch's metrics to Tune so that a scheduler can end it there, after that epoch's checkpoint.
What Tune adds: early stopping by ASHA (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020), random search drawn by Tune from the sweep's fields, its
own record of the experiment (``tune/`` in the sweep directory, resumed by ``Tuner.restore``
after the sweep was killed, so the scheduler's rungs survive too) and its cluster scheduling.

A trial Tune ended early is recorded as stopped (``stopped.json`` beside its metrics), one
that raised as failed (``error.txt``); a re-run restores Tune's experiment, restarts failed
trials and resumes interrupted ones from their checkpoints.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from insitu import atomic
from insitu.errors import ConfigError
from insitu.experiments.config import make_config
from insitu.experiments.sweep import (
    SWEEP_METRICS,
    RandomParam,
    SweepConfig,
    Trial,
    expand,
    trials_at,
)
from insitu.experiments.sweep_trial import (
    ERROR_FILE,
    ended,
    record_error,
    record_stopped,
    run_trial,
)

TUNE_DIR = "tune"  # Tune's experiment (state, per-trial results) inside the sweep directory
OPTIONS_FILE = "tune_options.json"  # the options it ran with: a restore must keep them
SCHEDULERS = ("fifo", "asha")
# What every epoch's metrics row holds (energy totals exist only once a run ends).
EPOCH_METRICS = tuple(m for m in SWEEP_METRICS if not m.startswith("energy."))


@dataclass(frozen=True)
class TuneOptions:
    """How Tune runs a sweep: the scheduler (ASHA's rungs at ``grace_period`` epochs times
    powers of ``reduction_factor``, up to the trials' epochs) and the search (the sweep's own
    trials, or ``num_samples`` points drawn at random by Tune)."""

    scheduler: str = "fifo"
    grace_period: int = 1
    reduction_factor: float = 4.0
    brackets: int = 1
    num_samples: int | None = None

    def check(self, sweep: SweepConfig) -> None:
        """One-line errors for options that cannot work with ``sweep``."""
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(
                f"unknown --scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULERS)}"
            )
        if self.grace_period < 1:
            raise ConfigError(f"--grace-period must be >= 1 epoch, got {self.grace_period}")
        if not self.reduction_factor > 1:
            raise ConfigError(f"--reduction-factor must be > 1, got {self.reduction_factor:g}")
        if self.brackets < 1:
            raise ConfigError(f"--brackets must be >= 1, got {self.brackets}")
        if self.num_samples is not None and self.num_samples < 1:
            raise ConfigError(f"--num-samples must be >= 1, got {self.num_samples}")
        if self.num_samples is not None and not (sweep.grid or sweep.random):
            raise ConfigError(
                "--num-samples draws from grid: or random: fields; the sweep has none"
            )
        if self.scheduler != "fifo" and sweep.metric not in EPOCH_METRICS:
            raise ConfigError(
                f"--scheduler {self.scheduler} compares trials every epoch, but metric "
                f"{sweep.metric!r} is known only at the end; use one of {', '.join(EPOCH_METRICS)}"
            )


def import_tune() -> Any:
    """Ray Tune's module, or a one-line error saying how to install it."""
    try:
        from ray import tune
    except ImportError:
        raise ConfigError("--backend ray-tune needs Ray Tune: pip install 'ray[tune]'") from None
    return tune


# -- the search --------------------------------------------------------------------------------


def tune_domain(param: RandomParam) -> Any:
    """The Tune search domain drawing as ``param`` says (bounds of integers inclusive)."""
    tune = import_tune()

    if param.choices is not None:
        return tune.choice(param.choices)
    assert param.low is not None and param.high is not None
    if param.integer:
        low, high = round(param.low), round(param.high) + 1  # Tune's upper bound is exclusive
        return tune.lograndint(max(low, 1), high) if param.log else tune.randint(low, high)
    return (
        tune.loguniform(param.low, param.high) if param.log else tune.uniform(param.low, param.high)
    )


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """The sweep's fields as a Tune search space: grid lists as choices, random: fields as
    their distributions (seeds are not searched: every point runs with every seed)."""
    tune = import_tune()

    space = {field: tune.choice(values) for field, values in sweep.grid.items()}
    space.update({field: tune_domain(p) for field, p in sweep.random.items()})
    return space


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value  # numpy scalars -> Python


def search_trials(sweep: SweepConfig, base: dict[str, Any], options: TuneOptions) -> list[Trial]:
    """The trials Tune runs: the sweep's own (grid, random draws, seeds, exactly as on the
    local pool), or ``num_samples`` points Tune draws from :func:`param_space` (seeded by the
    sweep's ``sample_seed``), each with every seed."""
    if options.num_samples is None:
        return expand(sweep, base)
    import numpy as np

    space = param_space(sweep)
    rng = np.random.default_rng(sweep.sample_seed)
    points = [
        {field: _plain(domain.sample(random_state=rng)) for field, domain in space.items()}
        for _ in range(options.num_samples)
    ]
    return trials_at(sweep, base, points)


# -- one trial, inside Tune --------------------------------------------------------------------

Job = tuple[str, dict[str, Any], int]  # run directory, config values, epochs


def tune_trial(config: dict[str, Any], jobs: dict[str, Job]) -> None:
    """Tune's trainable: run one trial, reporting each epoch but the last, then the end.

    A scheduler's stop ends the trial inside ``tune.report`` (after that epoch's checkpoint).
    The last epoch is reported only once the run has written its summary, since a scheduler
    stops every trial at its last epoch.
    """
    from ray import tune

    run_dir, values, epochs = jobs[config["trial"]["name"]]

    def report(row: dict[str, float]) -> None:
        if 1 <= row["epoch"] < epochs:
            tune.report(dict(row))

    outcome = run_trial(run_dir, values, on_epoch=report)
    if outcome["status"] == "failed":  # Tune records it as errored; a re-run restarts it
        raise RuntimeError(outcome["error"])
    final = {k: v for k, v in outcome.items() if isinstance(v, int | float) and v is not None}
    tune.report({"epoch": outcome.get("epochs_completed") or 0, **final})


def trial_name(trial: Any) -> str:
    """Tune's name (and directory name) of a trial: the sweep's own (``trial-007``)."""
    return str(trial.config["trial"]["name"])


# -- the experiment ----------------------------------------------------------------------------


def settle(run_dir: Path, error: object, last_epoch: object, scheduler: str) -> None:
    """Record how Tune ended a trial that left no summary: its error, or its early stop."""
    if ended(run_dir):
        return
    if error is not None:
        if not (run_dir / ERROR_FILE).is_file():  # the worker died: nothing wrote why
            record_error(run_dir, f"{type(error).__name__}: {error}")
    elif isinstance(last_epoch, int | float) and last_epoch >= 1 and run_dir.is_dir():
        record_stopped(run_dir, int(last_epoch), scheduler)


def keep_options(sweep_dir: Path, options: TuneOptions) -> None:
    """Record the options a sweep runs on Tune with; refuse others for the same sweep (its
    Tune experiment, restored on a re-run, keeps its scheduler and search)."""
    path = sweep_dir / OPTIONS_FILE
    text = json.dumps(asdict(options), sort_keys=True)
    if path.is_file() and path.read_text(encoding="utf-8") != text:
        raise ConfigError(
            f"{sweep_dir} was swept on Ray Tune with {path.read_text(encoding='utf-8')}; "
            "run it again with the same --scheduler/--num-samples options, or choose a new --out"
        )
    atomic.write_text(path, text)


def _scheduler(options: TuneOptions, sweep: SweepConfig, max_t: int) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if options.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="epoch",
        metric=sweep.metric,
        mode=sweep.mode,
        max_t=max_t,
        grace_period=min(options.grace_period, max_t),
        reduction_factor=options.reduction_factor,
        brackets=options.brackets,
    )


@contextmanager
def tune_output(progress: bool) -> Iterator[None]:
    """Tune's experiment and trial tables on standard error, like insitu's progress (standard
    output carries the results table); when quiet, neither they nor Tune's logged tracebacks
    of failed trials (the table and each trial's error.txt say why)."""
    if progress:
        with redirect_stdout(sys.stderr):
            yield
        return
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        with redirect_stdout(io.StringIO()):
            yield
    finally:
        tune_logger.setLevel(level)


def run_tune(
    sweep: SweepConfig,
    trials: list[Trial],
    pending: list[Trial],
    sweep_dir: Path,
    options: TuneOptions,
    *,
    progress: bool,
) -> None:
    """Run ``pending`` trials as a Tune experiment in ``sweep_dir`` (Ray already joined), or
    restore the experiment an earlier run of the sweep left there."""
    tune = import_tune()

    sweep_dir = sweep_dir.resolve()  # Tune's trials run in their own working directories
    epochs = {t.name: make_config(t.values).epochs for t in trials}
    jobs = {t.name: (str(sweep_dir / t.name), t.values, epochs[t.name]) for t in trials}
    trainable = tune.with_resources(tune.with_parameters(tune_trial, jobs=jobs), {"cpu": 1})
    experiment = str(sweep_dir / TUNE_DIR)
    if tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(experiment, trainable, restart_errored=True)
    else:
        entries = [{"name": t.name, "seed": t.seed, "params": t.params} for t in pending]
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(entries)},
            tune_config=tune.TuneConfig(
                scheduler=_scheduler(options, sweep, max(epochs.values())),
                reuse_actors=True,  # one worker process per CPU, not one per trial
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(sweep_dir),
                verbose=1 if progress else 0,
                failure_config=tune.FailureConfig(max_failures=sweep.retries),
            ),
        )
    with tune_output(progress):
        results = tuner.fit()
    for result in results:
        name = result.config["trial"]["name"] if result.config else None
        if name in jobs:
            last = (result.metrics or {}).get("epoch")
            settle(sweep_dir / name, result.error, last, options.scheduler)
