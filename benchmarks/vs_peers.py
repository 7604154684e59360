"""insitu against its peers (aihwkit, snnTorch) on the same work, measured alternately.

Every contender is a small script in ``benchmarks/peers/`` run in a subprocess under its own
environment (the project's ``.venv`` or the peers' ``.venv-peers``, built by
``make bench-peers``). Each repeat runs every contender once, in an order rotated from repeat to
repeat, with the repeat index as seed, so a burst of background load hits all of them alike. A
contender trains after a warm-up (the first samples of its epoch, untimed) and reports its
training samples/s, peak memory (ru_maxrss) and final test accuracy; the table gives medians
and the speed ratios measured within each repeat.

    .venv/bin/python benchmarks/vs_peers.py [--task crossbar] [--repeats 3] [--samples 60000]
    .venv/bin/python benchmarks/vs_peers.py --scaling [--scaling-samples 2000]   # instances, width
    .venv/bin/python benchmarks/vs_peers.py --task spiking --scaling [--steps 10 20 30 60 120]
    .venv/bin/python benchmarks/vs_peers.py --task cells --samples 3000 --warmup 500 \
        --keep-untrained   # compound weight cells vs aihwkit's compound presets (EcRam)

Results (JSON, markdown table, plot) go to a new directory under ``--out``.

Adding a contender: write a script in ``benchmarks/peers/`` that takes ``--data-dir --seed
--samples --warmup --threads`` (and ``--no-test``), trains, and prints one JSON object as its last
stdout line with at least ``samples_per_s``, ``samples_per_cpu_s``, ``loss_first_tenth``,
``loss_last_tenth`` and ``test_accuracy`` (``common.report`` adds memory and versions); then add
a :class:`Contender` to its :class:`Task` below (and a ratio, if the issue states a target).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from insitu import atomic
from insitu.experiments.run import fresh_dir

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
ENVS = {
    "project": ROOT / ".venv" / "bin" / "python",
    "peers": ROOT / ".venv-peers" / "bin" / "python",
}


@dataclass(frozen=True)
class Contender:
    """One row of the table: a script in ``benchmarks/peers`` run under an environment."""

    name: str
    env: str  # "project" or "peers"
    script: str
    args: tuple[str, ...] = ()
    instances: int = 1  # chips trained at once (samples/s counts chip-samples)
    note: str = ""

    def command(self, extra: list[str]) -> list[str]:
        """The command line; the contender's own arguments override the common ones."""
        return [str(ENVS[self.env]), str(PEERS / self.script), *extra, *self.args]


@dataclass(frozen=True)
class Task:
    """A workload, its contenders, and the ratios that the issue's targets are stated in."""

    name: str
    description: str
    contenders: tuple[Contender, ...]
    # (numerator, denominator, label): ratios of samples/s taken within one repeat (and the
    # difference of their test accuracies, where both report one).
    ratios: tuple[tuple[str, str, str], ...] = ()
    args: tuple[str, ...] = ()  # given to every contender, before its own arguments


