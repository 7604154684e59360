"""Reproduce Cramer et al., PNAS 2022: surrogate-gradient training in the loop on an analog
spiking chip with mismatch, against "train in software, then deploy" and pure software.

Tasks (each a set of runs under --out, one run directory per run):
  mnist    256-246-10 on 16x16 latency-coded MNIST: in-the-loop, software, and deploy (the
           software run's weights written to the chip)
  fashion  the same network on Fashion-MNIST: in-the-loop (its own schedule:
           FASHION_SCHEDULE)
  nmnist   the N-MNIST subset (../shared/data/nmnist_small): in-the-loop, software
  sweep    mismatch sigma_d in --sigmas: in-the-loop trained at each sigma; deploy trained once
           in software and written to the chip at each sigma (same chip pattern, scaled)

Writes results.json, results.md, accuracy_vs_mismatch.png, and each run's plots (the MNIST
in-the-loop run's chip_activity.png holds the raster and measured vs modelled traces).

    .venv/bin/python benchmarks/reproduce_in_the_loop.py --tasks mnist sweep --out runs/itl
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from rich.console import Console

from insitu import atomic
from insitu.algorithms import make_spiking_trainer
from insitu.data import SpikeDataset
from insitu.experiments.config import SpikingTrainConfig, make_spiking_config, read_config_file
from insitu.experiments.plots import save_figure
from insitu.experiments.run import accuracy
from insitu.experiments.spiking_run import load_spiking_dataset, train_spiking

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "configs" / "in_the_loop_mnist.yaml"
console = Console(stderr=True)
# The paper's values beside ours (Cramer et al. 2022: MNIST 97.2 +- 0.1 % on the chip, 97.5 %
# in software; Fashion-MNIST 84.2 % on the chip). The sweep is a figure there, not numbers.
PAPER = {"mnist-in-the-loop": 97.2, "mnist-snn-software": 97.5, "fashion-in-the-loop": 84.2}
# Issue 23's reading of the paper's claim: at 30 % mismatch in-the-loop stays within 1.5 points
# of its 0 % value, while deploy falls >= 10 points below its own.
FLAT_WITHIN, DEPLOY_DROP = 1.5, 10.0
# Fashion-MNIST keeps the schedule it was first run with (12 epochs, lr decay 0.85, no shift
# augmentation): over 4 chips it gives 84.1 +- 0.3 %, where the MNIST config's schedule (25
# epochs, decay 0.9, one-pixel shifts, tuned on MNIST) gives 82.5 +- 0.3 % (RESULTS.md).
FASHION_SCHEDULE = {"epochs": 12, "lr_decay": 0.85, "augment_shift": 0}


def config(base: dict[str, Any], **changes: Any) -> SpikingTrainConfig:
    return make_spiking_config({**base, **changes})


def run(cfg: SpikingTrainConfig, out: Path, ds: SpikeDataset, name: str) -> dict[str, Any]:
    console.print(f"[bold]{name}[/]: {cfg.algorithm} on {cfg.dataset}, mismatch {cfg.mismatch}")
    result = train_spiking(cfg, out / name, console=console, dataset=ds)
    s = result.summary
    return {
        "run": name,
        "algorithm": cfg.algorithm,
        "dataset": cfg.dataset,
        "mismatch": cfg.mismatch,
        "epochs": s["epochs_completed"],
        "test_acc": s["test_acc"],
        "test_acc_mean": s["test_acc_mean"],
        "test_acc_std": s["test_acc_std"],
        "curve": [r["test_acc_mean"] for r in result.rows],
        "wall_s": s["wall_s"],
        "dir": str(out / name),
    }


def deploy_rows(
    base: dict[str, Any], sigmas: list[float | None], software: dict[str, Any], ds: SpikeDataset
) -> list[dict[str, Any]]:
    """ "Train in software, then deploy": the weights of the ``software`` run written to the chip
    at each sigma (the same chip seed, so one fixed pattern scaled), measured on the test set.
    Deploy's training is the software run's (same seed, same model), so it is not repeated."""
    trained = torch.load(Path(software["dir"]) / "model.pt", weights_only=False)
    rows = []
    for sigma in sigmas:
        cfg = config(base, algorithm="deploy", mismatch=sigma)
        chip_cfg = cfg.chip_config(ds.n_inputs, ds.n_classes)
        trainer = make_spiking_trainer(
            "deploy", chip_cfg, instances=cfg.instances, seed=cfg.seed, options=cfg.options()
        )
        trainer.load_state_dict({**trained, "chip": None})
        acc = accuracy(trainer, ds.x_test, ds.y_test, chunk=1000)
        label = "preset" if sigma is None else f"sigma{sigma:g}"
        rows.append(
            {
                "run": f"{software['run'].split('-')[0]}-deploy-{label}",
                "algorithm": "deploy",
                "dataset": cfg.dataset,
                "mismatch": sigma,
                "epochs": software["epochs"],
                "test_acc": acc.tolist(),
                "test_acc_mean": float(acc.mean()),
                "test_acc_std": float(acc.std(unbiased=False)),
                "curve": [],
                "wall_s": 0.0,
                "dir": software["dir"],
            }
        )
        console.print(f"deploy at sigma {sigma}: {100 * float(acc.mean()):.2f} %")
    return rows


def sweep_figure(rows: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for alg, marker in (("in-the-loop", "o"), ("deploy", "s")):
        pts = sorted((r["mismatch"], r) for r in rows if r["algorithm"] == alg)
        if not pts:
            continue
        xs = [100 * s for s, _ in pts]
        ys = [100 * r["test_acc_mean"] for _, r in pts]
        es = [100 * r["test_acc_std"] for _, r in pts]
        ax.errorbar(xs, ys, yerr=es, marker=marker, capsize=3, label=alg)
    ax.set_xlabel("mismatch sigma_d (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST 256-246-10 on a mismatched chip")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| run | algorithm | dataset | sigma_d | epochs | chips | test accuracy | paper | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sigma = "preset" if r["mismatch"] is None else f"{100 * r['mismatch']:g} %"
        acc = f"{100 * r['test_acc_mean']:.2f} ± {100 * r['test_acc_std']:.2f} %"
        paper = f"{PAPER[r['run']]} %" if r["run"] in PAPER else "-"
        lines.append(
            f"| {r['run']} | {r['algorithm']} | {r['dataset']} | {sigma} | {r['epochs']} | "
            f"{len(r['test_acc'])} | {acc} | {paper} | {r['wall_s'] / 60:.1f} min |"
        )
    verdict = sweep_verdict(rows)
    return "\n".join(lines) + "\n" + (f"\n{verdict}\n" if verdict else "")


def sweep_verdict(rows: list[dict[str, Any]]) -> str:
    """The sweep's claim checked at 30 % against 0 %, per method (empty until both are in)."""
    at = {
        (r["algorithm"], r["mismatch"]): 100 * r["test_acc_mean"]
        for r in rows
        if r["run"].startswith("sweep-")
    }
    parts = []
    for alg, bar in (("in-the-loop", -FLAT_WITHIN), ("deploy", DEPLOY_DROP)):
        if (alg, 0.0) not in at or (alg, 0.3) not in at:
            continue
        drop = at[(alg, 0.0)] - at[(alg, 0.3)]
        holds = drop <= -bar if bar < 0 else drop >= bar
        need = f"<= {-bar:g}" if bar < 0 else f">= {bar:g}"
        parts.append(
            f"{alg}: {at[(alg, 0.0)]:.2f} % at 0 %, {at[(alg, 0.3)]:.2f} % at 30 % "
            f"(drop {drop:.2f} points, need {need}: {'holds' if holds else 'MISSED'})"
        )
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["mnist", "fashion", "nmnist", "sweep"])
    ap.add_argument("--methods", nargs="+", default=["in-the-loop", "deploy", "snn-software"])
    ap.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    ap.add_argument("--sweep-epochs", type=int, default=5)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0, 0.1, 0.2, 0.3, 0.4, 0.5])
    ap.add_argument(
        "--deploy-sigmas",
        type=float,
        nargs="+",
        default=None,
        help="sigmas at which deploy is measured (default: --sigmas); costs no training",
    )
    ap.add_argument("--instances", type=int, default=None)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", type=Path, default=Path("runs/in_the_loop"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    base = read_config_file(BASE)
    base["data_dir"] = args.data_dir
    for key, value in (
        ("epochs", args.epochs),
        ("instances", args.instances),
        ("limit_train", args.limit_train),
    ):
        if value is not None:
            base[key] = value
    rows: list[dict[str, Any]] = []
    results = args.out / "results.json"
    if results.exists():  # resume: keep what an earlier call measured
        rows = json.loads(results.read_text())

    def save() -> None:
        atomic.write_json(results, rows)
        atomic.write_text(args.out / "results.md", table(rows))

    done = {r["run"] for r in rows}
    if "mnist" in args.tasks:
        ds = load_spiking_dataset(config(base))
        for method in args.methods:
            name = f"mnist-{method}"
            if method != "deploy" and name not in done:
                rows.append(run(config(base, algorithm=method), args.out, ds, name))
                save()
        software = [r for r in rows if r["run"] == "mnist-snn-software"]
        if "deploy" in args.methods and software and "mnist-deploy-preset" not in done:
            rows.extend(deploy_rows(base, [None], software[0], ds))
            save()
        activity = args.out / "mnist-in-the-loop" / "chip_activity.png"
        if activity.exists():
            shutil.copyfile(activity, args.out / "mnist_chip_activity.png")
    if "fashion" in args.tasks and "fashion-in-the-loop" not in done:
        fashion = {**base, **FASHION_SCHEDULE}
        if args.epochs is not None:
            fashion["epochs"] = args.epochs
        cfg = config(fashion, dataset="fashion-mnist", encoding={"crop": 0})
        rows.append(run(cfg, args.out, load_spiking_dataset(cfg), "fashion-in-the-loop"))
        save()
    if "nmnist" in args.tasks:
        # 34x34x2 event frames, binned to 30 steps of 11 ms (whole recordings).
        nm = {
            **base,
            "dataset": "nmnist",
            "time_steps": 30,
            "dataset_options": {"dt_us": 11_500},
            "epochs": base.get("epochs", 20),
            "batch_size": 50,
        }
        ds = load_spiking_dataset(make_spiking_config(nm))
        for method in ("in-the-loop", "snn-software"):
            name = f"nmnist-{method}"
            if name not in done:
                rows.append(run(config(nm, algorithm=method), args.out, ds, name))
                save()
    if "sweep" in args.tasks:
        sweep_base = {**base, "epochs": args.sweep_epochs}
        ds = load_spiking_dataset(config(sweep_base))
        for sigma in args.sigmas:
            name = f"sweep-in-the-loop-sigma{sigma:g}"
            if name not in done:
                rows.append(run(config(sweep_base, mismatch=sigma), args.out, ds, name))
                save()
        if "sweep-snn-software" not in done:
            cfg = config(sweep_base, algorithm="snn-software")
            rows.append(run(cfg, args.out, ds, "sweep-snn-software"))
            save()
        deploy_at = args.sigmas if args.deploy_sigmas is None else args.deploy_sigmas
        missing = [s for s in deploy_at if f"sweep-deploy-sigma{s:g}" not in done]
        if missing:  # a later call with more sigmas deploys only the new ones
            software = next(r for r in rows if r["run"] == "sweep-snn-software")
            rows.extend(deploy_rows(sweep_base, missing, software, ds))
            save()
        sweep_figure(
            [r for r in rows if r["run"].startswith("sweep-")],
            args.out / "accuracy_vs_mismatch.png",
        )
    save()
    console.print(table(rows))


if __name__ == "__main__":
    main()
