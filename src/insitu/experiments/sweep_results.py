"""A sweep's results: one row per trial as SQLite and CSV, and the metric against each field."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from insitu import atomic
from insitu.experiments.plots import save_figure
from insitu.experiments.sweep import SWEEP_METRICS, SweepConfig, Trial

RESULTS_DB = "results.sqlite"
RESULTS_CSV = "results.csv"
TABLE = "trials"
METRIC_COLUMNS = (*SWEEP_METRICS, "epochs_completed")


def _cell(value: Any) -> Any:
    """A value a table cell can hold: lists and mappings as JSON text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def result_rows(
    sweep: SweepConfig, trials: list[Trial], outcomes: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per trial (in trial order) and the column names."""
    energy = sorted({k for o in outcomes.values() for k in o if k.startswith("energy.")})
    columns = [
        "trial",
        "seed",
        *sweep.swept,
        "status",
        *METRIC_COLUMNS,
        *energy,
        "wall_s",
        "error",
    ]
    rows = []
    for t in trials:
        outcome = outcomes.get(t.name, {"status": "not run", "error": ""})
        row: dict[str, Any] = {"trial": t.name, "seed": t.seed}
        row.update({k: _cell(t.params[k]) for k in sweep.swept})
        row.update({k: _cell(outcome.get(k)) for k in columns if k not in row})
        rows.append(row)
    return rows, columns


def write_results(
    sweep: SweepConfig,
    trials: list[Trial],
    outcomes: dict[str, dict[str, Any]],
    sweep_dir: Path,
) -> tuple[list[dict[str, Any]], list[str], list[Path]]:
    """Write results.sqlite, results.csv and one plot per swept field; return rows, columns,
    plots."""
    rows, columns = result_rows(sweep, trials, outcomes)
    write_csv(sweep_dir / RESULTS_CSV, rows, columns)
    write_sqlite(sweep_dir / RESULTS_DB, rows, columns)
    plots = [
        sweep_plot(sweep, rows, field, sweep_dir / f"sweep_{_slug(field)}.png")
        for field in sweep.swept
    ]
    return rows, columns, plots


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write_sqlite(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A fresh database file with table ``trials``, swapped in atomically."""
    with atomic.atomic_path(path, suffix=".tmp") as tmp:
        tmp.unlink()  # sqlite makes its own file
        db = sqlite3.connect(tmp)
        try:
            names = ", ".join(_quote(c) for c in columns)
            db.execute(f"CREATE TABLE {TABLE} ({names})")
            marks = ", ".join("?" for _ in columns)
            db.executemany(
                f"INSERT INTO {TABLE} ({names}) VALUES ({marks})",
                [[r.get(c) for c in columns] for r in rows],
            )
            db.commit()
        finally:
            db.close()


def read_sqlite(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows of a results database (for reports and tests)."""
    db = sqlite3.connect(path)
    try:
        cursor = db.execute(f"SELECT * FROM {TABLE} ORDER BY trial")
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall()
    finally:
        db.close()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def sweep_plot(sweep: SweepConfig, rows: list[dict[str, Any]], field: str, path: Path) -> Path:
    """The sweep's metric against ``field``: every trial a dot, the mean over seeds a line."""
    points = [
        (r[field], r[sweep.metric])
        for r in rows
        if r["status"] == "finished" and isinstance(r.get(sweep.metric), int | float)
    ]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    xs = [p[0] for p in points]
    ys = [float(p[1]) for p in points]
    if points and _numeric(xs):
        positions = [float(x) for x in xs]
        spec = sweep.random.get(field)
        positive = min(positions) > 0
        if (spec is not None and spec.log) or (positive and max(positions) >= 20 * min(positions)):
            ax.set_xscale("log")
        ticks = None
    else:
        labels = list(dict.fromkeys(str(x) for x in xs))
        positions = [float(labels.index(str(x))) for x in xs]
        ticks = labels
    ax.scatter(positions, ys, alpha=0.6, label="trials")
    means: dict[float, list[float]] = {}
    for x, y in zip(positions, ys, strict=True):
        means.setdefault(x, []).append(y)
    if means:
        order = sorted(means)
        ax.plot(order, [sum(means[x]) / len(means[x]) for x in order], marker="o", label="mean")
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right")
    if not points:
        ax.text(0.5, 0.5, "no finished trials", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(field)
    ax.set_ylabel(sweep.metric)
    ax.set_title(f"{sweep.name}: {sweep.metric} against {field}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)
