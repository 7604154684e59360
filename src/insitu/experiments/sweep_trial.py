"""One trial of a sweep: running it into its run directory, and reading how it ended.

A trial has ended when its run directory holds a summary (finished or diverged) or a stop
record (an early-stopping scheduler ended it after some epochs); one that failed holds its
error and is tried again by a re-run of the sweep, one that was interrupted resumes.
"""

from __future__ import annotations

import csv
import io
import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from insitu import atomic
from insitu.errors import InsituError

ERROR_FILE = "error.txt"
STOPPED_FILE = "stopped.json"  # written when a scheduler ended the trial early
# Final numbers of a run, read from its summary and its last metrics row.
SUMMARY_COLUMNS = ("test_acc_mean", "test_acc_std", "train_acc_mean", "epochs_completed")
LAST_ROW_COLUMNS = ("loss_mean", "device_pulses", "array_reads")


def run_trial(
    run_dir: str,
    values: dict[str, Any],
    on_epoch: Callable[[dict[str, float]], object] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or skip) one trial; never raises: a failure comes back as a row.

    A top-level function, so process pools and Ray can ship it to their workers. ``on_epoch``
    sees each epoch's metrics row (see :func:`insitu.experiments.run.run`).
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
        quiet = Console(file=io.StringIO())
        train(cfg, path, console=quiet, progress=False, resume=resume, on_epoch=on_epoch)
    except DivergenceError:
        pass  # the run directory holds the metrics and a summary saying so
    except Exception as err:
        why = f"{type(err).__name__}: {err}"
        record_error(path, why, traceback.format_exc())
        return {"status": "failed", "error": why}
    return trial_outcome(path)


def record_error(path: Path, why: str, details: str = "") -> None:
    """Keep why a trial failed in its run directory: the one line its row shows, then the
    traceback (best effort: the row says why too)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path / ERROR_FILE, f"{why}\n\n{details}" if details else why + "\n")
    except (InsituError, OSError):
        pass  # e.g. the full disk that failed the trial


def record_stopped(path: Path, epoch: int, by: str) -> None:
    """Mark the trial in ``path`` ended by scheduler ``by`` after ``epoch`` epochs."""
    atomic.write_json(path / STOPPED_FILE, {"epoch": epoch, "scheduler": by})


def ended(path: Path) -> bool:
    """Whether the trial in ``path`` ended (finished, diverged or stopped early)."""
    return (path / "summary.json").is_file() or (path / STOPPED_FILE).is_file()


def _last_row(path: Path) -> dict[str, str]:
    with open(path / "metrics.csv", newline="", encoding="utf-8") as fh:
        return (list(csv.DictReader(fh))[-1:] or [{}])[0]


def _number(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def trial_outcome(path: Path) -> dict[str, Any]:
    """Status, final metrics and energy totals of the run in ``path``."""
    summary_path = path / "summary.json"
    if (path / STOPPED_FILE).is_file() and not summary_path.is_file():
        stop = json.loads((path / STOPPED_FILE).read_text(encoding="utf-8"))
        last = _last_row(path)
        row: dict[str, Any] = {
            "status": "stopped",
            "error": f"stopped by {stop['scheduler']} after epoch {stop['epoch']}",
            "epochs_completed": stop["epoch"],
            "wall_s": _number(last.get("wall_s")),
        }
        for key in (*SUMMARY_COLUMNS[:-1], *LAST_ROW_COLUMNS):
            row[key] = _number(last.get(key))
        return row
    if not summary_path.is_file():
        error = path / ERROR_FILE
        if error.is_file():
            lines = error.read_text(encoding="utf-8").strip().splitlines()
            return {"status": "failed", "error": lines[0] if lines else "failed"}
        return {"status": "interrupted", "error": ""}
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    row = {"status": summary.get("status"), "error": summary.get("message", "")}
    for key in SUMMARY_COLUMNS:
        row[key] = summary.get(key)
    last = _last_row(path)
    for key in LAST_ROW_COLUMNS:
        row[key] = _number(last.get(key))
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
