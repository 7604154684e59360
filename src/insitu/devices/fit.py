"""Fit a device preset to a pulse-response measurement.

The fit works on the steps: ``dg = g_after - g_before`` of every pulse, against the conductance
``g_before`` the pulse found. For the exponent-1 models the mean step magnitude is a straight
line in ``g_before`` (``dw_up * (1 - kappa_up * (g - g_ref))`` potentiating,
``dw_down * (1 - kappa_down * (g_ref - g))`` depressing), so each device and direction is one
linear least-squares fit (``numpy.linalg.lstsq``) on the steps away from its bounds (soft
bounds: a line through zero at the bound; constant step: the mean step). Then:

- ``g_ref``: the symmetry point of the mean device (where its up and down steps are equal) if
  it lies inside the bounds, else the centre of the bounds; or given (``g_ref=``). It is a
  convention: any ``g_ref`` describes the same step curves, and ``dw_min``/``up_down`` are the
  steps at it.
- Step size and asymmetry at ``g_ref`` in aihwkit's convention (:mod:`insitu.devices.asymmetry`:
  ``dw_min`` the larger mean step, ``up_down`` shrinks the other direction); their
  device-to-device spreads are the standard deviations over devices of each device's gain (the
  sum of its steps) and asymmetry spread (their difference), less the per-device fit error.
- Bounds: the levels each device saturates at (0.5 % and 99.5 % percentiles of its reads);
  a ``soft-bounds`` device's step is proportional to its distance to them (one coefficient per
  direction, fitted through zero at the bound).
- Read noise from the lag-one covariance of consecutive step residuals (a read error enters
  two consecutive steps with opposite signs); cycle-to-cycle step noise from the residual
  variance left after it, ``multiplicative`` (relative to the step) or ``additive`` (relative
  to the device's step at ``g_ref``), whichever is more likely.
- The model (``constant-step``, ``linear-step``, ``soft-bounds``) with the lowest Bayesian
  information criterion of the steps' residuals, with the clipping at each model's bounds.
  ``power-step`` only when asked for: ``c * distance**p`` per device and direction with one
  exponent for all devices (torch's L-BFGS from the straight lines); read noise comparable to a
  step biases its exponent (measured: a pcm-like device, p = 2, read noise a quarter step:
  p = 2.03; read noise one step: p = 3.3), so it is not chosen automatically.
- Uncertainties: jackknife over devices (leave one device out).
- Devices that barely move (span under a tenth of the median) count as stuck and are left out
  of the other parameters.

Not fitted: abrupt RESET, quantisation to a finite number of states, drift and retention
(they keep their defaults: none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from insitu.devices.asymmetry import asymmetry_from_steps
from insitu.devices.measurement import Measurement
from insitu.devices.params import DeviceParams, NoiseMode, ResponseModel
from insitu.devices.response import DeviceArray
from insitu.devices.step_lines import Lines, fit_lines, fit_power, predicted_steps
from insitu.devices.step_noise import likelier_noise_mode, noise_sums, read_var, step_var
from insitu.errors import ConfigError, DataError

# The models the fit chooses among by itself; power-step only when asked for (with read noise
# near a step its exponent is biased, and near 1 it is linear-step in all but name).
AUTO_MODELS = (ResponseModel.CONSTANT_STEP, ResponseModel.LINEAR_STEP, ResponseModel.SOFT_BOUNDS)
FITTED_MODELS = (*AUTO_MODELS, ResponseModel.POWER_STEP)
# Per-device parameters of each model (steps, slopes, bounds), for the information criterion.
_MODEL_PARAMS = {
    ResponseModel.CONSTANT_STEP: 4,
    ResponseModel.SOFT_BOUNDS: 4,
    ResponseModel.LINEAR_STEP: 6,
    ResponseModel.POWER_STEP: 6,  # and one exponent for all devices
}
# A device whose span is under this fraction of the median span is stuck.
STUCK_SPAN = 0.1
# Percentiles of a device's reads taken as its saturation levels.
LOW_PCT, HIGH_PCT = 0.5, 99.5


@dataclass(frozen=True)
class DeviceFit:
    """A fitted preset with what the fit saw.

    Attributes:
        params: the fitted preset.
        uncertainty: one standard error (jackknife over devices) of each fitted field.
        residual_rms: RMS of the step residuals of the chosen model (file unit).
        scores: Bayesian information criterion of each model tried (lower is better).
        devices: labels of the devices fitted; ``stuck`` those left out as stuck.
        per_device: each fitted device's own parameters (arrays over ``devices``): dw_up,
            dw_down, kappa_up, kappa_down, g_min, g_max.
        unit: conductance unit of the measurement.
    """

    params: DeviceParams
    uncertainty: dict[str, float]
    residual_rms: float
    scores: dict[str, float]
    devices: tuple[str, ...]
    stuck: tuple[str, ...]
    per_device: dict[str, np.ndarray] = field(repr=False)
    unit: str = "file unit"

    def device_array(self) -> DeviceArray:
        """The fitted devices as a DeviceArray (for their mean, noise-free response)."""
        t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in self.per_device.items()}
        n = len(self.devices)
        return DeviceArray(
            dw_up=t["dw_up"],
            dw_down=t["dw_down"],
            kappa_up=t["kappa_up"],
            kappa_down=t["kappa_down"],
            g_min=t["g_min"],
            g_max=t["g_max"],
            stuck=torch.zeros(n, dtype=torch.int8),
            drift_nu=torch.zeros(n, dtype=torch.float64),
        )


def fit_device(
    measurement: Measurement,
    model: ResponseModel | str | None = None,
    g_ref: float | None = None,
    name: str | None = None,
) -> DeviceFit:
    """Fit a preset of ``model`` (default: the best by information criterion) to the reads."""
    m = measurement
    if model is not None:
        try:
            model = ResponseModel(model)
        except ValueError:
            raise ConfigError(
                f"cannot fit model {model!r}; fitted models: {', '.join(FITTED_MODELS)}"
            ) from None
        if model not in FITTED_MODELS:
            raise ConfigError(
                f"cannot fit model {str(model)!r}; fitted models: {', '.join(FITTED_MODELS)}"
            )
    k, dev_all, sign_all, g0_all, dg_all = m.steps()
    n_all = len(m.devices)
    # Saturation levels and stuck devices.
    lo = np.array([np.percentile(m.conductance[m.device == i], LOW_PCT) for i in range(n_all)])
    hi = np.array([np.percentile(m.conductance[m.device == i], HIGH_PCT) for i in range(n_all)])
    span = hi - lo
    stuck = span < STUCK_SPAN * np.median(span)
    working = np.nonzero(~stuck)[0]
    if len(working) < 2:
        raise DataError(f"{m.source}: {len(working)} device(s) move; a fit needs at least 2")
    middle = np.median((lo + hi)[working] / 2)
    level = np.array([np.median(m.conductance[m.device == i]) for i in range(n_all)])
    stuck_high = int((stuck & (level > middle)).sum())
    stuck_low = int(stuck.sum()) - stuck_high
    # Re-index the working devices 0..n-1.
    remap = np.full(n_all, -1)
    remap[working] = np.arange(len(working))
    keep = remap[dev_all] >= 0
    k, dev, sign, g0, dg = k[keep], remap[dev_all[keep]], sign_all[keep], g0_all[keep], dg_all[keep]
    lo, hi, span = lo[working], hi[working], span[working]
    n = len(working)
    d = (sign < 0).astype(np.int64)  # 0 up, 1 down
    mag = sign * dg
    # Steps away from the bounds in their own direction: two passes, the second with a margin
    # of a mean step plus four residual standard deviations of the first.
    # After each pass the saturation levels are refined with the read noise it finds.
    margin = 0.05 * span
    reads = [m.conductance[m.device == i] for i in working]
    labels = [m.devices[i] for i in working]
    for final in (False, False, True):
        edge = np.where(sign > 0, hi[dev] - margin[dev], lo[dev] + margin[dev])
        interior = np.where(sign > 0, g0 < edge, g0 > edge)
        try:
            lines = fit_lines(dev, d, g0, mag, interior, lo, hi, labels)
        except DataError as err:
            raise DataError(f"{m.source}: {err}") from None
        if final:
            break
        resid = mag - lines.magnitude(ResponseModel.LINEAR_STEP, dev, d, g0)
        rms = np.array([np.sqrt(np.mean(resid[interior & (dev == i)] ** 2)) for i in range(n)])
        typical = np.abs(lines.mean).max(axis=1)
        margin = np.maximum(0.02 * span, typical + 4 * rms)
        sums = noise_sums(
            ResponseModel.LINEAR_STEP, lines, lines.mean, k, dev, d, sign, g0, mag, interior, n
        )
        lo, hi = _saturation(reads, math.sqrt(read_var(sums, np.arange(n))))
    candidates = list(AUTO_MODELS)
    if model is ResponseModel.POWER_STEP:
        lines = fit_power(lines, dev, d, g0, mag, interior)
        candidates.append(model)
    # Model choice on every step, with each model's clipping.
    scores = {}
    for candidate in candidates:
        pred = predicted_steps(candidate, lines, dev, d, sign, g0)
        rss = float(np.sum((dg - pred) ** 2))
        free = _MODEL_PARAMS[candidate] * n + (candidate is ResponseModel.POWER_STEP)
        scores[str(candidate)] = len(dg) * math.log(rss / len(dg)) + free * math.log(len(dg))
    chosen = ResponseModel(min(scores, key=scores.__getitem__)) if model is None else model
    bounds = (lo, hi)
    pred = predicted_steps(chosen, lines, dev, d, sign, g0)
    residual_rms = float(np.sqrt(np.mean((dg - pred) ** 2)))
    # Reference conductance: the mean device's symmetry point, else the centre of the bounds.
    lo_b, hi_b = bounds[0].mean(), bounds[1].mean()
    if g_ref is None:
        g_ref = float((lo_b + hi_b) / 2)
        if chosen is not ResponseModel.CONSTANT_STEP:
            if chosen is ResponseModel.SOFT_BOUNDS:  # the same lines, written as a + b g
                bu, bd = -lines.soft[:, 0].mean(), lines.soft[:, 1].mean()
                au = (lines.soft[:, 0] * hi).mean()
                ad = -(lines.soft[:, 1] * lo).mean()
            else:
                au, bu = lines.a[:, 0].mean(), lines.b[:, 0].mean()
                ad, bd = lines.a[:, 1].mean(), lines.b[:, 1].mean()
            if bu != bd:
                cross = (ad - au) / (bu - bd)
                if lo_b + 0.1 * (hi_b - lo_b) < cross < hi_b - 0.1 * (hi_b - lo_b):
                    g_ref = float(cross)
        # Inside every device's range (devices that never saturated have narrow ones).
        common = (bounds[0].max(), bounds[1].min())
        if common[0] >= common[1]:
            raise DataError(
                f"{m.source}: the devices' conductance ranges do not overlap "
                f"(lowest top {common[1]:g}, highest bottom {common[0]:g}); give g_ref"
            )
        inset = 0.1 * (common[1] - common[0])
        g_ref = float(np.clip(g_ref, common[0] + inset, common[1] - inset))
    if not (bounds[0] < g_ref).all() or not (g_ref < bounds[1]).all():
        raise ConfigError(
            f"g_ref = {g_ref:g} lies outside the conductance range of some devices "
            f"(common range {bounds[0].max():g} to {bounds[1].min():g})"
        )
    try:
        per_device = _per_device(chosen, lines, bounds, g_ref)
    except DataError as err:
        raise DataError(f"{m.source}: {err}") from None
    steps_at_ref = np.stack([per_device["dw_up"], per_device["dw_down"]], axis=1)
    noise = noise_sums(chosen, lines, steps_at_ref, k, dev, d, sign, g0, mag, interior, n)
    mode = likelier_noise_mode(noise)
    population = _population(chosen, lines.power_p, per_device, noise, mode, g_ref, np.arange(n))
    # Jackknife over devices.
    loo = [
        _population(
            chosen, lines.power_p, per_device, noise, mode, g_ref, np.delete(np.arange(n), i)
        )
        for i in range(n)
    ]
    uncertainty = {}
    for key in population:
        values = np.array([o[key] for o in loo])
        uncertainty[key] = float(math.sqrt((n - 1) / n * ((values - values.mean()) ** 2).sum()))
    uncertainty.pop("exponent", None)  # one fit for all devices: no jackknife of it
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fitted: dict[str, Any] = dict(population)
    params = DeviceParams(
        name=name or f"fit-{chosen}",
        model=chosen,
        g_ref=g_ref,
        noise_mode=mode,
        stuck_low=stuck_low / n_all,
        stuck_high=stuck_high / n_all,
        source=f"fitted by insitu devices fit to {m.source} on {when}: {n} devices "
        f"({int(stuck.sum())} stuck left out), {len(dg)} pulses; unit: {m.unit}",
        **fitted,
    )
    return DeviceFit(
        params=params,
        uncertainty=uncertainty,
        residual_rms=residual_rms,
        scores=scores,
        devices=tuple(labels),
        stuck=tuple(m.devices[i] for i in np.nonzero(stuck)[0]),
        per_device=per_device,
        unit=m.unit,
    )


def _saturation(reads: list[np.ndarray], read_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Each device's saturation levels: the median of its reads within five read-noise standard
    deviations of the extreme percentiles (a plateau's level, not its noisiest reads)."""
    lo, hi = [], []
    for r in reads:
        top, bottom = np.percentile(r, HIGH_PCT), np.percentile(r, LOW_PCT)
        hi.append(np.median(r[r >= top - 5 * read_sd]))
        lo.append(np.median(r[r <= bottom + 5 * read_sd]))
    return np.asarray(lo), np.asarray(hi)


