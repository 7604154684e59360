"""Figures people look at, saved next to the numbers (matplotlib, headless)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from insitu.atomic import atomic_path
from insitu.devices import DeviceParams, apply_pulses, sample_device_array


def save_figure(fig: Figure, path: Path) -> Path:
    # Figure objects without pyplot: no global state, no GUI backend.
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip("."))
    return path


def learning_curve_figure(
    rows: Sequence[dict[str, float]],
    title: str,
    *,
    chance: float | None = None,
    instances: int | None = None,
) -> Figure:
    """Accuracy (left) and training loss (right) per epoch: the mean over chip instances with
    a band of one standard deviation. Epoch 0 is the untrained network (it has no loss, NaN);
    ``chance`` (1 / classes) is drawn as a line."""
    fig = Figure(figsize=(11, 4))
    acc_ax, loss_ax = fig.subplots(1, 2, sharex=True)
    band = instances is None or instances > 1  # one chip has no spread to show
    for key, label in (("test_acc", "test"), ("train_acc", "train")):
        _mean_and_band(acc_ax, rows, key, label, band)
    if chance is not None:
        acc_ax.axhline(chance, color="grey", ls=":", lw=1.2, label=f"chance ({chance:.1%})")
    acc_ax.set_ylim(0.0, 1.04)  # room above 100 % for markers
    acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("accuracy")
    if not _mean_and_band(loss_ax, rows, "loss", "training loss", band):
        loss_ax.text(
            0.5, 0.5, "no training epoch yet", ha="center", va="center", transform=loss_ax.transAxes
        )
    loss_ax.set_ylabel("loss (mean over the epoch)")
    loss_ax.set_title("training loss")
    handles, _ = acc_ax.get_legend_handles_labels()
    if band:
        over = f"{instances} chips" if instances is not None else "chip instances"
        handles.append(Patch(color="grey", alpha=0.25, label=f"± std over {over}"))
    acc_ax.legend(handles=handles, fontsize=8, loc="best")
    # At least one epoch wide, so a lone epoch 0 still gets whole-number ticks.
    first = min((r["epoch"] for r in rows), default=0.0)
    last = max(max((r["epoch"] for r in rows), default=0.0), first + 1)
    pad = 0.05 * (last - first)
    acc_ax.set_xlim(first - pad, last + pad)
    for ax in (acc_ax, loss_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0 = untrained)")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return fig


def _mean_and_band(
    ax: Axes, rows: Sequence[dict[str, float]], key: str, label: str, band: bool
) -> bool:
    """Plot the finite ``{key}_mean`` of ``rows`` against epoch, with a band of
    ``{key}_std``; False if there was nothing to plot."""
    points = [
        (r["epoch"], r[f"{key}_mean"], r[f"{key}_std"])
        for r in rows
        if math.isfinite(r[f"{key}_mean"])
    ]
    if not points:
        return False
    epochs, mean, std = (list(c) for c in zip(*points, strict=True))
    (line,) = ax.plot(epochs, mean, marker="o", label=label)
    if band:
        ax.fill_between(
            epochs,
            [m - s for m, s in zip(mean, std, strict=True)],
            [m + s for m, s in zip(mean, std, strict=True)],
            color=line.get_color(),
            alpha=0.2,
            lw=0,
        )
    return True


def learning_curve(
    rows: Sequence[dict[str, float]],
    title: str,
    path: Path,
    *,
    chance: float | None = None,
    instances: int | None = None,
) -> Path:
    """Save :func:`learning_curve_figure` to ``path``."""
    return save_figure(learning_curve_figure(rows, title, chance=chance, instances=instances), path)


def conductance_histogram(
    layers: Sequence[Sequence[torch.Tensor]], device: DeviceParams, path: Path
) -> Path:
    """Histogram of the final conductances of every layer (all instances pooled)."""
    fig = Figure(figsize=(4 * len(layers), 3.2))
    axes = fig.subplots(1, len(layers), squeeze=False)
    for i, (ax, gs) in enumerate(zip(axes[0], layers, strict=True)):
        for j, g in enumerate(gs):
            label = ("G+", "G-")[j] if len(gs) == 2 else "G"
            ax.hist(g.flatten().numpy(), bins=60, alpha=0.6, label=label)
        ax.axvline(device.g_ref, color="k", lw=0.8, ls="--")
        ax.set_title(f"layer {i + 1}")
        ax.set_xlabel(f"conductance ({device.name} unit)")
        ax.legend()
    axes[0][0].set_ylabel("devices")
    return save_figure(fig, path)


def device_response(
    params: DeviceParams, path: Path, instances: int = 4, pulses: int = 1000, seed: int = 0
) -> Path:
    """Conductance of a few device instances under ``pulses`` up then ``pulses`` down pulses."""
    gen = torch.Generator().manual_seed(seed)
    array = sample_device_array(params.replace(stuck_low=0.0, stuck_high=0.0), (instances,), gen)
    # Start from the low bound so the whole potentiation branch is visible.
    g = array.g_min.clone()
    trace = [g]
    for direction in (1, -1):
        for _ in range(pulses):
            g = apply_pulses(params, array, g, torch.full_like(g, direction), gen)
            trace.append(g)
    t = torch.stack(trace).numpy()
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for k in range(instances):
        ax.plot(t[:, k], lw=0.9, label=f"device {k}")
    ax.axvline(pulses, color="k", lw=0.8, ls=":")
    ax.set_xlabel("pulse number (up, then down)")
    ax.set_ylabel(f"conductance ({params.name} unit)")
    ax.set_title(f"{params.name}: {params.model} response")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def spike_raster_and_traces(
    spikes: torch.Tensor,
    measured: torch.Tensor,
    modelled: torch.Tensor,
    neurons: Sequence[int],
    threshold: float,
    path: Path,
) -> Path:
    """Left: raster of ``spikes`` (T, N); right: the ``measured`` (chip, ADC) and ``modelled``
    (software model, ideal neurons) membrane traces (T, N) of ``neurons``."""
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    t_idx, n_idx = torch.nonzero(spikes > 0, as_tuple=True)
    left.scatter(t_idx.numpy(), n_idx.numpy(), s=4, marker="|", color="k")
    left.set_xlim(-0.5, spikes.shape[0] - 0.5)
    left.set_ylim(-0.5, spikes.shape[1] - 0.5)
    left.set_xlabel("time step")
    left.set_ylabel("hidden neuron")
    left.set_title(f"hidden spikes on the chip ({int(spikes.sum())} in all)")
    steps = range(measured.shape[0])
    for k, n in enumerate(neurons):
        color = f"C{k}"
        right.plot(steps, measured[:, n].numpy(), color=color, label=f"neuron {n}: chip")
        right.plot(steps, modelled[:, n].numpy(), color=color, ls="--", label="model")
    right.axhline(threshold, color="grey", lw=0.8, ls=":")
    right.set_xlabel("time step")
    right.set_ylabel("membrane (threshold = 1)")
    right.set_title("measured (solid) vs modelled (dashed) membrane")
    right.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def demo_summary(
    systems: Sequence[tuple[str, str, Sequence[tuple[str, float, float]]]], path: Path
) -> Path:
    """One panel per seed system: each method's metric (%) as a bar with its spread over
    chips. ``systems`` holds (title, metric name, [(method, mean, std), ...])."""
    fig = Figure(figsize=(4.2 * len(systems), 3.8), layout="constrained")
    axes = fig.subplots(1, len(systems), squeeze=False)[0]
    for ax, (title, metric, rows) in zip(axes, systems, strict=True):
        labels = [r[0] for r in rows]
        means = [r[1] for r in rows]
        colors = ["tab:blue"] * (len(rows) - 1) + ["tab:orange"]  # the paper's rule, last
        ax.bar(labels, means, yerr=[r[2] for r in rows], capsize=4, color=colors)
        for k, mean in enumerate(means):
            ax.annotate(
                f"{mean:.1f}",
                (k, mean),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_ylim(0, 105)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(title, fontsize=9, wrap=True)
        ax.tick_params(axis="x", labelsize=8, labelrotation=15)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("insitu demo: mean ± std over chips; the paper's rule in orange", fontsize=10)
    return save_figure(fig, path)
