"""Run directories: making new ones, refusing to write over old ones, their metrics file, and
recognising a finished run or the config a run was started with."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from insitu import atomic
from insitu.errors import ConfigError
from insitu.experiments.checkpoint import remove_stale_temporaries

# Fields a resumed run may change: where the data lies, how often it checkpoints.
RESUMABLE_CHANGES = frozenset({"data_dir", "checkpoint_every"})


def fresh_dir(root: Path, suffix: str = "") -> Path:
    """A new, unique, timestamped directory under ``root``: never an existing one."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{suffix}" if suffix else stamp
    atomic.make_dir(root, "--runs")
    for k in range(1000):
        path = root / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise atomic.storage_error(err, path) from err
    raise ConfigError(f"could not create a new directory under {root}")


def prepare_run_dir(path: Path, names: tuple[str, ...]) -> Path:
    """Use ``path`` if it is new or empty; refuse to write over an earlier run.

    Half-written temporaries of the run files ``names`` do not count: a run killed while
    writing its first file (a sweep's trial, say) left nothing else, and starts again.
    """
    atomic.make_dir(path, "--out", "a new or empty directory")
    remove_stale_temporaries(path, names)
    if any(path.iterdir()):
        raise ConfigError(
            f"run directory {path} already holds files; choose a new --out (nothing is overwritten)"
        )
    return path


def write_metrics(path: Path, rows: list[dict[str, float]], fields: tuple[str, ...]) -> None:
    """Write ``rows`` (one per epoch; epoch 0 is the untrained network) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in fields})
    atomic.write_text(path, buf.getvalue())


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``run_dir/metrics.csv`` as numbers."""
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def epochs_trained(rows: list[dict[str, float]]) -> int:
    """Training epochs among metrics ``rows`` (row 0 is the untrained network)."""
    return sum(1 for r in rows if r["epoch"] >= 1)


def check_resumable(cfg: BaseModel, run_dir: Path, load: Callable[[Path], BaseModel]) -> None:
    """Refuse to resume ``run_dir`` with a config other than the one it was started with
    (read by ``load``: crossbar or spiking)."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.yaml)")
    saved = load(run_dir / "config.yaml").model_dump()
    given = cfg.model_dump()
    differ = sorted(k for k in given if given[k] != saved.get(k) and k not in RESUMABLE_CHANGES)
    if differ:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {given[k]!r}" for k in differ)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({changes}); start a new run instead"
        )
