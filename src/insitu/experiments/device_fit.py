"""``insitu devices fit``: a preset from a lab's pulse-response measurement, and its figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from insitu.devices import (
    DeviceFit,
    Measurement,
    apply_pulses,
    fit_device,
    nominal_device_array,
    read_measurement,
    step_size,
    write_preset,
)
from insitu.experiments.plots import save_figure


def fit_summary(fit: DeviceFit) -> dict[str, Any]:
    """What the fit saw, for the preset file's ``fit`` section."""
    return {
        "uncertainty": {k: float(f"{v:.4g}") for k, v in fit.uncertainty.items()},
        "residual_rms": float(f"{fit.residual_rms:.4g}"),
        "unit": fit.unit,
        "models_bic": {k: round(v, 1) for k, v in fit.scores.items()},
        "devices": len(fit.devices),
        "stuck_devices": list(fit.stuck),
    }


def run_fit(
    csv: Path,
    *,
    model: str | None = None,
    g_ref: float | None = None,
    name: str | None = None,
    out: Path | None = None,
    plot: Path | None = None,
) -> tuple[DeviceFit, Path, Path]:
    """Read ``csv``, fit, write the preset file and the figure; returns the fit and the paths.

    Defaults: ``out`` = ``<csv stem>-preset.yaml`` and ``plot`` = ``<csv stem>-fit.png`` beside
    the CSV; ``name`` = the CSV's stem.
    """
    measurement = read_measurement(csv)
    fit = fit_device(measurement, model=model, g_ref=g_ref, name=name or csv.stem)
    out = out or csv.with_name(f"{csv.stem}-preset.yaml")
    plot = plot or csv.with_name(f"{csv.stem}-fit.png")
    write_preset(fit.params, out, fit=fit_summary(fit))
    fit_figure(measurement, fit, plot)
    return fit, out, plot


def _traces(m: Measurement, fit: DeviceFit, devices: int, cycles: int) -> list[tuple[int, int]]:
    """(device index in the measurement, cycle) of the traces shown: a few of each."""
    shown = []
    for label in fit.devices[:devices]:
        i = m.devices.index(label)
        for c in np.unique(m.cycle[m.device == i])[:cycles]:
            shown.append((i, int(c)))
    return shown


def _mean_response(
    m: Measurement, fit: DeviceFit, shown: list[tuple[int, int]]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Pulse numbers, reads and the fitted devices' noise-free response of each shown trace."""
    params = fit.params.replace(dw_min_std=0.0, read_noise=0.0)
    array = fit.device_array()
    pulses, reads, signs, rows = [], [], [], []
    for i, c in shown:
        sel = (m.device == i) & (m.cycle == c)
        pulses.append(m.pulse[sel])
        reads.append(m.conductance[sel])
        signs.append(m.direction[sel])
        rows.append(fit.devices.index(m.devices[i]))
    length = max(len(s) for s in signs)
    count = torch.zeros(len(shown), length, dtype=torch.int64)
    for t, s in enumerate(signs):
        count[t, : len(s)] = torch.as_tensor(s.astype(np.int64))
    idx = torch.as_tensor(rows)
    traces = array._replace(**{f: getattr(array, f)[idx] for f in array._fields})
    g = torch.as_tensor(np.array([r[0] for r in reads]), dtype=torch.float64)
    g = torch.minimum(torch.maximum(g, traces.g_min), traces.g_max)
    gen = torch.Generator().manual_seed(0)
    out = [g]
    for k in range(1, length):
        g = apply_pulses(params, traces, g, count[:, k], gen)
        out.append(g)
    model = torch.stack(out, dim=1).numpy()
    return pulses, reads, [model[t, : len(r)] for t, r in enumerate(reads)]


def fit_figure(
    m: Measurement, fit: DeviceFit, path: Path, devices: int = 3, cycles: int = 2
) -> Path:
    """Left: measured conductance against pulse number for a few devices and cycles, with the
    fitted devices' mean (noise-free) response to the same pulses. Right: step size against
    conductance, measured (binned means over all devices) and the fitted preset's."""
    p = fit.params
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    shown = _traces(m, fit, devices, cycles)
    pulses, reads, model = _mean_response(m, fit, shown)
    for t, (i, _c) in enumerate(shown):
        color = f"C{[s[0] for s in shown].index(i) % 10}"
        label = f"{m.devices[i]}" if shown[t - 1][0] != i or t == 0 else None
        left.plot(pulses[t], reads[t], ".", ms=2, color=color, alpha=0.4, label=label)
        left.plot(pulses[t], model[t], "-", lw=1.2, color=color)
    left.plot([], [], "-", color="grey", lw=1.2, label="fitted mean response")
    left.set_xlabel("pulse number within the cycle")
    left.set_ylabel(f"conductance ({fit.unit})")
    cyc = ", ".join(str(c) for c in sorted({c for _, c in shown}))
    left.set_title(f"measured (dots) and fitted (lines), cycles {cyc}", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=7, markerscale=4)
    # Step size against conductance.
    _, _, sign, g0, dg = m.steps()
    g_axis = np.linspace(p.g_min, p.g_max, 200)
    nominal = nominal_device_array(p, (len(g_axis),))
    g_t = torch.as_tensor(g_axis, dtype=nominal.dw_up.dtype)
    edges = np.linspace(p.g_min, p.g_max, 31)
    centres = (edges[1:] + edges[:-1]) / 2
    for s, word, color in ((1, "up", "C0"), (-1, "down", "C3")):
        sel = sign == s
        which = np.digitize(g0[sel], edges) - 1
        mags = s * dg[sel]
        means = np.full(len(centres), math.nan)
        for b in range(len(centres)):
            inside = which == b
            if inside.sum() >= 5:
                means[b] = mags[inside].mean()
        right.plot(centres, means, "o", ms=4, color=color, label=f"measured {word} (mean)")
        curve = step_size(p, nominal, g_t, up=s > 0).numpy()
        right.plot(g_axis, curve, "-", color=color, label=f"fitted {word}")
    right.axvline(p.g_ref, color="grey", lw=0.8, ls=":")
    right.set_xlabel(f"conductance before the pulse ({fit.unit}); dotted: g_ref")
    right.set_ylabel("step size |dg| per pulse")
    right.set_title(
        f"{p.model}: dw_min {p.dw_min:.3g}, up_down {p.up_down:+.3f}, "
        f"noise {p.dw_min_std:.3g} ({p.noise_mode})",
        fontsize=10,
    )
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(f"{p.name}: fit of {len(fit.devices)} devices", fontsize=11)
    return save_figure(fig, path)
