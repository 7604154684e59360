"""``insitu demo``: the three first algorithms on embedded digits, two device presets, one table."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from insitu import atomic
from insitu.experiments.config import make_config
from insitu.experiments.run import RunResult, train

DEMO_DEVICES = ("ecram-organic", "reram-taox")
DEMO_ALGORITHMS = ("software", "transfer", "analog-sgd")


def run_demo(
    root: Path,
    *,
    epochs: int = 20,
    instances: int = 2,
    console: Console | None = None,
    progress: bool = True,
) -> list[RunResult]:
    """Train every (algorithm, device) pair on digits; print and save one table."""
    console = console or Console()
    results: list[RunResult] = []
    for device in DEMO_DEVICES:
        for algorithm in DEMO_ALGORITHMS:
            if algorithm == "software" and results and device != DEMO_DEVICES[0]:
                continue  # software does not depend on the device
            cfg = make_config(
                {
                    "algorithm": algorithm,
                    "device": device,
                    "dataset": "digits",
                    "hidden": [32],
                    "epochs": epochs,
                    "instances": instances,
                    "lr": 0.1,
                    "seed": 0,
                }
            )
            console.print(f"[bold]{algorithm}[/] on [bold]{device}[/]")
            t0 = time.perf_counter()
            res = train(cfg, root / f"{algorithm}-{device}", console=console, progress=progress)
            res.summary["demo_wall_s"] = time.perf_counter() - t0
            results.append(res)
    table = Table(title="insitu demo: digits, MLP 64-32-10, sigmoid")
    for col in ("algorithm", "device", "test accuracy", "device pulses", "wall time (s)"):
        table.add_column(col, justify="left" if col in ("algorithm", "device") else "right")
    lines = [
        "| algorithm | device | test accuracy | device pulses | wall time (s) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary
        device = "-" if r.config.algorithm == "software" else r.config.device
        acc = f"{100 * s['test_acc_mean']:.1f} ± {100 * s['test_acc_std']:.1f} %"
        pulses = f"{s['events'].get('device_pulse', 0):.3g}"
        wall = f"{s['demo_wall_s']:.1f}"
        table.add_row(r.config.algorithm, device, acc, pulses, wall)
        lines.append(f"| {r.config.algorithm} | {device} | {acc} | {pulses} | {wall} |")
    console.print(table)
    atomic.write_text(root / "demo.md", "\n".join(lines) + "\n")
    console.print(f"runs and plots in {root}")
    return results
