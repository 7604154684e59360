"""``insitu demo``: the three seed systems side by side with their baselines, on embedded data.

1. Progressive gradient descent on organic ECRAM (van Doremaele et al., Sci. Adv. 10, eado8999,
   2024) against software backprop and analog SGD, on scikit-learn's 8x8 digits.
2. Activity-difference training restoring the nine Braille names at 20 % flipped dots on TaOx
   memristors (Yi, Kendall, Williams, Kumar, Nat. Electron. 2022), against backprop in software
   and backprop transferred onto the same chip by write-verify.
3. Surrogate-gradient training in the loop on a spiking chip with fixed-pattern mismatch
   (Cramer et al., PNAS 119, e2109194119, 2022) against train-in-software-then-deploy, on the
   digits latency-coded.

A fourth table shows why the seeds' rules need help on the devices most labs have: analog SGD on
asymmetric, 40-state TaOx ReRAM with plain device pairs, and with the best weight cell measured
for it in benchmarks/RESULTS.md (issue 21).

Each system's table puts the paper's figure beside the measured one; a last table prices a
training sample on each chip against a GPU. Settings are scaled down from the full-size configs
in ``configs/`` so the whole demo takes a few minutes on two cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from insitu import atomic
from insitu.data import NAMES
from insitu.experiments import plots
from insitu.experiments.energy import ratio_in_words
from insitu.experiments.report import DEMO_FIGURE, DEMO_FILE, write_report

_DIGITS = {"dataset": "digits", "hidden": [32], "epochs": 20, "lr": 0.1, "instances": 4}
# configs/activity_difference_braille.yaml as it was before issue 23 (mini-batch 10, lr 0.3,
# weight scale 1), with fewer training patterns and epochs.
_BRAILLE = {
    "dataset": "braille",
    "dataset_options": {"train_per_class": 200, "test_per_class": 100, "flip_rate": 0.2},
    "hidden": [63],
    "epochs": 8,
    "lr": 0.3,
    "lr_decay": 0.85,
    "instances": 4,
}
_BRAILLE_AD = {
    "algorithm": "activity-difference",
    "device": "reram-taox",
    "algorithm_options": {
        "phase": "nudged",
        "nudging": "symmetric",
        "beta": 0.5,
        "free_steps": 20,
        "nudged_steps": 8,
        "output": "activation",
        "layer_lr": [2, 1],
    },
    "update": {"mode": "count", "sequential": False, "max_pulses": 31},
}
# Digits on TaOx ReRAM: plain pairs against the best weight cell of benchmarks/reproduce_robust.py.
_CELL = {"kind": "ttv2"}
# configs/in_the_loop_digits.yaml: the digits as latency spikes on a chip with 30 % mismatch.
_SPIKING = {
    "kind": "spiking",
    "dataset": "digits",
    "hidden": [64],
    "time_steps": 20,
    "encoding": {"size": 8, "crop": 0, "tau": 8.0, "threshold": 0.2},
    "mismatch": 0.3,
    "readout_neuron": {"synapse_gain": 0.0015},
    "algorithm_options": {"lr": 0.005, "logit_scale": 10.0, "readout_penalty": 0.01},
    "epochs": 10,
    "batch_size": 32,
    "lr_decay": 0.9,
    "instances": 4,
}


@dataclass(frozen=True)
class DemoRun:
    """One training run of a system: its row label and its config fields."""

    label: str
    values: dict[str, Any]


@dataclass(frozen=True)
class System:
    """A seed paper's system: its runs, what the paper reports and how to read the result."""

    key: str
    title: str
    paper: str
    paper_figure: str
    task: str
    runs: tuple[DemoRun, ...]
    metric: str = "test accuracy"
    full_scale: str = ""


