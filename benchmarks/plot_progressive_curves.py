"""Learning curves from several reproduce_progressive.py runs in one figure (mean ± spread
over chip instances), each method labelled with its run.

    .venv/bin/python benchmarks/plot_progressive_curves.py \
        runs/a/progressive.json:"output-first" runs/b/progressive.json:"input-first" \
        --depth 3 --out benchmarks/progressive_curves_mnist_orders.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from matplotlib.figure import Figure

from insitu.experiments.plots import save_figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="PATH/progressive.json:LABEL")
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--skip", nargs="*", default=[], help="'method@label' to leave out")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for item in args.runs:
        path, _, label = item.partition(":")
        for r in json.loads(Path(path).read_text()):
            name = f"{r['method']}@{label}"
            if r["depth"] != args.depth or r["dataset"] != args.dataset or name in args.skip:
                continue
            epochs = range(1, len(r["curve_mean"]) + 1)
            mean, std = torch.tensor(r["curve_mean"]), torch.tensor(r["curve_std"])
            tag = r["method"] if r["method"] != "progressive" else f"progressive, {label}"
            ax.plot(epochs, 100 * mean, marker=".", label=tag)
            ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
    ax.set_title(f"{args.dataset}, {args.depth} weight layers (mean ± std over chips)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, args.out)


if __name__ == "__main__":
    main()