def _per_device(
    model: ResponseModel, lines: Lines, bounds: tuple[np.ndarray, np.ndarray], g_ref: float
) -> dict[str, np.ndarray]:
    g_min, g_max = bounds
    if model is ResponseModel.CONSTANT_STEP:
        dw_up, dw_down = lines.mean[:, 0], lines.mean[:, 1]
        var_up, var_down = lines.mean_var[:, 0], lines.mean_var[:, 1]
        kappa_up = kappa_down = np.zeros_like(dw_up)
    elif model is ResponseModel.POWER_STEP:
        assert lines.power_c is not None and lines.power_g is not None
        above, below = lines.power_g[:, 0] - g_ref, g_ref - lines.power_g[:, 1]
        if (above <= 0).any() or (below <= 0).any():
            raise DataError(f"some devices' steps vanish before g_ref = {g_ref:g}")
        p = lines.power_p
        dw_up, dw_down = lines.power_c[:, 0] * above**p, lines.power_c[:, 1] * below**p
        # The straight lines' error at g_ref stands for the power law's.
        v = np.array([1.0, g_ref])
        var_up = np.einsum("i,nij,j->n", v, lines.cov[:, 0], v)
        var_down = np.einsum("i,nij,j->n", v, lines.cov[:, 1], v)
        kappa_up, kappa_down = 1 / above, 1 / below
    elif model is ResponseModel.SOFT_BOUNDS:  # the step is 0 exactly at the bound
        above, below = g_max - g_ref, g_ref - g_min
        dw_up, dw_down = lines.soft[:, 0] * above, lines.soft[:, 1] * below
        var_up, var_down = lines.soft_var[:, 0] * above**2, lines.soft_var[:, 1] * below**2
        kappa_up, kappa_down = 1 / above, 1 / below
    else:
        dw_up = lines.a[:, 0] + lines.b[:, 0] * g_ref
        dw_down = lines.a[:, 1] + lines.b[:, 1] * g_ref
        v = np.array([1.0, g_ref])
        var_up = np.einsum("i,nij,j->n", v, lines.cov[:, 0], v)
        var_down = np.einsum("i,nij,j->n", v, lines.cov[:, 1], v)
        if (dw_up <= 0).any() or (dw_down <= 0).any():
            raise DataError(f"some devices have no positive step at g_ref = {g_ref:g}")
        kappa_up = np.clip(-lines.b[:, 0] / dw_up, 0.0, None)
        kappa_down = np.clip(lines.b[:, 1] / dw_down, 0.0, None)
    return {
        "dw_up": dw_up,
        "dw_down": dw_down,
        "var_up": var_up,
        "var_down": var_down,
        "kappa_up": kappa_up,
        "kappa_down": kappa_down,
        "g_min": g_min,
        "g_max": g_max,
    }


