"""A sweep's results: one row per trial as SQLite and CSV, and the metric against each field."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import statistics
from itertools import pairwise
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

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


def geometric_grid(values: list[float]) -> bool:
    """Whether swept ``values`` read best on a log axis: all positive and either spanning more
    than a decade or a grid of (roughly) constant ratio that is not also of constant step."""
    grid = sorted(set(values))
    if len(grid) < 2 or grid[0] <= 0:
        return False
    if grid[-1] > 10 * grid[0]:
        return True
    if len(grid) < 3:
        return False
    ratios = [b / a for a, b in pairwise(grid)]
    steps = [b - a for a, b in pairwise(grid)]
    return max(ratios) < 1.15 * min(ratios) and max(steps) > 1.15 * min(steps)


def sweep_plot(sweep: SweepConfig, rows: list[dict[str, Any]], field: str, path: Path) -> Path:
    """Save :func:`sweep_figure` to ``path``."""
    return save_figure(sweep_figure(sweep, rows, field), path)


def sweep_figure(sweep: SweepConfig, rows: list[dict[str, Any]], field: str) -> Figure:
    """The sweep's metric against ``field``: every finished trial a dot, the mean at each value
    a line with error bars: the std over the trials (seeds) at each value, or, when every value
    has one trial, the runs' own std over chip instances (a ``_mean`` metric's ``_std``)."""
    finished = [
        r
        for r in rows
        if r["status"] == "finished" and isinstance(r.get(sweep.metric), int | float)
    ]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    xs = [r[field] for r in finished]
    ys = [float(r[sweep.metric]) for r in finished]
    if finished and _numeric(xs):
        positions = [float(x) for x in xs]
        spec = sweep.random.get(field)
        if (spec is not None and spec.log) or geometric_grid(positions):
            ax.set_xscale("log")
            grid = sorted(set(positions))
            if len(grid) <= 8:  # a few swept values: tick each, written plainly
                ax.set_xticks(grid, [f"{x:g}" for x in grid])
                ax.xaxis.set_minor_locator(NullLocator())
        ticks = None
    else:
        labels = list(dict.fromkeys(str(x) for x in xs))
        positions = [float(labels.index(str(x))) for x in xs]
        ticks = labels
    ax.scatter(positions, ys, color="grey", alpha=0.6, s=16, label="trials")
    std_key = sweep.metric.removesuffix("_mean") + "_std"
    at: dict[float, list[dict[str, Any]]] = {}
    for x, r in zip(positions, finished, strict=True):
        at.setdefault(x, []).append(r)
    if at:
        order = sorted(at)
        values = [[float(r[sweep.metric]) for r in at[x]] for x in order]
        if any(len(v) > 1 for v in values):
            spreads, what = [statistics.pstdev(v) for v in values], "seeds"
        else:  # one trial per value: the spread of its chip instances, if the run has it
            own = [at[x][0].get(std_key) if sweep.metric.endswith("_mean") else None for x in order]
            spreads = [float(s) if isinstance(s, int | float) else 0.0 for s in own]
            what = "chip instances"
        ax.errorbar(
            order,
            [statistics.fmean(v) for v in values],
            yerr=spreads,
            marker="o",
            capsize=3,
            label=f"mean ± std over {what}",
        )
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right")
    if not finished:
        ax.text(0.5, 0.5, "no finished trials", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(field)
    ax.set_ylabel(sweep.metric)
    ax.set_title(f"{sweep.name}: {sweep.metric} against {field}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