SYSTEMS: tuple[System, ...] = (
    System(
        key="progressive",
        title="Progressive gradient descent on organic ECRAM",
        paper="van Doremaele et al., Sci. Adv. 10, eado8999 (2024)",
        paper_figure="in-situ training matches software backprop",
        task="digits 8x8, MLP 64-32-10, sigmoid, ecram-organic, 4 chips",
        runs=(
            DemoRun("software", {**_DIGITS, "algorithm": "software"}),
            DemoRun("analog-sgd", {**_DIGITS, "algorithm": "analog-sgd"}),
            DemoRun("progressive", {**_DIGITS, "algorithm": "progressive"}),
        ),
        full_scale="insitu train --config configs/progressive_paper.yaml --data-dir DATA",
    ),
    System(
        key="braille",
        title="Activity-difference Braille restoration on TaOx memristors",
        paper="Yi, Kendall, Williams, Kumar, Nat. Electron. (2022)",
        paper_figure="the nine names restored from heavily distorted inputs",
        task="nine Braille names, 20 % of 60 dots flipped, 60-63-60, reram-taox, 4 chips",
        runs=(
            DemoRun("software", {**_BRAILLE, "algorithm": "software", "lr": 0.05}),
            DemoRun(
                "transfer",
                {**_BRAILLE, "algorithm": "transfer", "device": "reram-taox", "lr": 0.05},
            ),
            DemoRun("activity-difference", {**_BRAILLE, **_BRAILLE_AD}),
        ),
        metric="restored exactly",
        full_scale="insitu train --config configs/activity_difference_braille.yaml",
    ),
    System(
        key="spiking",
        title="Spiking network in the loop on a mismatched analog chip",
        paper="Cramer et al., PNAS 119, e2109194119 (2022)",
        paper_figure="MNIST 97.2 % in the loop vs 97.5 % in software; mismatch compensated",
        task="digits latency-coded, 64-64-10 LIF, 30 % fixed-pattern mismatch, 4 chips",
        runs=(
            DemoRun("deploy", {**_SPIKING, "algorithm": "deploy"}),
            DemoRun("in-the-loop", {**_SPIKING, "algorithm": "in-the-loop"}),
        ),
        full_scale="insitu spiking configs/in_the_loop_mnist.yaml --set data_dir=DATA",
    ),
    System(
        key="cells",
        title="Analog SGD on asymmetric TaOx ReRAM: plain pairs and a weight cell",
        paper="Gokmen, Front. Artif. Intell. 4, 699148 (2021)",
        paper_figure="TTv2 trains asymmetric devices of few states near software accuracy",
        task="digits 8x8, MLP 64-32-10, sigmoid, reram-taox, 4 chips",
        runs=(
            DemoRun("software", {**_DIGITS, "algorithm": "software"}),
            DemoRun("plain pairs", {**_DIGITS, "algorithm": "analog-sgd", "device": "reram-taox"}),
            DemoRun(
                f"{_CELL['kind']} cell",
                {**_DIGITS, "algorithm": "analog-sgd", "device": "reram-taox", "cell": _CELL},
            ),
        ),
        full_scale="python benchmarks/reproduce_robust.py --devices reram-taox pcm",
    ),
)


def quick_settings(values: dict[str, Any]) -> dict[str, Any]:
    """A run's fields shrunk to a smoke test: one epoch, one chip, few samples."""
    small = {**values, "epochs": 1, "instances": 1}
    if values.get("dataset") == "braille":
        small["dataset_options"] = {**values["dataset_options"], "train_per_class": 20}
        small["dataset_options"]["test_per_class"] = 10
    else:
        small.update(limit_train=200, limit_test=100)
    return small


@dataclass
class DemoRow:
    """One finished run, as the demo's tables show it."""

    system: str
    label: str
    run_dir: Path
    summary: dict[str, Any]
    wall_s: float

    def metric(self) -> tuple[float, float]:
        """The system's metric as (mean, std) over chips, in %."""
        s = self.summary
        rates = s.get("test_exact_reconstruction")
        if rates:
            mean = sum(rates) / len(rates)
            std = (sum((r - mean) ** 2 for r in rates) / len(rates)) ** 0.5
            return 100 * mean, 100 * std
        return 100 * float(s["test_acc_mean"]), 100 * float(s["test_acc_std"])

    def note(self) -> str:
        s = self.summary
        per_name = s.get("test_exact_reconstruction_per_class")
        if per_name:
            worst = min(range(len(per_name)), key=per_name.__getitem__)
            return f"worst {NAMES[worst]} {100 * per_name[worst]:.0f} %"
        if s.get("software_test_acc_mean") is not None:
            return f"software {100 * s['software_test_acc_mean']:.1f} %"
        return ""


def _train(system: System, run: DemoRun, root: Path, console: Console, progress: bool) -> DemoRow:
    from insitu.experiments.launch import launch  # either kind, by the fields' own `kind`

    run_dir = root / system.key / run.label.split(" ")[0]
    started = time.perf_counter()
    summary = launch(run.values, out=run_dir, console=console, progress=progress).summary
    return DemoRow(system.key, run.label, run_dir, summary, time.perf_counter() - started)


def _pct(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f} %"


def _pulses_per_sample(row: DemoRow) -> str:
    s = row.summary
    pulses = s.get("train_events", {}).get("device_pulse", 0.0)
    samples = s.get("train_samples", 0) * s.get("instances", 1)
    return f"{pulses / samples:.3g}" if pulses and samples else "-"


def system_table(system: System, rows: list[DemoRow]) -> Table:
    """One system's runs: metric, note, pulses per training sample, wall time."""
    table = Table(title=f"{system.title}\n{system.paper}", title_justify="left")
    for col in ("method", system.metric, "note", "pulses", "time"):
        table.add_column(col, justify="right" if col in ("pulses", "time") else "left")
    for row in rows:
        table.add_row(
            row.label,
            _pct(*row.metric()),
            row.note(),
            _pulses_per_sample(row),
            f"{row.wall_s:.0f} s",
        )
    table.caption = "mean ± std over chips; pulses per training sample and chip"
    return table


