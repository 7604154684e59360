"""Activity-difference training against backprop and transfer: Braille restoration and MNIST.

Yi, Kendall, Williams, Kumar, Nature Electronics (2022): distorted Braille names restored on
64x64 memristor crossbars by activity-difference training. For each task the same network,
chip model, seed and data serve every method; the script writes into --out:

* ``braille``: each method trains on patterns with 20 % flipped bits, then restores test
  patterns at 0 to 40 % flipped bits. ``braille.json`` / ``braille.md`` (exact restoration per
  distortion and per name at 20 %, beside the best possible decoder: nearest clean pattern),
  ``braille_vs_distortion.png``, ``braille_examples.png`` (distorted inputs and restorations as
  Braille dot pictures) and ``braille_curves.png``.
* ``mnist``: one hidden layer (784-500-10) and two (784-500-250-10) by default.
  ``mnist.json`` / ``mnist.md`` and ``mnist_curves.png``.

Hyper-parameters come from the paper configs in ``configs/`` (method-specific learning rates
below); every run directory is kept under --out.

    .venv/bin/python benchmarks/reproduce_activity_difference.py --tasks braille
    .venv/bin/python benchmarks/reproduce_activity_difference.py --tasks mnist --epochs 10 \
        --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from rich.progress import Progress

from insitu import atomic
from insitu.data import Dataset, load_dataset
from insitu.data.braille import NAMES, clean_patterns, distort, exact_reconstruction
from insitu.experiments import load_config, make_config, train
from insitu.experiments.plots import save_figure
from insitu.experiments.run import RunResult

ROOT = Path(__file__).resolve().parents[1]
FLIP_LEVELS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
TEST_PER_CLASS = 200  # per distortion level: 1800 patterns
# Method -> config changes. Backprop uses its own (stable) learning rates: the output layer of
# a squared-error network is a least-mean-squares filter.
BRAILLE_METHODS: dict[str, dict[str, Any]] = {
    "activity-difference": {},
    "activity-difference-float": {},
    "software": {"lr": 0.05, "algorithm_options": {}},
    "transfer": {"lr": 0.05, "algorithm_options": {}},
}
MNIST_METHODS: dict[str, dict[str, Any]] = {
    "activity-difference-float": {},
    "activity-difference": {},
    "software": {"lr": 0.1, "lr_decay": 1.0, "algorithm_options": {}},
}
MNIST_HIDDEN = {1: [500], 2: [500, 250]}


def _run(base: dict[str, Any], change: dict[str, Any], out: Path, ds: Dataset) -> RunResult:
    values = {**base, **change}
    return train(make_config(values), out, progress=False, dataset=ds)


def _restoration(result: RunResult, seed: int) -> dict[str, Any]:
    """Exact restoration rate per distortion level (mean and spread over instances)."""
    trainer = result.trainer
    assert trainer is not None
    clean = clean_patterns()
    labels = torch.arange(len(NAMES)).repeat_interleave(TEST_PER_CLASS)
    out: dict[str, Any] = {"levels": [], "mean": [], "std": [], "per_name_at_0.2": []}
    for k, level in enumerate(FLIP_LEVELS):
        gen = torch.Generator().manual_seed(10_000 * seed + k)
        x = distort(clean[labels], flip_rate=level, generator=gen)
        with torch.no_grad():
            ok = exact_reconstruction(trainer.predict(x).cpu(), labels).to(torch.float32)
        rate = ok.mean(-1)
        out["levels"].append(level)
        out["mean"].append(float(rate.mean()))
        out["std"].append(float(rate.std(unbiased=False)))
        if abs(level - 0.2) < 1e-9:
            per = [float(ok[:, labels == c].mean()) for c in range(len(NAMES))]
            out["per_name_at_0.2"] = per
            out["min_name_at_0.2"] = float(
                min(ok[i, labels == c].mean() for i in range(len(ok)) for c in range(len(NAMES)))
            )
    return out


def _oracle(seed: int) -> dict[str, Any]:
    """The best possible decoder: the clean pattern nearest to the distorted input."""
    clean = clean_patterns()
    labels = torch.arange(len(NAMES)).repeat_interleave(TEST_PER_CLASS)
    means, per = [], []
    for k, level in enumerate(FLIP_LEVELS):
        gen = torch.Generator().manual_seed(10_000 * seed + k)
        x = distort(clean[labels], flip_rate=level, generator=gen)
        ok = torch.cdist(x, clean, p=1).argmin(-1) == labels
        means.append(float(ok.to(torch.float32).mean()))
        if abs(level - 0.2) < 1e-9:
            per = [float(ok[labels == c].to(torch.float32).mean()) for c in range(len(NAMES))]
    return {"levels": list(FLIP_LEVELS), "mean": means, "per_name_at_0.2": per}


def _dots(ax: Any, pattern: torch.Tensor, title: str) -> None:
    """A 60-bit pattern as Braille dots: filled where the value is above one half."""
    img = pattern.reshape(3, 20)
    ys, xs = torch.meshgrid(torch.arange(3), torch.arange(20), indexing="ij")
    xs_f = xs.to(torch.float32) + 0.8 * (xs // 2).to(torch.float32)  # gaps between cells
    on = img.flatten() > 0.5
    ax.scatter(xs_f.flatten()[on], -ys.flatten()[on], s=18, c="black")
    ax.scatter(xs_f.flatten()[~on], -ys.flatten()[~on], s=4, c="0.85")
    ax.set_title(title, fontsize=7, loc="left", pad=2)
    ax.set_xlim(-0.6, 27.8)
    ax.set_ylim(-2.6, 0.6)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _examples(result: RunResult, path: Path, seed: int) -> None:
    trainer = result.trainer
    assert trainer is not None
    clean = clean_patterns()
    gen = torch.Generator().manual_seed(seed + 99)
    x = distort(clean, flip_rate=0.2, generator=gen)
    with torch.no_grad():
        y = trainer.predict(x)[0].cpu()
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(len(NAMES), 3)
    for i, name in enumerate(NAMES):
        exact = bool(((y[i] > 0.5) == (clean[i] > 0.5)).all())
        _dots(axes[i, 0], x[i], f"{name}: 20% flipped" if i == 0 else name)
        _dots(axes[i, 1], y[i], "restored " + ("(exact)" if exact else "(WRONG)"))
        _dots(axes[i, 2], clean[i], "clean")
    fig.suptitle(f"Braille restoration by {result.config.algorithm} on {result.config.device}")
    save_figure(fig, path)


def braille(args: argparse.Namespace, bar: Progress) -> None:
    base = load_config(ROOT / "configs" / "activity_difference_braille.yaml").model_dump()
    base.update(instances=args.instances, seed=args.seed)
    if args.epochs:
        base["epochs"] = args.epochs
    if args.device:
        base["device"] = args.device
    ds = load_dataset("braille", seed=args.seed, options=base["dataset_options"])
    results: dict[str, Any] = {"oracle": _oracle(args.seed), "methods": {}}
    runs: dict[str, RunResult] = {}
    task = bar.add_task("braille", total=len(args.methods))
    for method in args.methods:
        change = {"algorithm": method, **BRAILLE_METHODS[method]}
        res = _run(base, change, args.out / f"braille-{method}", ds)
        runs[method] = res
        results["methods"][method] = {
            "restoration": _restoration(res, args.seed),
            "test_acc": res.summary["test_acc"],
            "curve": [r["test_acc_mean"] for r in res.rows],
            "events": res.summary["events"],
            "train_samples": res.summary["train_samples"],
            "wall_s": res.summary["wall_s"],
        }
        bar.advance(task)
    results["config"] = base
    atomic.write_json(args.out / "braille.json", results)
    _braille_table(results, args.out / "braille.md")
    _braille_figures(results, runs, args)


def _braille_table(results: dict[str, Any], path: Path) -> None:
    levels = results["oracle"]["levels"]
    head = "| method | " + " | ".join(f"{round(100 * v)}%" for v in levels) + " | worst name @20% |"
    lines = [head, "|---" * (len(levels) + 2) + "|"]
    o = results["oracle"]
    row = " | ".join(f"{100 * m:.1f}" for m in o["mean"])
    lines.append(
        f"| nearest clean pattern (ceiling) | {row} | {100 * min(o['per_name_at_0.2']):.1f} |"
    )
    for method, r in results["methods"].items():
        rest = r["restoration"]
        cells = " | ".join(
            f"{100 * m:.1f} ± {100 * s:.1f}" for m, s in zip(rest["mean"], rest["std"], strict=True)
        )
        lines.append(f"| {method} | {cells} | {100 * rest['min_name_at_0.2']:.1f} |")
    lines.append("")
    lines.append(
        "Exact restoration (every one of 60 dots right), % of 1800 test patterns per level."
    )
    atomic.write_text(path, "\n".join(lines) + "\n")


def _braille_figures(results: dict[str, Any], runs: dict[str, RunResult], args: Any) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    o = results["oracle"]
    ax.plot([100 * v for v in o["levels"]], [100 * m for m in o["mean"]], "k--", label="ceiling")
    for method, r in results["methods"].items():
        rest = r["restoration"]
        x = [100 * v for v in rest["levels"]]
        m = torch.tensor(rest["mean"]) * 100
        s = torch.tensor(rest["std"]) * 100
        ax.plot(x, m, marker="o", label=method)
        ax.fill_between(x, m - s, m + s, alpha=0.2)
    ax.axvline(20, color="0.7", lw=0.8)
    ax.set_xlabel("flipped bits (%)")
    ax.set_ylabel("exact restoration (%)")
    ax.legend(fontsize=7)
    save_figure(fig, args.out / "braille_vs_distortion.png")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for method, r in results["methods"].items():
        ax.plot(range(1, len(r["curve"]) + 1), [100 * v for v in r["curve"]], label=method)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy, name decoded (%)")
    ax.legend(fontsize=7)
    save_figure(fig, args.out / "braille_curves.png")
    if "activity-difference" in runs:
        _examples(runs["activity-difference"], args.out / "braille_examples.png", args.seed)


def mnist(args: argparse.Namespace, bar: Progress) -> None:
    base = load_config(ROOT / "configs" / "activity_difference_mnist.yaml").model_dump()
    base.update(instances=args.instances, seed=args.seed, data_dir=args.data_dir)
    if args.epochs:
        base["epochs"] = args.epochs
    ds = load_dataset("mnist", data_dir=args.data_dir)
    results: dict[str, Any] = {}
    cases = [(depth, m) for depth in args.depths for m in args.methods if m in MNIST_METHODS]
    task = bar.add_task("mnist", total=len(cases))
    for depth, method in cases:
        change: dict[str, Any] = {"algorithm": method, "hidden": MNIST_HIDDEN[depth]}
        change.update(MNIST_METHODS[method])
        if method.startswith("activity-difference") and depth == 2:
            opts = dict(base["algorithm_options"])
            opts["layer_lr"] = [*opts["layer_lr"][:1], *opts["layer_lr"]]
            change["algorithm_options"] = opts
        res = _run(base, change, args.out / f"mnist-{depth}hidden-{method}", ds)
        s = res.summary
        results[f"{depth}-{method}"] = {
            "hidden": MNIST_HIDDEN[depth],
            "method": method,
            "test_acc": s["test_acc"],
            "test_acc_mean": s["test_acc_mean"],
            "test_acc_std": s["test_acc_std"],
            "curve": [r["test_acc_mean"] for r in res.rows],
            "events": s["events"],
            "train_samples": s["train_samples"],
            "wall_s": s["wall_s"],
        }
        bar.advance(task)
    atomic.write_json(args.out / "mnist.json", {"config": base, "results": results})
    lines = [
        "| hidden | method | test accuracy (%) | device pulses / sample | array reads / sample |",
        "|---|---|---|---|---|",
    ]
    for r in results.values():
        n = max(r["train_samples"], 1)
        ev = r["events"]
        lines.append(
            f"| {r['hidden']} | {r['method']} | {100 * r['test_acc_mean']:.2f} ± "
            f"{100 * r['test_acc_std']:.2f} | {ev.get('device_pulse', 0) / n:.0f} | "
            f"{ev.get('array_read', 0) / n:.1f} |"
        )
    atomic.write_text(args.out / "mnist.md", "\n".join(lines) + "\n")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for key, r in results.items():
        ax.plot(range(1, len(r["curve"]) + 1), [100 * v for v in r["curve"]], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    save_figure(fig, args.out / "mnist_curves.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["braille"], choices=["braille", "mnist"])
    parser.add_argument("--methods", nargs="+", default=list(BRAILLE_METHODS))
    parser.add_argument("--depths", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--device", default=None, help="Braille device (default: the config's)")
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", type=Path, default=Path("runs/activity_difference"))
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(BRAILLE_METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(BRAILLE_METHODS)}")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    with Progress() as bar:
        if "braille" in args.tasks:
            braille(args, bar)
        if "mnist" in args.tasks:
            mnist(args, bar)
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