CROSSBAR = Task(
    name="crossbar",
    description=(
        "MLP 784-256-128-10, sigmoid, SGD lr 0.05, mini-batch 10, real MNIST, one epoch; "
        "analog rows: Li/WO3 ECRAM (aihwkit's EcRamPresetDevice values), one device per weight, "
        "7-bit DAC, 9-bit ADC, output bound 20, output noise 0.1, stochastic pulse trains of "
        "at most 31 slots with dynamic length"
    ),
    contenders=(
        Contender("insitu analog-sgd, 1 chip", "project", "crossbar_insitu.py"),
        Contender(
            "insitu analog-sgd, 8 chips",
            "project",
            "crossbar_insitu.py",
            ("--instances", "8", "--samples", "10000", "--no-test"),
            instances=8,
            note="chip-samples/s (8 chips x samples), timed on the first 10,000 samples",
        ),
        Contender(
            "insitu analog-sgd, 1 chip, aggregated",
            "project",
            "crossbar_insitu.py",
            ("--update", "aggregated"),
            note="a mini-batch's pulses summed per device, applied once",
        ),
        Contender("aihwkit EcRamPreset", "peers", "crossbar_aihwkit.py", ("--rpu", "ecram")),
        Contender(
            "aihwkit FloatingPoint", "peers", "crossbar_aihwkit.py", ("--rpu", "floating-point")
        ),
        Contender("torch float (SGD)", "project", "crossbar_aihwkit.py", ("--rpu", "torch")),
    ),
    ratios=(
        ("insitu analog-sgd, 1 chip", "aihwkit EcRamPreset", "1 chip vs aihwkit (target >= 2)"),
        (
            "insitu analog-sgd, 8 chips",
            "aihwkit EcRamPreset",
            "8 chips total vs aihwkit single chip (target >= 8)",
        ),
    ),
)

SPIKING = Task(
    name="spiking",
    description=(
        "256-246-10 on MNIST cropped to 24x24, area-averaged to 16x16, latency-coded (tau 8 "
        "steps, threshold 0.2), 30 steps, batch 256, synaptic hidden layer (tau_m = tau_s = "
        "3.5 steps), leaky readout, cross-entropy on its maximum over time, Adam 1e-3, 3 epochs"
    ),
    contenders=(
        Contender("insitu snn-software", "project", "spiking_insitu.py"),
        Contender(
            "insitu in-the-loop",
            "project",
            "spiking_insitu.py",
            ("--algorithm", "in-the-loop"),
            note="chip emulation (mismatch, noise, 8-bit ADC) plus the model's backward pass",
        ),
        Contender("snnTorch", "peers", "snntorch_mnist.py"),
    ),
    ratios=(
        ("insitu snn-software", "snnTorch", "software SNN vs snnTorch (target >= 2)"),
        ("insitu in-the-loop", "snnTorch", "in the loop vs snnTorch (target >= 1)"),
    ),
)


def _cells_task(
    name: str, device: str, insitu_device: str, same: bool, split: bool = False
) -> Task:
    """insitu's compound cells against aihwkit's compound presets for one aihwkit device
    (``benchmarks/peers/cells_insitu.py`` holds the parameter mapping); both sides hold each
    layer on one array, or with ``split`` on arrays of at most 512 lines (aihwkit's default
    mapping: the 785-input layer on two)."""
    kinds = (
        ("TikiTaka", "tiki-taka"),
        ("TTv2", "ttv2"),
        ("ChoppedTTv2", "chopped-ttv2"),
        ("AGAD", "agad"),
        ("MixedPrecision", "mixed-precision"),
    )
    # insitu's initial weights and the bias on the tile (crossbar_aihwkit.py), and the same
    # array size on both sides: the split of the 785-input layer over two arrays doubles its
    # transfers (aihwkit's Tiki-Taka at 10,000 samples: 82.8 % split, 75.7 % one tile)
    glorot = ("--init", "glorot", "--analog-bias", *(() if split else ("--one-tile",)))
    layout = ("--max-inputs", "512") if split else ()
    contenders: list[Contender] = []
    ratios: list[tuple[str, str, str]] = []
    for scheme, kind in kinds:
        preset = f"{scheme}{device}Preset"
        ours = f"insitu {kind} ({preset})"
        theirs = f"aihwkit {preset}"
        contenders.append(
            Contender(ours, "project", "cells_insitu.py", ("--preset", preset, *layout))
        )
        contenders.append(
            Contender(theirs, "peers", "crossbar_aihwkit.py", ("--preset", preset, *glorot))
        )
        ratios.append((ours, theirs, f"{kind}: insitu 1 chip vs aihwkit (target >= 2)"))
    twin = "the same device" if same else "NOT the same device (insitu has no exp-step model)"
    return Task(
        name=name,
        description=(
            "MLP 784-256-128-10, sigmoid, SGD lr 0.5, mini-batch 10, real MNIST (first "
            "--samples of the seeded order), one chip, Glorot-uniform initial weights, the bias "
            "an analog column, "
            + (
                "layers split over arrays of at most 512 lines (aihwkit's default mapping)"
                if split
                else "each layer on one array (aihwkit's mapping not split at 512 lines)"
            )
            + f"; aihwkit's compound presets on its {device}PresetDevice against "
            f"insitu's weight cells on {insitu_device} ({twin}), PresetIOParameters periphery "
            "on both; parameter mapping in benchmarks/peers/cells_insitu.py"
        ),
        contenders=tuple(contenders),
        ratios=tuple(ratios),
        args=("--lr", "0.5"),
    )