def headline(rows: list[DemoRow]) -> str:
    """The measured figure to set beside the paper's: the rule (last row) against each baseline."""
    mean, std = rows[-1].metric()
    gaps = ", ".join(
        f"{r.label} {r.metric()[0]:.1f} % ({mean - r.metric()[0]:+.1f})" for r in rows[:-1]
    )
    return f"measured: {rows[-1].label} {mean:.1f} ± {std:.1f} %; {gaps}"


def energy_rows(rows: list[DemoRow]) -> list[dict[str, Any]]:
    """Per training sample on each chip run: the chip's energy, the GPU's for the same network
    and batch, and the GPU-over-chip ratios of energy and time (insitu.energy's pricing)."""
    out = []
    for row in rows:
        energy = row.summary.get("energy") or {}
        joules = energy.get("joules_per_train_sample")
        ratios = energy.get("gpu_over_chip") or {}
        if not joules or not ratios.get("train_energy"):
            continue  # software runs and deploy train no chip
        out.append(
            {
                "system": row.system,
                "method": row.label,
                "chip_joules": joules,
                "gpu_joules": joules * ratios["train_energy"],
                "gpu_over_chip_energy": ratios["train_energy"],
                "gpu_over_chip_time": ratios.get("train_time"),
                "gpu": energy.get("gpu"),
            }
        )
    return out


def energy_table(priced: list[dict[str, Any]]) -> Table:
    """Energy and time per training sample on each chip against the GPU reference."""
    table = Table(title="Training cost per sample: chip against a GPU", title_justify="left")
    for col in ("method", "chip", "GPU", "chip energy", "chip time"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in priced:
        time_ratio = r["gpu_over_chip_time"]
        table.add_row(
            r["method"],
            f"{r['chip_joules']:.2g} J",
            f"{r['gpu_joules']:.2g} J",
            ratio_in_words(r["gpu_over_chip_energy"], "more", "less"),
            ratio_in_words(time_ratio, "slower", "faster") if time_ratio else "-",
        )
    gpu = priced[0]["gpu"] if priced else "GPU"
    # insitu.energy.gpu's roofline leaves out kernel launches and idle time: for networks this
    # small it is a lower bound on what a real GPU spends, so the ratios favour the GPU.
    table.caption = f"GPU: {gpu}, the same network and batch, roofline: a lower bound"
    return table


def run_demo(
    root: Path,
    *,
    console: Console | None = None,
    progress: bool = True,
    systems: tuple[System, ...] = SYSTEMS,
    adjust: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[DemoRow]:
    """Train every system's runs into ``root``; print the tables; write demo.json and a report.

    ``adjust`` rewrites each run's config fields (tests use it to shrink the runs).
    """
    console = console or Console()
    rows: list[DemoRow] = []
    record: list[dict[str, Any]] = []
    for system in systems:
        console.rule(f"[bold]{system.title}[/]: {system.task}")
        mine: list[DemoRow] = []
        for run in system.runs:
            console.print(f"[bold]{run.label}[/]")
            values = adjust(dict(run.values)) if adjust else run.values
            mine.append(_train(system, DemoRun(run.label, values), root, console, progress))
        console.print(system_table(system, mine))
        line = headline(mine)
        console.print(f"paper: {system.paper_figure}\n{line}")
        console.print(f"full scale: [cyan]{system.full_scale}[/]")
        rows += mine
        record.append(
            {
                "key": system.key,
                "title": system.title,
                "paper": system.paper,
                "paper_figure": system.paper_figure,
                "measured": line,
                "task": system.task,
                "metric": system.metric,
                "full_scale": system.full_scale,
                "runs": [
                    {
                        "label": r.label,
                        "run_dir": str(r.run_dir.relative_to(root)),
                        "metric_mean": r.metric()[0],
                        "metric_std": r.metric()[1],
                        "note": r.note(),
                        "pulses_per_sample": _pulses_per_sample(r),
                        "wall_s": r.wall_s,
                        "energy": r.summary.get("energy"),
                    }
                    for r in mine
                ],
            }
        )
    priced = energy_rows(rows)
    console.print(energy_table(priced))
    plots.demo_summary(
        [
            (
                s["title"],
                s["metric"],
                [(r["label"], r["metric_mean"], r["metric_std"]) for r in s["runs"]],
            )
            for s in record
        ],
        root / DEMO_FIGURE,
    )
    atomic.write_json(root / DEMO_FILE, {"systems": record, "energy": priced})
    report = write_report(root)
    console.print(f"runs in {root}\nreport: {report}")
    return rows
