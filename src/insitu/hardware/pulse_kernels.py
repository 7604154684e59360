"""Compiled application of signed pulse counts to a tile's devices, on the CPU.

Each pulsed device moves by the closed-form response of its pulses (the same per-device table
and arithmetic as :func:`insitu.devices.pulse_table.apply_pulses_tabled`, in float64), its
cycle-to-cycle noise drawn from the chip instance's stream (:mod:`insitu.hardware.kernel_rng`).
:func:`pulse_entries` serves the stochastic update
(:func:`insitu.hardware.crossbar_kernels.stochastic_update`, sample by sample);
:func:`pulse_weights` serves :meth:`insitu.hardware.tile.Tile.pulse` and ``pulse_columns`` (a
compound cell's transfers, write-verify) on tiles whose update is compiled: the torch path's
scheduling of pulse runs took half of a mixed-precision cell's training time;
:func:`fire_whole_steps` serves ``Tile.pulse_steps`` (mixed precision's digital accumulator)
and ``Tile.pulse_column_steps`` (a TTv2 transfer's buffer).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from numba import njit
from torch import Tensor

from insitu.devices.pulse_table import DOWN, G_MAX, G_MIN, UP, WORKING
from insitu.devices.response import TINY as _TINY
from insitu.hardware.kernel_rng import normal

# Fields of a tile's scalar kernel parameters (:func:`pulse_entries`, and
# :func:`insitu.hardware.crossbar_kernels.stochastic_update`, which also reads the first four).
(
    P_LAM,
    P_MAX_PULSES,
    P_DYNAMIC,
    P_SEQUENTIAL,
    P_PAIR,
    P_WEIGHT_SCALE,
    P_G_REF,
    P_SIGMA2,
    P_MULTIPLICATIVE,
    P_G_MIN,
    P_DELTA,
) = range(11)
N_PARAMS = 11


# Up to this many pulses on one device the closed form's geometric sums are added term by term
# (exact, and no log/exp calls: the output layer's update, whose trains have a few slots, took
# a quarter less time); beyond it, the closed form with log1p/expm1.
_SUMMED_PULSES = 8.0

# Columns of a kernel table: the per-device constants one pulse needs, 32 bytes per device
# (the 15-column pulse table is 60): fewer cache lines per pulsed device.
K_DW_UP, K_KAPPA_UP, K_DW_DOWN, K_KAPPA_DOWN, K_G_MIN, K_G_MAX, K_WORKING = range(7)
K_COLUMNS = 8


def kernel_table(table: Tensor) -> Tensor:
    """The compact per-device table (devices, 8) of a pulse table (devices, 15)."""
    cols = [
        table[:, UP.start],
        table[:, UP.start + 1],
        table[:, DOWN.start],
        table[:, DOWN.start + 1],
        table[:, G_MIN],
        table[:, G_MAX],
        table[:, WORKING],
        torch.zeros_like(table[:, 0]),
    ]
    return torch.stack(cols, dim=-1).contiguous()


@njit(inline="always")
def _response(
    g0: float,
    dw: float,
    kappa: float,
    n: int,
    noise: float,
    g_ref: float,
    sigma2: float,
    multiplicative: bool,
) -> float:
    """A device's conductance after ``n`` signed pulses from ``g0``, before quantisation and
    bounds: closed-form mean and variance, one Gaussian draw ``noise`` (the arithmetic of
    :func:`insitu.devices.response.linear_drive`). ``dw`` and ``kappa`` are the device's step
    and slope in the pulses' direction.

    Scalars in and out, on purpose: numba counts references to every array a helper receives,
    with atomic operations at each call, even when it is inlined. With the arrays passed in,
    those atomics took a third of the time of a pulsed device.
    """
    up = n > 0
    x0 = g0 - g_ref if up else g_ref - g0
    u0 = max(1.0 - kappa * x0, 0.0)
    m = float(abs(n))
    if m == 1.0:  # one pulse, the common case: one nominal step, no transcendental terms
        mean = u0 * dw
        std = (mean if multiplicative else dw) * math.sqrt(sigma2)  # one sqrt per call, hoisted
    else:
        a = kappa * dw
        linear = a < _TINY  # the reference's constant-step limit
        if m <= _SUMMED_PULSES:  # the geometric sums term by term, no transcendental calls
            q = 1.0 if linear else 1.0 - a
            # var = unit^2 sigma^2 sum_t x^(m-1-t) y^t (Horner's rule): multiplicative noise
            # has unit = u0 dw, x = q^2, y = q^2 + (a sigma)^2; additive unit = dw, x = 1, y = q^2.
            if multiplicative:
                unit, x, y = u0 * dw, q * q, q * q + (0.0 if linear else a * a * sigma2)
            else:
                unit, x, y = dw, 1.0, q * q
            steps = 0.0  # sum of q^t, t < m: the pulses' steps relative to the first
            total = 0.0
            qt = 1.0
            yt = 1.0
            for _ in range(int(m)):
                steps += qt
                qt *= q
                total = total * x + yt
                yt *= y
            mean = u0 * dw * steps
            var = unit * unit * sigma2 * total
        else:
            if linear:
                a = 1.0
            log_q = math.log1p(-a)
            steps = m if linear else -math.expm1(m * log_q) / a
            mean = u0 * dw * steps
            if multiplicative:
                if linear:
                    var = (u0 * dw) ** 2 * m * sigma2
                else:
                    log_r = math.log1p(a * a * sigma2 / math.exp(2.0 * log_q))
                    grow = math.exp(2.0 * m * log_q) * math.expm1(m * log_r)
                    var = (u0 * dw) ** 2 * grow / (a * a)
            elif linear:
                var = dw * dw * sigma2 * m
            else:
                var = dw * dw * sigma2 * (-math.expm1(2.0 * m * log_q) / (a * (2.0 - a)))
        std = math.sqrt(max(var, 0.0))
    return g0 + (mean if up else -mean) + std * noise


@njit(cache=True)
def pulse_entries(
    g: np.ndarray,
    table: np.ndarray,
    w: np.ndarray,
    pulses: np.ndarray,
    cells: np.ndarray,
    counts: np.ndarray,
    m: int,
    z: Any,
    params: np.ndarray,
) -> tuple[int, Any]:
    """Signed pulse counts ``counts[:m]`` on the weights ``cells[:m]`` (indices into the flat
    ``w`` and ``pulses``, (I * out * in,)), in order: each weight's device (and the differential
    pair's second device, pulsed the other way), then the weight. One call per sample: a call
    costs reference counting for each array it takes. Returns the device pulses and the stream
    state ``z``."""
    pair = int(params[P_PAIR])
    weight_scale = params[P_WEIGHT_SCALE]
    g_ref = params[P_G_REF]
    sigma2 = params[P_SIGMA2]
    multiplicative = params[P_MULTIPLICATIVE] > 0
    g_min = params[P_G_MIN]
    delta = params[P_DELTA]
    size = w.size
    total = 0
    for e in range(m):
        cell = cells[e]
        n = counts[e]
        pulses[cell] += abs(n)
        total += abs(n) * pair
        for side in range(pair):
            dev = cell + side * size
            noise, z = normal(z)
            if table[dev, K_WORKING] <= 0.0:
                continue  # stuck: takes its draw, keeps its conductance
            k = n if side == 0 else -n  # the pair's second device moves the other way
            up = k > 0
            # widened first: numba's float() keeps a float32 a float32, and the step loss
            # kappa * dw was a float32 product (off by up to 6e-8 of itself)
            dw = np.float64(table[dev, K_DW_UP if up else K_DW_DOWN])
            kappa = np.float64(table[dev, K_KAPPA_UP if up else K_KAPPA_DOWN])
            g0 = np.float64(g[dev])
            g_new = _response(g0, dw, kappa, k, noise, g_ref, sigma2, multiplicative)
            if delta > 0.0:
                g_new = g_min + round((g_new - g_min) / delta) * delta
            g[dev] = min(max(g_new, float(table[dev, K_G_MIN])), float(table[dev, K_G_MAX]))
        if pair == 2:
            w[cell] = weight_scale * (g[cell] - g[cell + size])
        else:
            w[cell] = weight_scale * (g[cell] - g_ref)
    return total, z


@njit(cache=True)
def pulse_weights(
    g: np.ndarray,
    table: np.ndarray,
    w: np.ndarray,
    pulses: np.ndarray,
    cells: np.ndarray,
    counts: np.ndarray,
    starts: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
) -> int:
    """Signed pulse counts ``counts`` on the weights ``cells`` (indices into the flat (I, out,
    in) weights), instance ``i``'s entries at ``starts[i]:starts[i + 1]``, each from that
    instance's stream ``state[i]``. Returns the device pulses."""
    size = w.size
    w_flat = w.reshape(size)
    pulses_flat = pulses.reshape(size)
    total = 0
    for i in range(state.size):
        a, b = starts[i], starts[i + 1]
        if b > a:
            done, z = pulse_entries(
                g, table, w_flat, pulses_flat, cells[a:b], counts[a:b], b - a, state[i], params
            )
            state[i] = z
            total += done
    return total