CELLS = _cells_task("cells", "EcRam", "ecram-liwo3", same=True)
CELLS_SPLIT = _cells_task("cells-split", "EcRam", "ecram-liwo3", same=True, split=True)
CELLS_RERAM = _cells_task("cells-reram", "ReRamES", "reram-taox", same=False)

TASKS: dict[str, Task] = {t.name: t for t in (CROSSBAR, SPIKING, CELLS, CELLS_SPLIT, CELLS_RERAM)}


def run_one(c: Contender, extra: list[str], threads: int) -> dict[str, Any]:
    """Run one contender to completion; its last stdout line is its JSON result."""
    python = ENVS[c.env]
    if not python.exists():
        raise SystemExit(
            f"{c.name}: {python} is missing; build it with `make install` (project) or "
            "`make peers-env` (peers)"
        )
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONWARNINGS"] = "ignore"
    cmd = c.command([*extra, "--threads", str(threads)])
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PEERS, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{c.name} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def check_training(name: str, r: dict[str, Any], min_accuracy: float, keep: bool) -> None:
    """A contender that did not learn is not worth timing: the loss must fall, accuracy >> 10%.
    With ``keep`` (comparing accuracy is the point) it is kept, marked ``trained: false``."""
    fell = r["loss_last_tenth"] < r["loss_first_tenth"]
    acc = r.get("test_accuracy")
    r["trained"] = fell and (acc is None or acc >= min_accuracy)
    if not r["trained"]:
        message = (
            f"{name} did not train: loss {r['loss_first_tenth']:.3f} -> "
            f"{r['loss_last_tenth']:.3f}, test accuracy {acc}"
        )
        if not keep:
            raise SystemExit(message)
        print(message, file=sys.stderr)


