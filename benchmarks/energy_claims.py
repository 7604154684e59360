"""The two headline energy claims rebuilt under a range of honest processor assumptions.

1. Yi et al., Nature Electronics 2022 (press: "up to 100,000 times" less training energy than
   "even the best GPUs"). Chip: a short run of ``configs/activity_difference_braille.yaml``
   (60-63-60 on TaOx crossbars, batch 10), priced with ``taox-memristor``. Reference: the same
   network trained by backprop on an H100, ``insitu.energy.GPU_RANGE``.
2. Cramer et al., PNAS 2022 (press: about 1,000 times less energy than "a standard
   processor"). Chip: a short in-the-loop run of ``configs/in_the_loop_mnist.yaml``
   (256-246-10, T = 5 steps of 1.7 us, close to the published ~8 us per image), priced with
   ``brainscales2``; the claim is compared per inference. Reference: the same spiking network
   on a Xeon 8380, ``insitu.energy.CPU_RANGE``.

Each run is priced by the code behind ``insitu energy RUN --range gpu|cpu``. Writes
``energy_claims.{json,md,png}`` into --out (a new folder) with both runs under it. About a
minute on a free core.

    .venv/bin/python benchmarks/energy_claims.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import torch
import yaml
from matplotlib.figure import Figure
from rich.console import Console

from insitu import atomic
from insitu.energy import ReferenceAssumption, get_reference_range, kernels_per_batch
from insitu.experiments.energy import run_energy_report
from insitu.experiments.launch import launch
from insitu.experiments.plots import save_figure
from insitu.experiments.run import fresh_dir

ROOT = Path(__file__).resolve().parents[1]
CLAIMS: dict[str, dict[str, Any]] = {
    "yi_2022": {
        "title": "Yi 2022, Braille 60-63-60, training, TaOx vs H100",
        "claim": 1e5,
        "quantity": "train",
        "range": "gpu",
        "said": "press: up to 100,000x less training energy than the best GPUs",
    },
    "cramer_2022": {
        "title": "Cramer 2022, MNIST 256-246-10 SNN, inference, BSS-2 vs Xeon",
        "claim": 1e3,
        "quantity": "inference",
        "range": "cpu",
        "said": "press: about 1,000x less energy than a standard processor",
    },
}
console = Console()


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _config(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((ROOT / "configs" / name).read_text())
    return values


def yi_run(out: Path, per_class: int) -> Path:
    values = _config("activity_difference_braille.yaml")
    values.update(epochs=1, instances=1)
    values["dataset_options"] = {**values["dataset_options"], "train_per_class": per_class}
    values["dataset_options"]["test_per_class"] = 5
    return launch(values, out=out, console=_quiet(), progress=False).run_dir


def cramer_run(out: Path, data_dir: str | None, samples: int) -> Path:
    values = _config("in_the_loop_mnist.yaml")
    values.update(
        epochs=1,
        instances=1,
        limit_train=samples,
        limit_test=samples,
        batch_size=50,
        time_steps=5,
        data_dir=data_dir,
    )
    return launch(values, out=out, console=_quiet(), progress=False).run_dir


def claim_rows(key: str, run_dir: Path, out: Path) -> dict[str, Any]:
    spec = CLAIMS[key]
    report, _, _ = run_energy_report(run_dir, assumptions=str(spec["range"]), out=out)
    q = "per_train_sample" if spec["quantity"] == "train" else "per_inference"
    ratio_key = "train_energy" if spec["quantity"] == "train" else "inference_energy"
    chip_j = report[q]["joules"]
    claim = float(spec["claim"])
    needed_j = claim * chip_j
    assumptions = get_reference_range(str(spec["range"]))
    rows = [
        {
            "label": r["label"],
            "batch_size": r["batch_size"],
            "bound": r[q]["bound"],
            "reference_joules": r[q]["joules"],
            "reference_seconds": r[q]["seconds"],
            "ratio": r["over_chip"][ratio_key],
            "claim_holds": r["over_chip"][ratio_key] >= claim,
            "needed_us_per_kernel": _needed_us(a, report, needed_j, r["batch_size"], q),
        }
        for a, r in zip(assumptions, report["reference_range"], strict=True)
    ]
    return {
        **spec,
        "run_dir": str(run_dir),
        "profile": report["profile"],
        "layers": report["layers"],
        "chip_joules": chip_j,
        "chip_seconds": report[q]["seconds"],
        "chip_by_kind": {k: v["joules"] for k, v in report[q]["by_kind"].items() if v["joules"]},
        "rows": rows,
        "ratio_min": min(r["ratio"] for r in rows),
        "ratio_max": max(r["ratio"] for r in rows),
        "needed_reference_joules": needed_j,
        "sources": {r["label"]: r["source"] for r in report["reference_range"]},
    }


def _needed_us(
    a: ReferenceAssumption, report: dict[str, Any], needed_j: float, batch: int, q: str
) -> float | None:
    """Launch latency (us per kernel) at which this row's waiting power alone would spend
    ``needed_j`` per sample: what the claim asks of the overhead. None for a roofline row."""
    if a.overhead is None:
        return None
    kernels = kernels_per_batch(
        report["layers"], a.overhead, time_steps=report["time_steps"], train=q != "per_inference"
    )
    watts = a.overhead.waiting_power_w + a.overhead.host_power_w
    return needed_j / (kernels / batch * watts) * 1e6


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _x(v: float) -> str:
    return f"{v:,.0f}x" if v >= 10 else f"{v:.2g}x"


def markdown(res: dict[str, Any]) -> str:
    lines = []
    for c in res["claims"].values():
        lines += [
            f"**{c['title']}** ({c['said']}). Chip ({c['profile']}): "
            f"{c['chip_joules']:.3g} J per sample; the claim needs the reference to spend "
            f"{c['needed_reference_joules']:.3g} J per sample.",
            "",
            "| assumption | batch | bound | reference J/sample | reference/chip | claim holds "
            "| us/kernel the claim needs |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in c["rows"]:
            lines.append(
                f"| {r['label']} | {r['batch_size']} | {r['bound']} | "
                f"{r['reference_joules']:.3g} | {_x(r['ratio'])} | "
                f"{'yes' if r['claim_holds'] else 'no'} | "
                f"{_us(r['needed_us_per_kernel'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(11, 5.5), layout="constrained")
    axes = fig.subplots(2, 1)
    for ax, c in zip(axes, res["claims"].values(), strict=True):
        rows = c["rows"]
        ratios = [r["ratio"] for r in rows]
        colours = ["C2" if r["claim_holds"] else "C0" for r in rows]
        ax.barh(range(len(rows)), ratios, color=colours)
        for i, r in enumerate(rows):
            ax.text(
                r["ratio"] * 1.15, i, f"{_x(r['ratio'])} ({r['bound']})", va="center", fontsize=7
            )
        ax.axvline(c["claim"], color="k", ls="--", label=f"claim: {c['claim']:,.0f}x")
        ax.axvline(1.0, color="grey", lw=0.8, label="break-even")
        ax.set_xscale("log")
        ax.set_xlim(0.1, 1e7)
        ax.set_yticks(
            range(len(rows)), [f"{r['label']} (b {r['batch_size']})" for r in rows], fontsize=7
        )
        ax.invert_yaxis()
        ax.set_title(
            f"{c['title']}: chip {c['chip_joules']:.3g} J/sample ({c['profile']})", fontsize=9
        )
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("reference energy / chip energy per sample (green: claim holds)")
    fig.suptitle(
        "Each claim against the range of processor assumptions, roofline (top) to eager, "
        "launch-bound execution (bottom)",
        fontsize=10,
    )
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "energy_claims")
    parser.add_argument("--braille-per-class", type=int, default=20)
    parser.add_argument("--mnist-samples", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = fresh_dir(args.out)
    runs = {
        "yi_2022": yi_run(out / "yi_braille", args.braille_per_class),
        "cramer_2022": cramer_run(out / "cramer_mnist", args.data_dir, args.mnist_samples),
    }
    res = {"claims": {k: claim_rows(k, d, d) for k, d in runs.items()}}
    atomic.write_json(out / "energy_claims.json", res)
    table = markdown(res)
    atomic.write_text(out / "energy_claims.md", table)
    plot(res, out / "energy_claims.png")
    console.print(table)
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