@njit(cache=True)
def fire_whole_steps(
    g: np.ndarray,
    table: np.ndarray,
    w: np.ndarray,
    pulses: np.ndarray,
    acc: np.ndarray,
    columns: np.ndarray,
    n_in: int,
    step: float,
    threshold: float,
    cap: int,
    params: np.ndarray,
    state: np.ndarray,
) -> tuple[int, int, int, int]:
    """Digital accumulators ``acc`` (I, out, k; float32, weight units) of the tile's
    ``columns`` (k,) of ``n_in`` fired in place: where ``|acc|`` reaches ``threshold`` steps,
    its whole number of ``step`` (at least one, at most ``cap``) is pulsed and subtracted, in
    row-major order per instance from its stream (:func:`insitu.hardware.tile_pulses.
    whole_steps` and the pulses, fused: the tensor passes and the entry lists took most of a
    mixed-precision update and of a TTv2 transfer). float32 arithmetic, as the reference's.
    Returns the device pulses, the weights fired, the pulses of all row trains and the length
    of all column trains (each column's longest row)."""
    instances = state.size
    k = columns.size
    n_out = acc.size // (instances * k)
    flat = acc.reshape(acc.size)
    step32 = np.float32(step)
    fire_at = np.float32(threshold * step)
    top = np.float32(cap)
    cells = np.empty(acc.size, np.int64)
    counts = np.empty(acc.size, np.int64)
    starts = np.zeros(instances + 1, np.int64)
    longest = np.zeros(k, np.int64)
    m = 0
    line_pulses = 0
    column_trains = 0
    for i in range(instances):
        longest[:] = 0
        for r in range(n_out):
            row = (i * n_out + r) * k
            for j in range(k):
                h = flat[row + j]
                a = abs(h)
                if a >= fire_at and a > 0.0:  # a zero accumulator has no sign to pulse
                    n = min(max(np.floor(a / step32), np.float32(1.0)), top)
                    if h < 0:
                        n = -n
                    flat[row + j] = h - n * step32
                    cells[m] = (i * n_out + r) * n_in + columns[j]
                    counts[m] = int(n)
                    m += 1
                    line_pulses += abs(int(n))
                    longest[j] = max(longest[j], abs(int(n)))
        column_trains += longest.sum()
        starts[i + 1] = m
    if m == 0:
        return 0, 0, 0, 0
    done = pulse_weights(g, table, w, pulses, cells, counts, starts, params, state)
    return done, m, line_pulses, column_trains


class TileViews(NamedTuple):
    """What a tile's compiled update works on: its tensors (to notice when one is replaced)
    and their numpy views, the scalar parameters and the generator streams."""

    g_tensor: Tensor
    w_tensor: Tensor
    g: np.ndarray
    table: np.ndarray
    w: np.ndarray
    pulses: np.ndarray
    params: np.ndarray
    state: np.ndarray