def compare(task: Task, args: argparse.Namespace) -> dict[str, Any]:
    """Run every contender ``args.repeats`` times, alternately; medians and same-run ratios."""
    chosen = [c for c in task.contenders if not args.only or c.name in args.only]
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in chosen}
    extra = [*task.args, "--samples", str(args.samples), "--warmup", str(args.warmup)]
    extra += ["--data-dir", str(args.data_dir)]
    with Progress() as progress:
        bar = progress.add_task(task.name, total=args.repeats * len(chosen))
        for rep in range(args.first_seed, args.first_seed + args.repeats):
            k = rep % len(chosen)
            for c in chosen[k:] + chosen[:k]:
                progress.update(bar, description=f"repeat {rep + 1}: {c.name}")
                r = run_one(c, [*extra, "--seed", str(rep)], args.threads)
                check_training(c.name, r, args.min_accuracy, args.keep_untrained)
                runs[c.name].append(r)
                progress.advance(bar)
    rows = []
    for c in chosen:
        rs = runs[c.name]
        accs = [r["test_accuracy"] for r in rs if "test_accuracy" in r]
        rows.append(
            {
                "contender": c.name,
                "environment": c.env,
                "torch": rs[0]["torch"],
                "samples_per_s_median": statistics.median(r["samples_per_s"] for r in rs),
                "samples_per_s_all": [round(r["samples_per_s"], 1) for r in rs],
                "samples_per_cpu_s_median": statistics.median(r["samples_per_cpu_s"] for r in rs),
                "test_accuracy_median": statistics.median(accs) if accs else None,
                "test_accuracy_mean": statistics.fmean(accs) if accs else None,
                "test_accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "peak_rss_mib_max": max(r["peak_rss_mib"] for r in rs),
                "note": c.note,
            }
        )
    ratios = []
    for num, den, label in task.ratios:
        if num in runs and den in runs:
            per_rep = [
                a["samples_per_s"] / b["samples_per_s"]
                for a, b in zip(runs[num], runs[den], strict=True)
            ]
            per_cpu = [
                a["samples_per_cpu_s"] / b["samples_per_cpu_s"]
                for a, b in zip(runs[num], runs[den], strict=True)
            ]
            gaps = [
                a["test_accuracy"] - b["test_accuracy"]
                for a, b in zip(runs[num], runs[den], strict=True)
                if "test_accuracy" in a and "test_accuracy" in b
            ]
            ratios.append(
                {
                    "ratio": label,
                    "median": statistics.median(per_rep),
                    "per_repeat": per_rep,
                    "cpu_time_median": statistics.median(per_cpu),
                    "accuracy_difference_per_repeat": gaps,
                }
            )
    return {
        "task": task.name,
        "workload": task.description,
        "rows": rows,
        "ratios": ratios,
        "runs": runs,
    }


