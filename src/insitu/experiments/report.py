"""``insitu report``: one self-contained HTML page for a run or a sweep, viewable offline.

Everything is inside the one file: plots as base64 data URIs, tables as HTML, no scripts, no
style sheets or fonts fetched, no links leaving the page.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from insitu import atomic
from insitu.energy import get_profile, price
from insitu.errors import ConfigError
from insitu.experiments.sweep_results import RESULTS_DB, read_sqlite
from insitu.experiments.sweep_runner import SWEEP_FILE

REPORT_NAME = "report.html"
DEMO_FILE = "demo.json"  # written by ``insitu demo``, with its figure
DEMO_FIGURE = "demo.png"
# Plots of a run, in the order a reader wants them; any other PNG follows.
RUN_PLOTS = ("learning_curve.png", "conductance_histogram.png")
STYLE = """
body { font-family: sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; }
div.scroll { max-width: 100%; overflow-x: auto; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.text { text-align: left; }
tr.best { background: #e6f4e6; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #444; }
"""
# What each figure shows, by file name (a sweep plot's caption names its field).
CAPTIONS = {
    "learning_curve.png": "Learning curve: accuracy (left) and training loss (right) per epoch, "
    "the mean over chip instances with a band of one standard deviation; epoch 0 is the "
    "untrained network, the dotted line chance.",
    "conductance_histogram.png": "Final conductances of every layer, all chip instances pooled; "
    "the dashed line is the reference conductance.",
    "chip_activity.png": "Hidden spikes on the chip and measured against modelled membrane traces.",
}


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_fraction(column: str) -> bool:
    """Columns holding a fraction of samples (accuracies, reconstruction), shown in percent."""
    return re.search(r"(^|_)acc(_|$)|reconstruction", column) is not None


def _number(value: float) -> str:
    """At most 4 significant digits and 4 decimals; whole numbers in full."""
    size = abs(value)
    if not math.isfinite(value):
        return "n/a" if math.isnan(value) else str(value)
    if value.is_integer() and size < 1e15:
        return f"{value:,.0f}"
    if 0.1 <= size < 1e5:
        return f"{value:.4g}"
    if 0.01 <= size < 0.1:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def _fmt(value: Any, column: str = "") -> str:
    """A cell's text: fractions as percentages, floats short, lists element by element."""
    if isinstance(value, list):
        return ", ".join(_fmt(v, column) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if _is_fraction(column) and math.isfinite(value):
        return f"{100 * value:.2f} %"
    return _number(float(value))


def _table(
    columns: list[str],
    rows: list[list[Any]],
    highlight: int | None = None,
    *,
    row_names: bool = False,
) -> str:
    """An HTML table (scrolling sideways in its box when wide). Cells are formatted by their
    column's name, or with ``row_names`` by the row's first cell (field/value tables)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for k, row in enumerate(rows):
        cls = ' class="best"' if k == highlight else ""
        cells = "".join(
            ("<td>" if _numeric(v) else '<td class="text">')
            + _esc(_fmt(v, str(row[0]) if row_names else c))
            + "</td>"
            for c, v in zip(columns, row, strict=True)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _numeric(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_numeric(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _caption(path: Path) -> str:
    """What the figure in ``path`` shows (its name when it is not one insitu writes)."""
    if path.name in CAPTIONS:
        return CAPTIONS[path.name]
    if path.name.startswith("energy-"):
        return (
            "Energy and critical-path time per training sample and per inference: the chip by "
            "event kind (top) and against the GPU reference (bottom, log scale)."
        )
    if path.name.startswith("sweep_"):
        field = path.stem.removeprefix("sweep_")
        return (
            f"The sweep's metric against {field}: every finished trial a dot, the mean over "
            "trials at each value a line with error bars of one standard deviation."
        )
    return path.stem.replace("_", " ")


def _figures(paths: list[Path]) -> str:
    return "".join(_figure(p, _caption(p)) for p in paths)


def _pngs(folder: Path, first: tuple[str, ...] = ()) -> list[Path]:
    found = sorted(p for p in folder.glob("*.png") if p.is_file())
    return [folder / n for n in first if (folder / n).is_file()] + [
        p for p in found if p.name not in first
    ]


def _page(title: str, sections: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1>{''.join(sections)}</body></html>\n"
    )


def _read_csv(path: Path) -> tuple[list[str], list[list[Any]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows: list[list[Any]] = []
        for raw in reader:
            row: list[Any] = []
            for cell in raw:
                try:
                    row.append(float(cell))
                except ValueError:
                    row.append(cell)
            rows.append(row)
    return header, rows


def _energy_section(summary: dict[str, Any]) -> str:
    """The summary's energy numbers (if the run has them), flattened to dotted names."""
    from insitu.experiments.sweep_trial import energy_totals

    totals = energy_totals(summary.get("energy"))
    if not totals or summary["energy"].get("train_joules") == 0:
        return ""  # no chip trained (software): nothing was priced
    rows = [[k.removeprefix("energy."), v] for k, v in sorted(totals.items())]
    return "<h2>Energy</h2>" + _table(["quantity", "value"], rows)


def _events_section(summary: dict[str, Any]) -> str:
    """The run's event log: count of each kind (training, evaluation, all) and its energy
    when the summary names the cost profile it was priced with."""
    events: dict[str, float] = summary.get("events") or {}
    if not events:
        return ""
    train = summary.get("train_events", {})
    evaluation = summary.get("eval_events", {})
    energy = summary.get("energy")
    priced = None
    if isinstance(energy, dict) and isinstance(energy.get("profile"), str):
        try:
            priced = price(events, get_profile(energy["profile"]))
        except ConfigError:
            priced = None  # a profile or event kind this version does not know: counts only
    columns = ["event", "training (with setup)", "evaluation", "all"]
    if priced is not None:
        columns.append(f"energy (J, profile {priced.profile})")
    rows = []
    for kind, count in sorted(events.items()):
        row = [kind, train.get(kind), evaluation.get(kind), count]
        if priced is not None:
            row.append(priced.joules[kind])
        rows.append(row)
    note = "<p>Events logged by the chip over the whole run, all instances together.</p>"
    return "<h2>Events</h2>" + note + _table(columns, rows)


def run_sections(run_dir: Path, heading: str = "") -> list[str]:
    """Config, summary, metrics table and plots of one run directory."""
    sections = []
    if heading:
        sections.append(f"<h2>{_esc(heading)}</h2>")
    summary_path = run_dir / "summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        shown = [
            [k, json.dumps(summary[k]) if isinstance(summary[k], dict) else summary[k]]
            for k in (
                "status",
                "message",
                "algorithm",
                "device",
                "dataset",
                "dataset_origin",
                "dataset_sha256",
                "layers",
                "instances",
                "epochs_completed",
                "test_acc_mean",
                "test_acc_std",
                "test_acc",
                "test_exact_reconstruction",
                "train_samples",
                "wall_s",
            )
            if k in summary
        ]
        sections.append("<h2>Summary</h2>" + _table(["field", "value"], shown, row_names=True))
    else:
        sections.append("<p>The run has not ended (no summary.json): metrics so far.</p>")
    metrics = run_dir / "metrics.csv"
    if metrics.is_file():
        header, rows = _read_csv(metrics)
        sections.append("<h2>Metrics per epoch</h2>" + _table(header, rows))
    plots = _pngs(run_dir, RUN_PLOTS)
    if plots:
        sections.append("<h2>Plots</h2>" + _figures(plots))
    sections.append(_events_section(summary))
    sections.append(_energy_section(summary))
    config = run_dir / "config.yaml"
    if config.is_file():
        sections.append(f"<h2>Config</h2><pre>{_esc(config.read_text(encoding='utf-8'))}</pre>")
    return sections


def sweep_sections(sweep_dir: Path) -> list[str]:
    """Results table (best trial marked), sweep plots, the best trial's run, the sweep."""
    import yaml

    doc = yaml.safe_load((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8"))
    spec = doc["sweep"]
    metric, mode = spec["metric"], spec["mode"]
    sections = []
    best: int | None = None
    best_name = ""
    if (sweep_dir / RESULTS_DB).is_file():
        columns, rows = read_sqlite(sweep_dir / RESULTS_DB)
        if metric in columns:
            m, s = columns.index(metric), columns.index("status")
            scored = [
                (r[m], k) for k, r in enumerate(rows) if r[s] == "finished" and r[m] is not None
            ]
            if scored:
                best = (max(scored) if mode == "max" else min(scored))[1]
                best_name = str(rows[best][0])
        note = f"<p>{len(rows)} trials; metric {_esc(metric)} ({_esc(mode)})"
        note += f"; best: {_esc(best_name)}</p>" if best_name else "</p>"
        sections.append("<h2>Results</h2>" + note + _table(columns, [list(r) for r in rows], best))
    else:
        sections.append("<p>The sweep has no results table yet.</p>")
    plots = _pngs(sweep_dir)
    if plots:
        sections.append("<h2>Sweep plots</h2>" + _figures(plots))
    if best_name and (sweep_dir / best_name).is_dir():
        sections += run_sections(sweep_dir / best_name, f"Best trial: {best_name}")
    sections.append(
        "<h2>Sweep</h2><pre>"
        + _esc(yaml.safe_dump({"sweep": spec, "base": doc["base"]}, sort_keys=False))
        + "</pre>"
    )
    return sections


def demo_sections(demo_dir: Path) -> list[str]:
    """Each seed system of ``insitu demo``: the paper's figure beside the measured one, its
    table, then every run's own sections."""
    doc = json.loads((demo_dir / DEMO_FILE).read_text(encoding="utf-8"))
    sections = []
    for system in doc["systems"]:
        rows = [
            [
                run["label"],
                f"{run['metric_mean']:.1f} ± {run['metric_std']:.1f} %",
                run["note"],
                run["pulses_per_sample"],
                round(run["wall_s"], 1),
            ]
            for run in system["runs"]
        ]
        sections.append(
            f"<h2>{_esc(system['title'])}</h2><p>{_esc(system['paper'])}: "
            f"{_esc(system['paper_figure'])}.<br>{_esc(system['task'])}; "
            f"{_esc(system['measured'])}.<br>"
            f"Full scale: <code>{_esc(system['full_scale'])}</code></p>"
            + _table(["method", system["metric"], "note", "pulses/sample", "time (s)"], rows)
        )
    priced = doc.get("energy") or []
    if priced:
        rows = [
            [
                r["method"],
                f"{r['chip_joules']:.3g} J",
                f"{r['gpu_joules']:.3g} J",
                f"{r['gpu_over_chip_energy']:.3g}",
                "" if r["gpu_over_chip_time"] is None else f"{r['gpu_over_chip_time']:.3g}",
            ]
            for r in priced
        ]
        sections.append(
            "<h2>Training cost per sample: chip against a GPU</h2>"
            f"<p>GPU: {_esc(priced[0]['gpu'])}, the same network and batch trained by backprop, "
            "priced by a roofline that leaves out kernel launches and idle time (a lower bound "
            "on a real GPU's cost for networks this small); a ratio above 1 favours the chip."
            "</p>" + _table(["method", "chip", "GPU", "GPU/chip energy", "GPU/chip time"], rows)
        )
    if (demo_dir / DEMO_FIGURE).is_file():
        sections.insert(
            0,
            _figure(
                demo_dir / DEMO_FIGURE,
                "Each seed system: every method's metric, mean ± std over chips; the paper's "
                "rule in orange",
            ),
        )
    for system in doc["systems"]:
        for run in system["runs"]:
            sections += run_sections(
                demo_dir / run["run_dir"], f"{system['title']}: {run['label']}"
            )
    return sections


def write_report(folder: Path, out: Path | None = None) -> Path:
    """Write the HTML report of a run, sweep or demo directory (default: ``folder/report.html``)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a directory; give a run or sweep directory")
    if (folder / DEMO_FILE).is_file():
        title = f"insitu demo {folder.name}"
        sections = demo_sections(folder)
    elif (folder / SWEEP_FILE).is_file():
        title = f"insitu sweep {folder.name}"
        sections = sweep_sections(folder)
    elif (folder / "config.yaml").is_file():
        title = f"insitu run {folder.name}"
        sections = run_sections(folder)
    else:
        raise ConfigError(
            f"{folder} is neither a run directory (config.yaml) nor a sweep directory "
            f"({SWEEP_FILE})"
        )
    path = out if out is not None else folder / REPORT_NAME
    atomic.write_text(path, _page(title, sections))
    return path
