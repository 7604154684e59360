"""The energy report of a finished run: read its summary and config, price, save JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from torch import Tensor

from insitu import atomic
from insitu.energy import (
    CostProfile,
    Priced,
    energy_report,
    get_gpu,
    get_profile,
    get_reference_range,
    price,
    profile_for_device,
    profile_names,
    reference_range,
)
from insitu.errors import ConfigError
from insitu.experiments.config import read_config_file
from insitu.experiments.plots import save_figure
from insitu.hardware import WEIGHT_LIMIT, SpikingChip


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary.json; ConfigError if the folder is not a finished run."""
    path = run_dir / "summary.json"
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} holds no summary.json: not a finished run (train one with insitu train)"
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} cannot be read as JSON: {err}") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return summary


def check_profile_fits(profile: CostProfile, summary: dict[str, Any], *, spiking: bool) -> None:
    """Raise ConfigError if ``profile`` cannot price events the run logged: a crossbar
    profile would price a spiking run at 0 J (and the reverse), a silent nonsense."""
    logged = {k for k, n in (summary.get("events") or {}).items() if n}
    unpriced = sorted(logged & set(profile.not_applicable()))
    if not unpriced:
        return
    fits = [n for n in profile_names() if not logged & set(get_profile(n).not_applicable())]
    chip = "spiking" if spiking else "crossbar"
    named = ", ".join(unpriced[:3]) + (
        f" and {len(unpriced) - 3} more" if len(unpriced) > 3 else ""
    )
    raise ConfigError(
        f"energy profile {profile.name!r} does not price this {chip} run: it would count its "
        f"{named} events as 0 J and 0 s; profiles that price a {chip} run: "
        f"{', '.join(fits) or 'none'}"
    )