def _spread(values: np.ndarray, errors: np.ndarray) -> float:
    """Standard deviation over devices less the part their fit errors explain."""
    if len(values) < 2:
        return 0.0
    return math.sqrt(max(float(values.var(ddof=1) - errors.mean()), 0.0))


def _population(
    model: ResponseModel,
    exponent: float,
    per_device: dict[str, np.ndarray],
    noise: dict[str, np.ndarray],
    mode: NoiseMode,
    g_ref: float,
    devices: np.ndarray,
) -> dict[str, float]:
    """Nominal parameters and their device-to-device spread from the ``devices`` fits."""
    p = {key: v[devices] for key, v in per_device.items()}
    asym = asymmetry_from_steps(p["dw_up"], p["dw_down"])
    dw_min = asym.dw_min
    # Gain and spread are half the sum and half the difference of the steps over dw_min: the
    # same fit-error variance for both.
    factor_var = (p["var_up"] + p["var_down"]) / (4 * dw_min**2)
    above, below = p["g_max"] - g_ref, g_ref - p["g_min"]
    g_max, g_min = g_ref + float(above.mean()), g_ref - float(below.mean())
    rel = np.concatenate([above / above.mean() - 1, below / below.mean() - 1])
    out = {
        "g_min": g_min,
        "g_max": g_max,
        "dw_min": dw_min,
        "up_down": asym.up_down,
        "dw_min_dtod": _spread(asym.gain, factor_var),
        "up_down_dtod": _spread(asym.spread, factor_var),
        "bounds_dtod": float(rel.std(ddof=1)) if len(rel) > 2 else 0.0,
        "slope_up": 0.0,
        "slope_down": 0.0,
        "slope_dtod": 0.0,
        "dw_min_std": math.sqrt(step_var(noise, devices, mode)),
        "read_noise": math.sqrt(read_var(noise, devices)) / (g_max - g_min),
    }
    if model is ResponseModel.SOFT_BOUNDS:
        out["slope_up"] = out["slope_down"] = 1.0
    if model is ResponseModel.POWER_STEP:
        out["exponent"] = exponent
    if model in (ResponseModel.LINEAR_STEP, ResponseModel.POWER_STEP):
        s_up, s_down = p["kappa_up"] * above, p["kappa_down"] * below
        out["slope_up"], out["slope_down"] = float(s_up.mean()), float(s_down.mean())
        spread = np.concatenate([s_up - s_up.mean(), s_down - s_down.mean()])
        out["slope_dtod"] = float(spread.std(ddof=1))
    return out
