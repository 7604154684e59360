"""Progressive gradient descent against software backprop, analog-sgd and transfer.

Same chip model (organic ECRAM by default, with its device-to-device variation), seed and data
for every method; for each dataset and depth (weight layers) trains every method over several
chip instances, then writes into --out: ``progressive.json``, ``progressive.md`` (final test
accuracy, and per-sample cost: array reads, device pulses, stored values), ``curves_<dataset>.png``
(test accuracy vs epoch, mean and spread) and ``depth.png`` (final accuracy vs depth).

    .venv/bin/python benchmarks/reproduce_progressive.py --datasets digits --epochs 20
    .venv/bin/python benchmarks/reproduce_progressive.py --datasets mnist --depths 3 \
        --epochs 3 --instances 4 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from rich.progress import Progress

from insitu import atomic
from insitu.data import load_dataset
from insitu.experiments import make_config, train
from insitu.experiments.plots import save_figure

METHODS = ("software", "analog-sgd", "progressive", "transfer")
HIDDEN = {
    "digits": {2: [32], 3: [32, 16], 5: [32, 32, 16, 16]},
    "mnist": {2: [256], 3: [256, 128], 5: [256, 128, 64, 32]},
    "fashion-mnist": {2: [256], 3: [256, 128], 5: [256, 128, 64, 32]},
}
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--depths", nargs="+", type=int, default=[2, 3, 5])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--device", default="ecram-organic")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--activation", default="sigmoid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--progressive-options",
        type=json.loads,
        default={},
        help="options of progressive as JSON, e.g. '{\"saturation_gate\": true}'",
    )
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=Path("runs/progressive"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = [(d, depth, m) for d in args.datasets for depth in args.depths for m in args.methods]
    results: list[dict[str, Any]] = []
    with Progress() as bar:
        task = bar.add_task("training", total=len(cases))
        data = {d: load_dataset(d, data_dir=args.data_dir) for d in args.datasets}
        for dataset, depth, method in cases:
            cfg = make_config(
                {
                    "algorithm": method,
                    "device": args.device,
                    "dataset": dataset,
                    "hidden": HIDDEN[dataset][depth],
                    "activation": args.activation,
                    "epochs": args.epochs,
                    "instances": args.instances,
                    "lr": args.lr,
                    "seed": args.seed,
                    "data_dir": args.data_dir,
                    "algorithm_options": args.progressive_options
                    if method == "progressive"
                    else {},
                }
            )
            run_dir = args.out / f"{dataset}-{depth}layers-{method}"
            res = train(cfg, run_dir, progress=False, dataset=data[dataset])
            s = res.summary
            samples = max(s["train_samples"], 1)
            events = s["events"]
            results.append(
                {
                    "dataset": dataset,
                    "depth": depth,
                    "method": method,
                    "curve_mean": [r["test_acc_mean"] for r in res.rows],
                    "curve_std": [r["test_acc_std"] for r in res.rows],
                    "test_acc_mean": s["test_acc_mean"],
                    "test_acc_std": s["test_acc_std"],
                    "array_reads_per_sample": events.get("array_read", 0) / samples,
                    "pulses_per_sample": events.get("device_pulse", 0) / samples,
                    "stored_values_per_sample": events.get("stored_value", 0) / samples,
                    "wall_s": s["wall_s"],
                }
            )
            bar.advance(task)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out / "progressive.json", results)
    lines = [
        f"{args.device}, {args.activation}, {args.epochs} epochs, lr {args.lr}, batch 10, "
        f"{args.instances} instances, seed {args.seed}, progressive options "
        f"{args.progressive_options}; costs per training sample per chip (evaluation excluded "
        "only from pulses; reads include the per-epoch test and train evaluation)",
        "",
        "| dataset | weight layers | method | test accuracy | array reads | device pulses |"
        " stored values | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['depth']} | {r['method']} | "
            f"{100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f} % | "
            f"{r['array_reads_per_sample'] / args.instances:.3g} | "
            f"{r['pulses_per_sample'] / args.instances:.3g} | "
            f"{r['stored_values_per_sample'] / args.instances:.3g} | {r['wall_s']:.0f} |"
        )
    atomic.write_text(args.out / "progressive.md", "\n".join(lines) + "\n")
    for dataset in args.datasets:
        fig = Figure(figsize=(5 * len(args.depths), 4))
        axes = fig.subplots(1, len(args.depths), squeeze=False)[0]
        for ax, depth in zip(axes, args.depths, strict=True):
            for r in results:
                if r["dataset"] != dataset or r["depth"] != depth:
                    continue
                epochs = range(1, len(r["curve_mean"]) + 1)
                mean, std = torch.tensor(r["curve_mean"]), torch.tensor(r["curve_std"])
                ax.plot(epochs, mean, marker=".", label=r["method"])
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
            ax.set_title(f"{dataset}, {depth} weight layers")
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("test accuracy (transfer: software until the last epoch)")
        axes[0].legend()
        save_figure(fig, args.out / f"curves_{dataset}.png")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for dataset in args.datasets:
        for method in args.methods:
            rows = [r for r in results if r["dataset"] == dataset and r["method"] == method]
            ax.errorbar(
                [r["depth"] for r in rows],
                [r["test_acc_mean"] for r in rows],
                yerr=[r["test_acc_std"] for r in rows],
                marker="o",
                capsize=3,
                label=f"{method} ({dataset})",
            )
    ax.set_xlabel("weight layers")
    ax.set_ylabel("final test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, args.out / "depth.png")
    print("\n".join(lines))
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
