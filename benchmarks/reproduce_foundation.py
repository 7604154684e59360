"""Foundation acceptance numbers on embedded digits (MLP 64-32-10, sigmoid).

1. software vs analog-sgd on organic ECRAM;
2. transfer vs analog-sgd on TaOx ReRAM with 10% device-to-device variation;
3. the same two as the fraction of stuck devices grows (what write-verify cannot fix).

Writes ``foundation.json``, ``foundation.md`` and ``stuck_sweep.png`` into --out and prints
the markdown table.

    .venv/bin/python benchmarks/reproduce_foundation.py [--epochs 20] [--instances 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from rich.progress import Progress

from insitu import atomic
from insitu.algorithms import make_trainer
from insitu.data import Dataset, load_dataset
from insitu.experiments import make_config
from insitu.experiments.plots import save_figure
from insitu.experiments.run import accuracy, train_epoch


def train_once(ds: Dataset, values: dict[str, Any]) -> dict[str, Any]:
    """Train one config on ``ds``; final test accuracy of every instance and the pulses."""
    cfg = make_config({"dataset": "digits", "hidden": [32], **values})
    trainer = make_trainer(
        cfg.algorithm,
        cfg.chip_config(ds.n_features, ds.n_classes),
        instances=cfg.instances,
        seed=cfg.seed,
        lr=cfg.lr,
    )
    order = torch.Generator().manual_seed(cfg.seed + 1)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        train_epoch(trainer, ds, cfg.batch_size, order)
    trainer.finish()
    acc = accuracy(trainer, ds.x_test, ds.y_test)
    return {
        **values,
        "test_acc": acc.tolist(),
        "test_acc_mean": float(acc.mean()),
        "test_acc_std": float(acc.std(unbiased=False)),
        "device_pulses": trainer.log.counts().get("device_pulse", 0.0),
        "wall_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/foundation"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("digits")
    base = {"epochs": args.epochs, "instances": args.instances, "seed": args.seed, "lr": 0.1}
    rram = {"device": "reram-taox", "variation": 0.1}
    cases: list[dict[str, Any]] = [
        {**base, "algorithm": "software", "device": "ecram-organic"},
        {**base, "algorithm": "analog-sgd", "device": "ecram-organic"},
        {**base, "algorithm": "transfer", "device": "ecram-organic"},
        {**base, "algorithm": "analog-sgd", **rram},
        {**base, "algorithm": "transfer", **rram},
    ]
    stuck = [0.0, 0.05, 0.1, 0.2, 0.3]
    for f in stuck:
        for alg in ("analog-sgd", "transfer"):
            over = {"stuck_low": f / 2, "stuck_high": f / 2}
            cases.append({**base, "algorithm": alg, **rram, "device_overrides": over})
    results = []
    with Progress() as bar:
        task = bar.add_task("training", total=len(cases))
        for case in cases:
            results.append(train_once(ds, case))
            bar.advance(task)
    lines = [
        f"digits, MLP 64-32-10 sigmoid, {args.epochs} epochs, lr 0.1, batch 10, "
        f"{args.instances} instances, seed {args.seed}",
        "",
        "| algorithm | device | variation | stuck fraction | test accuracy (mean ± std) |"
        " device pulses |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        f = sum(r.get("device_overrides", {}).values())
        lines.append(
            f"| {r['algorithm']} | {r['device']} | {r.get('variation') or 'preset'} | "
            f"{f:.2f}{'' if 'device_overrides' in r else ' (preset)'} | "
            f"{100 * r['test_acc_mean']:.1f} ± {100 * r['test_acc_std']:.1f} % | "
            f"{r['device_pulses']:.3g} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out / "foundation.json", results)
    atomic.write_text(args.out / "foundation.md", "\n".join(lines) + "\n")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for alg in ("analog-sgd", "transfer"):
        rows = [r for r in results if r["algorithm"] == alg and "device_overrides" in r]
        ax.errorbar(
            [sum(r["device_overrides"].values()) for r in rows],
            [r["test_acc_mean"] for r in rows],
            yerr=[r["test_acc_std"] for r in rows],
            marker="o",
            capsize=3,
            label=alg,
        )
    ax.set_xlabel("fraction of stuck devices")
    ax.set_ylabel("test accuracy")
    ax.set_title("reram-taox, 10% variation, digits 64-32-10")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, args.out / "stuck_sweep.png")
    print("\n".join(lines))
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
