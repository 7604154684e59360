"""Running a sweep: trials in a local process pool or on Ray, a results table, sweep plots.

Each trial is one run directory under the sweep directory. Running a sweep again skips the
trials that ended, resumes those interrupted (from their checkpoints) and retries those that
failed; a failing trial is recorded with its error and never stops the others.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from insitu import atomic
from insitu.errors import ConfigError, InsituError
from insitu.experiments.progress import progress_bar
from insitu.experiments.sweep import SweepConfig, Trial, expand, resolved_text
from insitu.experiments.sweep_results import write_results

SWEEP_FILE = "sweep.yaml"
ERROR_FILE = "error.txt"
# Final numbers of a run, read from its summary and its last metrics row.
SUMMARY_COLUMNS = ("test_acc_mean", "test_acc_std", "train_acc_mean", "epochs_completed")
LAST_ROW_COLUMNS = ("loss_mean", "device_pulses", "array_reads")
BACKENDS = ("local", "ray")
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


# -- one trial ---------------------------------------------------------------------------------


def run_trial(run_dir: str, values: dict[str, Any]) -> dict[str, Any]:
    """Run (or resume, or skip) one trial; never raises: a failure comes back as a row.

    A top-level function, so process pools and Ray can ship it to their workers.
    """
    import torch

    from insitu.errors import DivergenceError
    from insitu.experiments.config import make_config
    from insitu.experiments.crossbar_run import train

    torch.set_num_threads(1)  # one trial per core: threads inside a trial only oversubscribe
    path = Path(run_dir)
    (path / ERROR_FILE).unlink(missing_ok=True)  # an earlier failure, now retried
    try:
        cfg = make_config(values)
        resume = (path / "config.yaml").is_file()
        train(cfg, path, console=Console(file=io.StringIO()), progress=False, resume=resume)
    except DivergenceError:
        pass  # the run directory holds the metrics and a summary saying so
    except Exception as err:
        try:
            path.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path / ERROR_FILE, traceback.format_exc())
        except (InsituError, OSError):
            pass  # e.g. the full disk that failed the trial: the row still says why
        return {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    return trial_outcome(path)


def trial_outcome(path: Path) -> dict[str, Any]:
    """Status, final metrics and energy totals of the run in ``path``."""
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        error = path / ERROR_FILE
        if error.is_file():
            lines = error.read_text(encoding="utf-8").strip().splitlines()
            return {"status": "failed", "error": lines[-1] if lines else "failed"}
        return {"status": "interrupted", "error": ""}
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    row: dict[str, Any] = {"status": summary.get("status"), "error": summary.get("message", "")}
    for key in SUMMARY_COLUMNS:
        row[key] = summary.get(key)
    with open(path / "metrics.csv", newline="", encoding="utf-8") as fh:
        last = list(csv.DictReader(fh))[-1:] or [{}]
    for key in LAST_ROW_COLUMNS:
        value = last[0].get(key)
        row[key] = float(value) if value not in (None, "") else None
    row.update(energy_totals(summary.get("energy")))
    row["wall_s"] = summary.get("wall_s")
    return row


def energy_totals(energy: Any, prefix: str = "energy") -> dict[str, float]:
    """The numbers of a summary's ``energy`` section (if any), flattened to dotted names."""
    found: dict[str, float] = {}
    if isinstance(energy, dict):
        for key, value in energy.items():
            found.update(energy_totals(value, f"{prefix}.{key}"))
    elif isinstance(energy, int | float) and not isinstance(energy, bool):
        found[prefix] = float(energy)
    return found


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


def _cannot_join(address: str, why: str) -> ConfigError:
    return ConfigError(
        f"cannot join the Ray cluster at --address {address}: {why} (start one with "
        "`ray start --head`, or leave out --address to start a local one)"
    )


def probe_address(address: str, timeout_s: float) -> None:
    """Fail at once if nothing listens at a ``host:port`` (or ``ray://host:port``) address.

    ray.init would retry such an address for minutes; "auto" and other forms Ray resolves
    itself are left to it (and to the timeout around it).
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise _cannot_join(address, f"nothing answers there ({why.lower()})") from None


@contextmanager
def time_limit(seconds: float, on_timeout: Callable[[], Exception]) -> Iterator[None]:
    """Raise ``on_timeout()`` if the body runs longer than ``seconds``.

    A real-time timer interrupts the main thread (where the command line runs ray.init);
    elsewhere, or without SIGALRM, the body runs unbounded.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise on_timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_ray(
    jobs: list[Job],
    address: str | None,
    num_cpus: int | None,
    retries: int,
    connect_timeout_s: float = 30.0,
) -> Iterator[Done]:
    """Trials as Ray tasks: on the cluster at ``address`` ("auto": the one this machine belongs
    to), or on a local Ray instance started here (and stopped afterwards).

    Ray is joined at once (giving up after ``connect_timeout_s`` seconds), before the first
    trial is asked for, so a cluster that cannot be joined fails before any progress shows.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs the ray package: pip install ray") from None
    if not jobs:
        return iter(())
    started_here = not ray.is_initialized()
    if started_here:
        env = {"env_vars": {"OMP_NUM_THREADS": "1"}}
        if address is None:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env=env,
                configure_logging=False,
            )
        else:
            probe_address(address, connect_timeout_s)
            late = _cannot_join(address, f"no answer within {connect_timeout_s:g} s")
            try:
                with time_limit(connect_timeout_s, lambda: late):
                    ray.init(address=address, log_to_driver=False, runtime_env=env)
            except ConfigError:  # the time limit's own error
                raise
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise _cannot_join(address, str(err)) from None
    return _ray_trials(ray, jobs, retries, started_here)


def _ray_trials(ray: Any, jobs: list[Job], retries: int, started_here: bool) -> Iterator[Done]:
    try:
        task = ray.remote(num_cpus=1, max_retries=retries)(run_trial)
        pending = {task.remote(str(path), t.values): t for t, path in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(ready[0])
            try:
                yield trial, ray.get(ready[0])
            except Exception as err:  # the task's worker died more often than retries allow
                yield trial, {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    finally:
        if started_here:
            ray.shutdown()


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
) -> SweepResult:
    """Run every trial of ``sweep`` not yet ended into ``sweep_dir``; write table and plots."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if not connect_timeout_s > 0:
        raise ConfigError(f"--connect-timeout must be > 0 seconds, got {connect_timeout_s:g}")
    console = console or Console(stderr=True)
    trials = expand(sweep, base)  # every config validated before any work starts
    prepare_sweep_dir(sweep_dir, resolved_text(sweep, base, trials))
    started = time.perf_counter()
    outcomes: dict[str, dict[str, Any]] = {}
    jobs: list[Job] = []
    for t in trials:
        path = sweep_dir / t.name
        if (path / "summary.json").is_file():
            outcomes[t.name] = trial_outcome(path)  # ended in an earlier run of the sweep
        else:
            jobs.append((t, path))
    if backend == "ray":
        done = run_ray(jobs, address, workers, sweep.retries, connect_timeout_s)
    else:
        done = run_local(jobs, workers)
    with progress_bar(console, progress, "trials") as bar:
        task = bar.add_task("trials", total=len(trials), completed=len(outcomes), info="")
        for trial, outcome in done:
            outcomes[trial.name] = outcome
            bar.update(task, advance=1, info=f"{trial.name} {outcome['status']}")
    rows, cols, plots = write_results(sweep, trials, outcomes, sweep_dir)
    return SweepResult(sweep_dir, rows, cols, plots, time.perf_counter() - started)