def pool(paths: list[Path]) -> dict[str, Any]:
    """Same-repeat ratios pooled over several saved comparisons (``result.json`` files): on a
    shared machine single runs disagree by tens of percent, the pooled quartiles less so."""
    per_label: dict[str, list[float]] = {}
    for path in paths:
        for q in json.loads(path.read_text())["ratios"]:
            per_label.setdefault(q["ratio"], []).extend(q["per_repeat"])
    pooled = []
    for label, values in per_label.items():
        low, mid, high = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        pooled.append({"ratio": label, "n": len(values), "median": mid, "quartiles": [low, high]})
    return {"runs": [str(p) for p in paths], "pooled": pooled}


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a markdown table plus the same-run ratios."""
    lines = [
        "| contender | torch | samples/s (median) | per CPU-second | test accuracy "
        "| peak memory (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        acc = (
            f"{r['test_accuracy_mean']:.1f} ± {r['test_accuracy_std']:.1f} %"
            if r["test_accuracy_mean"] is not None
            else "-"
        )
        lines.append(
            f"| {r['contender']} | {r['torch']} | {r['samples_per_s_median']:,.0f} | "
            f"{r['samples_per_cpu_s_median']:,.0f} | {acc} | "
            f"{r['peak_rss_mib_max']:,.0f} |"
        )
    for q in result["ratios"]:
        each = ", ".join(f"{v:.2f}" for v in q["per_repeat"])
        gaps = q.get("accuracy_difference_per_repeat") or []
        gap = (
            f"; accuracy difference (points): {', '.join(f'{g:+.1f}' for g in gaps)}"
            if gaps
            else ""
        )
        lines.append(
            f"\n{q['ratio']}: median {q['median']:.2f} (per repeat: {each}); "
            f"per CPU-second: {q['cpu_time_median']:.2f}{gap}"
        )
    return "\n".join(lines)


def scaling(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Time per training sample vs chip instances and vs hidden width, insitu and aihwkit."""
    base = ["--samples", str(args.scaling_samples), "--warmup", str(args.scaling_samples // 4)]
    base += ["--data-dir", str(args.data_dir), "--no-test"]
    insitu = Contender("insitu", "project", "crossbar_insitu.py")
    aihwkit = Contender("aihwkit", "peers", "crossbar_aihwkit.py", ("--rpu", "ecram"))
    points: list[dict[str, Any]] = []
    plan: list[tuple[str, Contender, list[str], int, int]] = []
    for n in args.instances:
        plan.append(("instances", insitu, ["--instances", str(n)], n, 256))
    plan.append(("instances", aihwkit, [], 1, 256))
    for w in args.widths:
        hidden = ["--hidden", str(w), str(w)]
        plan.append(("width", insitu, hidden, 1, w))
        plan.append(("width", aihwkit, hidden, 1, w))
    with Progress() as progress:
        bar = progress.add_task("scaling", total=len(plan) * args.repeats)
        for rep in range(args.repeats):
            for axis, c, extra, n, width in plan:
                progress.update(bar, description=f"{axis}: {c.name} {n} x {width}")
                r = run_one(c, [*base, *extra, "--seed", str(rep)], args.threads)
                points.append(
                    {
                        "axis": axis,
                        "contender": c.name,
                        "instances": n,
                        "width": width,
                        "repeat": rep,
                        "seconds_per_chip_sample": 1.0 / r["samples_per_s"],
                        "peak_rss_mib": r["peak_rss_mib"],
                    }
                )
                progress.advance(bar)
    plot_scaling(points, out / "scaling.png")
    return {"points": points}


def spiking_scaling(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Time per training sample vs simulated time steps: insitu's two trainers and snnTorch."""
    base = ["--samples", str(args.scaling_samples), "--warmup", str(args.scaling_samples // 4)]
    base += ["--epochs", "1", "--data-dir", str(args.data_dir), "--no-test"]
    chosen = [c for c in SPIKING.contenders if not args.only or c.name in args.only]
    plan = [(c, steps) for steps in args.steps for c in chosen]
    points: list[dict[str, Any]] = []
    with Progress() as progress:
        bar = progress.add_task("scaling", total=len(plan) * args.repeats)
        for rep in range(args.repeats):
            for c, steps in plan:
                progress.update(bar, description=f"time steps: {c.name} {steps}")
                r = run_one(c, [*base, "--steps", str(steps), "--seed", str(rep)], args.threads)
                points.append(
                    {
                        "axis": "steps",
                        "contender": c.name,
                        "steps": steps,
                        "repeat": rep,
                        "seconds_per_chip_sample": 1.0 / r["samples_per_s"],
                        "peak_rss_mib": r["peak_rss_mib"],
                    }
                )
                progress.advance(bar)
    from matplotlib.figure import Figure

    from insitu.experiments.plots import save_figure

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for i, c in enumerate(chosen):
        xs, ys = _median_curve(points, "steps", c.name, "steps")
        ax.loglog(xs, [1e3 * y for y in ys], "o-", color=f"C{i}", label=c.name)
    ax.set_xlabel("time steps per sample")
    ax.set_ylabel("ms per training sample")
    ax.set_title("256-246-10, batch 256")
    _log_axes(ax, args.steps)
    save_figure(fig, out / "scaling.png")
    return {"points": points}


def _log_axes(ax: Any, ticks: list[int]) -> None:
    """Log-log axes labelled at the measured points, with a grid and a legend; y in plain
    numbers, labelled more finely when the range is narrow (else one label may show)."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    low, high = ax.get_ylim()
    subs = (1.0, 2.0, 5.0) if high / low > 5 else (1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 7.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter("")
    ax.grid(alpha=0.3, which="both")
    ax.legend()


def _median_curve(
    points: list[dict[str, Any]], axis: str, who: str, key: str
) -> tuple[list[int], list[float]]:
    xs = sorted({p[key] for p in points if p["axis"] == axis and p["contender"] == who})
    ys = [
        statistics.median(
            p["seconds_per_chip_sample"]
            for p in points
            if p["axis"] == axis and p["contender"] == who and p[key] == x
        )
        for x in xs
    ]
    return xs, ys


def plot_scaling(points: list[dict[str, Any]], path: Path) -> None:
    """Log-log: time per chip-sample vs instances, and vs hidden width."""
    from matplotlib.figure import Figure

    from insitu.experiments.plots import save_figure

    fig = Figure(figsize=(10, 4), layout="constrained")  # no label over the other panel
    left, right = fig.subplots(1, 2)
    xs, ys = _median_curve(points, "instances", "insitu", "instances")
    left.loglog(xs, [1e3 * y for y in ys], "o-", label="insitu analog-sgd (per chip-sample)")
    _, ya = _median_curve(points, "instances", "aihwkit", "instances")
    if ya:
        left.axhline(1e3 * ya[0], color="C1", ls="--", label="aihwkit EcRamPreset (1 chip)")
    left.set_xlabel("chip instances trained at once")
    left.set_ylabel("ms per training sample per chip")
    left.set_title("784-256-128-10, batch 10")
    for i, who in enumerate(("insitu", "aihwkit")):
        xs, ys = _median_curve(points, "width", who, "width")
        right.loglog(xs, [1e3 * y for y in ys], "o-", color=f"C{i}", label=who)
    right.set_xlabel("hidden width W (784-W-W-10)")
    right.set_ylabel("ms per training sample")
    right.set_title("1 chip, batch 10")
    for ax, ticks in ((left, sorted({p["instances"] for p in points})), (right, xs)):
        _log_axes(ax, ticks)
    save_figure(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="crossbar")
    p.add_argument("--only", nargs="+", help="contender names to run (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seed (and order rotation) of the first repeat: split repeats over several runs",
    )
    p.add_argument("--samples", type=int, default=60000, help="training samples per run")
    p.add_argument("--warmup", type=int, default=1000, help="untimed first samples")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every contender")
    p.add_argument(
        "--min-accuracy", type=float, default=50.0, help="test accuracy (%%) a run must reach"
    )
    p.add_argument(
        "--keep-untrained",
        action="store_true",
        help="keep a contender that did not train (marked trained: false) instead of stopping",
    )
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "vs_peers")
    p.add_argument(
        "--scaling",
        action="store_true",
        help="crossbar: time vs instances and vs width; spiking: time vs time steps",
    )
    p.add_argument(
        "--pool",
        type=Path,
        nargs="+",
        metavar="RESULT_JSON",
        help="run nothing: pool the same-repeat ratios of saved comparisons",
    )
    p.add_argument("--scaling-samples", type=int, default=2000)
    p.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    p.add_argument(
        "--steps", type=int, nargs="+", default=[10, 20, 30, 60, 120], help="spiking scaling"
    )
    args = p.parse_args()
    if args.pool:
        missing = [str(f) for f in args.pool if not f.is_file()]
        if missing:
            raise SystemExit(f"no such result file: {', '.join(missing)}")
        pooled = pool(args.pool)
        print(json.dumps(pooled, indent=2))
        for q in pooled["pooled"]:
            low, high = q["quartiles"]
            print(
                f"{q['ratio']}: pooled median {q['median']:.2f} over {q['n']} same-repeat "
                f"ratios (quartiles {low:.2f}-{high:.2f})"
            )
        return
    if args.repeats < 1 or args.samples <= args.warmup:
        raise SystemExit("need --repeats >= 1 and --samples > --warmup")
    out = fresh_dir(args.out, f"scaling-{args.task}" if args.scaling else args.task)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
    }
    if args.scaling:
        run = spiking_scaling if args.task == "spiking" else scaling
        result = {**meta, **run(args, out)}
        atomic.write_json(out / "scaling.json", result)
        print(json.dumps(result, indent=2))
        print(f"\nplot: {out / 'scaling.png'}")
        return
    result = {**meta, **compare(TASKS[args.task], args)}
    table = markdown(result)
    atomic.write_json(out / "result.json", result)
    atomic.write_text(out / "table.md", table + "\n")
    summary = {k: v for k, v in result.items() if k != "runs"}
    print(json.dumps(summary, indent=2))
    print()
    print(table)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
