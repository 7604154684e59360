"""Read noise and cycle-to-cycle step noise of a pulse-response fit (:mod:`insitu.devices.fit`).

A read error enters two consecutive steps with opposite signs, so the lag-one covariance of
consecutive step residuals measures the read noise; the residual variance left after it is the
step noise, relative to the step (multiplicative) or to the device's nominal step (additive),
whichever the steps make more likely.
"""

from __future__ import annotations

import math

import numpy as np

from insitu.devices.params import NoiseMode, ResponseModel
from insitu.devices.step_lines import Lines


def noise_sums(
    model: ResponseModel,
    lines: Lines,
    nominal_steps: np.ndarray,
    k: np.ndarray,
    dev: np.ndarray,
    d: np.ndarray,
    sign: np.ndarray,
    g0: np.ndarray,
    mag: np.ndarray,
    interior: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Per-device sums from which read noise and step noise follow (see module docstring)."""
    mean = np.clip(lines.magnitude(model, dev, d, g0), 0.0, None)
    slope = lines.slope(model, dev, d, g0)
    r = mag - mean
    # Consecutive pulses (read after one is the read before the next), both away from bounds.
    pair = (k[1:] == k[:-1] + 1) & interior[1:] & interior[:-1]
    cross = r[:-1] * r[1:]
    weight = -sign[:-1] * (sign[1:] + slope[1:])
    nominal = nominal_steps[dev, d]
    read_factor = 1 + (sign + slope) ** 2

    def per(values: np.ndarray, mask: np.ndarray, owner: np.ndarray) -> np.ndarray:
        return np.bincount(owner[mask], weights=values[mask], minlength=n)

    return {
        "pair": per(cross, pair, dev[1:]),
        "pair_w": per(weight, pair, dev[1:]),
        "r2": per(r**2, interior, dev),
        "read": per(read_factor, interior, dev),
        "mult": per(mean**2, interior, dev),
        "add": per(nominal**2, interior, dev),
        # For the likelihood of each noise mode (all devices at once).
        "_r": r[interior],
        "_mean": mean[interior],
        "_nominal": nominal[interior],
        "_read": read_factor[interior],
    }


def read_var(noise: dict[str, np.ndarray], devices: np.ndarray) -> float:
    w = noise["pair_w"][devices].sum()
    return max(float(noise["pair"][devices].sum() / w), 0.0) if w != 0 else 0.0


def step_var(noise: dict[str, np.ndarray], devices: np.ndarray, mode: NoiseMode) -> float:
    read = read_var(noise, devices)
    left = noise["r2"][devices].sum() - read * noise["read"][devices].sum()
    scale = noise["mult" if mode is NoiseMode.MULTIPLICATIVE else "add"][devices].sum()
    return max(float(left / scale), 0.0)


def likelier_noise_mode(noise: dict[str, np.ndarray]) -> NoiseMode:
    """The more likely noise mode (Gaussian steps, read noise as fitted)."""
    everyone = np.arange(len(noise["r2"]))
    read = read_var(noise, everyone)
    best, best_ll = NoiseMode.MULTIPLICATIVE, -math.inf
    for mode, w in ((NoiseMode.MULTIPLICATIVE, "_mean"), (NoiseMode.ADDITIVE, "_nominal")):
        var = step_var(noise, everyone, mode) * noise[w] ** 2 + read * noise["_read"]
        var = np.clip(var, 1e-300, None)
        ll = float(-0.5 * np.sum(np.log(var) + noise["_r"] ** 2 / var))
        if ll > best_ll:
            best, best_ll = mode, ll
    return best
