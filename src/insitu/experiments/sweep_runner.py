"""Running a sweep: trials in a local process pool or on Ray Tune (see
:mod:`insitu.experiments.sweep_tune`), a results table, sweep plots.

Each trial is one run directory under the sweep directory. Running a sweep again skips the
trials that ended, resumes those interrupted (from their checkpoints) and retries those that
failed; a failing trial is recorded with its error and never stops the others.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from insitu import atomic
from insitu.errors import ConfigError
from insitu.experiments.progress import progress_bar
from insitu.experiments.ray_cluster import ray_session
from insitu.experiments.sweep import SweepConfig, Trial, expand, resolved_text
from insitu.experiments.sweep_results import write_results
from insitu.experiments.sweep_trial import ended, run_trial, trial_outcome
from insitu.experiments.sweep_tune import TuneOptions, keep_options, run_tune, search_trials

SWEEP_FILE = "sweep.yaml"
BACKENDS = ("local", "ray-tune", "ray")  # "ray": the same as "ray-tune"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 1.0  # how often a worker without prctl looks for its parent


@dataclass
class SweepResult:
    """What a sweep produced: one row per trial, where the table and plots are."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    columns: list[str]
    plots: list[Path]
    wall_s: float


# -- backends ----------------------------------------------------------------------------------

Job = tuple[Trial, Path]
Done = tuple[Trial, dict[str, Any]]


def _worker_start() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    die_with_parent()


def die_with_parent() -> None:
    """End this worker process when the sweep that started it dies, even by SIGKILL.

    A pool's workers otherwise outlive a killed parent as orphans, still training.
    On Linux the kernel sends SIGKILL on the parent's death (strictly, when the thread that
    started the worker ends: run_local's pool lives and dies within one thread); elsewhere a
    daemon thread watches the parent's process id.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            # The parent may have died before prctl took effect: nothing would signal then.
            if os.getppid() != parent:
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="insitu-parent-watch", daemon=True).start()


def run_local(jobs: list[Job], workers: int | None) -> Iterator[Done]:
    """Trials in a pool of processes, one per core by default."""
    if not jobs:
        return
    n = min(workers or os.cpu_count() or 1, len(jobs))
    # Fresh interpreters (spawn): a forked copy of a process that has started torch's
    # threads can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n, mp_context=context, initializer=_worker_start) as pool:
        futures = {pool.submit(run_trial, str(path), t.values): t for t, path in jobs}
        for future in as_completed(futures):
            trial = futures[future]
            try:
                yield trial, future.result()
            except Exception as err:  # the worker process itself died
                yield trial, {"status": "failed", "error": f"{type(err).__name__}: {err}"}


# -- the sweep ---------------------------------------------------------------------------------


def prepare_sweep_dir(sweep_dir: Path, resolved: str) -> None:
    """A new sweep directory, or the same sweep's earlier one; never another sweep's."""
    saved = sweep_dir / SWEEP_FILE
    if saved.is_file():
        if saved.read_text(encoding="utf-8") != resolved:
            raise ConfigError(
                f"{sweep_dir} holds a different sweep (its {SWEEP_FILE} differs); "
                "choose a new --out to run this one"
            )
        return
    atomic.make_dir(sweep_dir, "--out", "a new directory or an earlier one of this sweep")
    if any(sweep_dir.iterdir()):
        raise ConfigError(f"{sweep_dir} already holds files and is not a sweep directory")
    atomic.write_text(saved, resolved)


def backend_name(backend: str) -> str:
    """The backend ``backend`` names ("ray" is Ray Tune, which replaced plain Ray tasks)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return "ray-tune" if backend == "ray" else backend


def sweep_trials(
    sweep: SweepConfig, base: dict[str, Any], backend: str, tune: TuneOptions | None = None
) -> list[Trial]:
    """The trials ``backend`` runs, every config validated (so before any work starts)."""
    if backend_name(backend) != "ray-tune":
        return expand(sweep, base)
    options = tune or TuneOptions()
    options.check(sweep)
    return search_trials(sweep, base, options)


def run_sweep(
    sweep: SweepConfig,
    base: dict[str, Any],
    sweep_dir: Path,
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    console: Console | None = None,
    progress: bool = True,
    connect_timeout_s: float = 30.0,
    tune: TuneOptions | None = None,
) -> SweepResult:
    """Run every trial of ``sweep`` not yet ended into ``sweep_dir``; write table and plots.

    ``tune`` (the scheduler and search) applies to the ``ray-tune`` backend only.
    """
    backend = backend_name(backend)
    if tune is not None and backend != "ray-tune":
        raise ConfigError("scheduler and search options are Ray Tune's: add --backend ray-tune")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if not connect_timeout_s > 0:
        raise ConfigError(f"--connect-timeout must be > 0 seconds, got {connect_timeout_s:g}")
    console = console or Console(stderr=True)
    options = tune or TuneOptions()
    trials = sweep_trials(sweep, base, backend, options)
    prepare_sweep_dir(sweep_dir, resolved_text(sweep, base, trials))
    if backend == "ray-tune":
        keep_options(sweep_dir, options)
    started = time.perf_counter()
    jobs: list[Job] = []
    outcomes: dict[str, dict[str, Any]] = {}
    for t in trials:
        path = sweep_dir / t.name
        if ended(path):  # in an earlier run of the sweep
            outcomes[t.name] = trial_outcome(path)
        else:
            jobs.append((t, path))
    if jobs and backend == "ray-tune":
        with ray_session(address, workers, connect_timeout_s, backend):
            run_tune(sweep, trials, [t for t, _ in jobs], sweep_dir, options, progress=progress)
        outcomes.update({t.name: trial_outcome(path) for t, path in jobs})
    elif jobs:
        with progress_bar(console, progress, "trials") as bar:
            task = bar.add_task("trials", total=len(trials), completed=len(outcomes), info="")
            for trial, outcome in run_local(jobs, workers):
                outcomes[trial.name] = outcome
                bar.update(task, advance=1, info=f"{trial.name} {outcome['status']}")
    rows, cols, plots = write_results(sweep, trials, outcomes, sweep_dir)
    return SweepResult(sweep_dir, rows, cols, plots, time.perf_counter() - started)
