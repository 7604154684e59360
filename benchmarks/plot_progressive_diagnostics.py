"""Plot runs of diagnose_progressive.py side by side: training loss, share of output lines at
the ADC's full scale, output-layer weight rms and share of output devices at a bound.

    .venv/bin/python benchmarks/plot_progressive_diagnostics.py runs/diag_asgd.json \
        runs/diag_prog.json runs/diag_prog_gate.json --labels analog-sgd progressive \
        "progressive + saturation gate" --out benchmarks/progressive_collapse_diagnostics.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from insitu.experiments.plots import save_figure

PANELS = (
    ("training loss (running mean)", lambda r: r["loss"]),
    ("output lines at ADC full scale", lambda r: r["logit_clipped"]),
    ("output-layer weight rms", lambda r: r["tiles"][-1]["w_rms"]),
    ("output devices at a conductance bound", lambda r: r["tiles"][-1]["at_bound"]),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig = Figure(figsize=(4.2 * len(PANELS), 3.6 * len(args.runs)))
    axes = fig.subplots(len(args.runs), len(PANELS), squeeze=False, sharex=True)
    for row, (path, label) in enumerate(zip(args.runs, args.labels, strict=True)):
        records = json.loads(path.read_text())["records"]
        epochs = [r["epoch"] for r in records]
        for col, (title, get) in enumerate(PANELS):
            ax = axes[row][col]
            per_instance = list(zip(*(get(r) for r in records), strict=True))
            for k, series in enumerate(per_instance):
                ax.plot(epochs, series, lw=1, label=f"chip {k}")
            ax.set_title(f"{label}: {title}", fontsize=8)
            ax.grid(alpha=0.3)
            if row == len(args.runs) - 1:
                ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