def run_energy_report(
    run_dir: Path,
    *,
    profile: str | None = None,
    gpu: str = "h100",
    out: Path | None = None,
    assumptions: str | None = None,
) -> tuple[dict[str, Any], Path, Path]:
    """Price the run in ``run_dir``; write ``energy-<profile>.json`` and ``.png`` into ``out``
    (default: the run directory). Existing report files are never overwritten.
    ``assumptions`` (``gpu`` or ``cpu``) adds ``reference_range``: the network priced under
    each assumption set of insitu.energy.reference, from the roofline to launch-bound."""
    assumption_set = None if assumptions is None else get_reference_range(assumptions)
    summary = read_summary(run_dir)
    config = (
        read_config_file(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
    )
    time_steps = summary.get("time_steps") or config.get("time_steps")
    spiking = time_steps is not None
    name = (
        profile
        or config.get("energy_profile")
        or profile_for_device(summary.get("device"), spiking=spiking)
    )
    check_profile_fits(get_profile(str(name)), summary, spiking=spiking)
    batch_size = int(config.get("batch_size") or summary.get("batch_size") or 1)
    report = energy_report(
        summary,
        profile=get_profile(str(name)),
        batch_size=batch_size,
        gpu=get_gpu(gpu),
        time_steps=int(time_steps) if time_steps is not None else None,
    )
    report["run_dir"] = str(run_dir)
    if assumption_set is not None:
        report["reference_range"] = reference_range(report, assumption_set)
    folder = out or run_dir
    json_path = folder / f"energy-{name}-{gpu}.json"
    png_path = folder / f"energy-{name}-{gpu}.png"
    for path in (json_path, png_path):
        if path.exists():
            raise ConfigError(
                f"{path} already exists; nothing is overwritten: delete it or pass --out DIR"
            )
    atomic.write_json(json_path, report)
    breakdown_plot(report, png_path)
    return report, json_path, png_path


PARTS = (("per train sample", "per_train_sample"), ("per inference", "per_inference"))
QUANTITIES = (("joules", "energy", "J"), ("seconds", "time", "s"))


def breakdown_plot(report: dict[str, Any], path: Path) -> Path:
    """Save :func:`breakdown_figure` of ``report`` (see insitu.energy.energy_report)."""
    return save_figure(breakdown_figure(report), path)


def breakdown_figure(report: dict[str, Any]) -> Figure:
    """Top: the chip's energy and time per training sample and per inference, stacked by event
    kind. Bottom: the chip against the GPU reference (log scale). The title says it in words."""
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    axes = fig.subplots(2, 2)
    kinds = sorted(
        {
            k
            for _, key in PARTS
            for k, v in report[key].get("by_kind", {}).items()
            if v["joules"] > 0 or v["seconds"] > 0
        }
    )
    for col, (quantity, what, unit) in enumerate(QUANTITIES):
        _stacked_by_kind(axes[0][col], report, kinds, quantity)
        axes[0][col].set_title(f"chip {what} by event kind")
        _chip_against_gpu(axes[1][col], report, quantity)
        axes[1][col].set_title(f"chip and {_short_gpu(report)} {what} (log scale)")
        for ax in (axes[0][col], axes[1][col]):
            ax.yaxis.set_major_formatter(EngFormatter(unit=unit))
            ax.set_ylabel("critical-path time" if quantity == "seconds" else what)
            ax.grid(axis="y", alpha=0.3)
    if kinds:
        axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(
        f"{comparison_sentence(report)}\n"
        f"(cost profile {report['profile']}; GPU reference {report['gpu']['name']})",
        fontsize=10,
    )
    return fig


def _stacked_by_kind(ax: Axes, report: dict[str, Any], kinds: list[str], quantity: str) -> None:
    for x, (_, key) in enumerate(PARTS):
        bottom = 0.0
        for i, kind in enumerate(kinds):
            value = report[key].get("by_kind", {}).get(kind, {}).get(quantity, 0.0)
            ax.bar(x, value, bottom=bottom, color=f"C{i % 10}", label=kind if x == 0 else None)
            bottom += value
    ax.set_xticks(range(len(PARTS)), [label for label, _ in PARTS])


def _chip_against_gpu(ax: Axes, report: dict[str, Any], quantity: str) -> None:
    """Side by side per training sample and per inference: the chip's total and the GPU's."""
    width = 0.38
    eng = EngFormatter(unit="J" if quantity == "joules" else "s")
    shown: list[float] = []
    for x, (_, key) in enumerate(PARTS):
        for dx, value, label, colour, hatch in (
            (-width / 2, report[key].get(quantity), "chip", "C0", None),
            (width / 2, report["gpu"][key].get(quantity), _short_gpu(report), "0.75", "//"),
        ):
            if value is None or value <= 0:
                continue
            bars = ax.bar(
                x + dx, value, width, color=colour, hatch=hatch, edgecolor="0.3", label=label
            )
            ax.bar_label(bars, [eng(float(f"{value:.3g}"))], fontsize=8)
            shown.append(value)
    ax.set_yscale("log")
    if shown:  # room below the smallest bar and above the tallest for its label
        ax.set_ylim(min(shown) / 10, max(shown) * 10)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")
    ax.set_xticks(range(len(PARTS)), [label for label, _ in PARTS])


def _short_gpu(report: dict[str, Any]) -> str:
    """The GPU's name without its parenthesised details."""
    return str(report["gpu"]["name"]).split(" (")[0]


def ratio_in_words(ratio: float, more: str, less: str) -> str:
    """A GPU-over-chip ``ratio`` in words from the chip's side, to two significant digits:
    ``ratio_in_words(35.2, "more", "less")`` is "35x less", 0.84 gives "1.2x more"."""
    r = ratio if ratio >= 1 else 1 / ratio
    text = f"{float(f'{r:.2g}'):,.0f}x" if r >= 10 else f"{r:.2g}x"
    return f"{text} {less if ratio >= 1 else more}"


def comparison_sentence(report: dict[str, Any]) -> str:
    """In words, per training sample: how much faster or slower the chip is than the GPU
    reference, and how much less or more energy it uses."""
    ratios = report["gpu_over_chip"]  # GPU cost / chip cost
    clauses = []
    speed = ratios.get("train_time")
    if speed:
        clauses.append(f"is {ratio_in_words(speed, 'slower', 'faster')}")
    energy = ratios.get("train_energy")
    if energy:
        clauses.append(f"uses {ratio_in_words(energy, 'more', 'less')} energy")
    gpu = _short_gpu(report)
    if not clauses:
        return f"no training cost of the chip was priced to compare with the {gpu}"
    return f"Per training sample the chip {' and '.join(clauses)} than the {gpu}"


def spiking_inference_cost(
    chip: SpikingChip, spikes: Tensor, profile: CostProfile, *, batch: int = 500
) -> Priced:
    """Run ``spikes`` (N, T, inputs) through ``chip`` in chunks and price the events per image
    and chip instance (the chip's log keeps its earlier counts; only this run's are priced)."""
    if spikes.dim() != 3 or spikes.shape[0] < 1:
        raise ConfigError(f"spikes have shape {tuple(spikes.shape)}; need (N >= 1, T, inputs)")
    before = chip.log.counts()
    for start in range(0, spikes.shape[0], batch):
        chip.run(spikes[start : start + batch])
    after = chip.log.counts()
    counts = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return price(counts, profile).scaled(1.0 / (spikes.shape[0] * chip.instances))


def random_weights_for_activity(
    chip: SpikingChip,
    spikes: Tensor,
    *,
    target: float,
    seed: int = 0,
    iterations: int = 14,
) -> float:
    """Write random signed integer weights whose hidden layers fire ``target`` spikes per
    neuron per image on ``spikes`` (N, T, inputs), as a stand-in for trained weights.

    Each layer's weights are ``round(scale * (z + 0.5))`` clipped to the 6-bit range, z standard
    normal (a mostly excitatory drive); ``scale`` is found by bisection on the mean hidden
    activity. The readout gets ``round(20 z)``. Returns the hidden activity reached.
    The calibration runs are logged by the chip like any other run: reset its log afterwards.
    """
    gen = torch.Generator().manual_seed(seed)
    shapes = [chip.weight_shape(k) for k in range(chip.n_layers)]
    normals = [torch.randn(shape, generator=gen) for shape in shapes]
    hidden = [k for k, lay in enumerate(chip.config.layers) if lay.spiking]

    def activity(scale: float) -> float:
        for k, z in enumerate(normals):
            w = scale * (z + 0.5) if k in hidden else 20.0 * z
            chip.write_weights(k, w.round().clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT))
        rec = chip.run(spikes)
        counts = [float(rec.spikes[k].sum()) / rec.spikes[k].numel() for k in hidden]
        # mean over (instances, images, steps, neurons) times steps: spikes per neuron per image
        return sum(counts) / max(len(counts), 1) * spikes.shape[1]

    low, high = 0.0, float(WEIGHT_LIMIT)
    reached = 0.0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        reached = activity(mid)
        if reached < target:
            low = mid
        else:
            high = mid
    reached = activity(0.5 * (low + high))
    return reached
