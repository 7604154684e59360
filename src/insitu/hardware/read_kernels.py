"""Compiled CPU reads of a crossbar tile: DAC, the array's multiply-accumulate, noise, ADC.

The torch implementation (:class:`insitu.hardware.tile_read.TorchRead`) is the reference. A
training step's reads are small (a mini-batch of 10 vectors), so most of their time went to
the glue between a dozen tensor operations rather than to arithmetic. Here a read is one
compiled call: :func:`analog_read` does it all, with its own multiply-accumulate loops; for
large arrays, where torch's matmul is faster, :func:`convert_inputs` and
:func:`convert_outputs` run around it instead.

The noise comes from the tile's generator streams (:mod:`insitu.hardware.kernel_rng`) and the
sums are taken in another order than torch's, so the compiled reads agree with the torch path
in distribution and, without noise, to float32 rounding (one ADC step where a value sits on a
rounding edge); the tests check both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numba import njit

from insitu.hardware.kernel_rng import normal

# Fields of the periphery vector (float64) every read kernel takes.
R_MANAGE, R_IN_BOUND, R_DAC_STEP, R_READ_NOISE, R_SIGMA, R_OUT_BOUND, R_ADC_STEP = range(7)
N_READ_PARAMS = 7

# Reordered sums with fused multiply-adds: what lets LLVM vectorise the loops below.
_MAC = {"reassoc", "contract"}

# Up to this many multiply-accumulates per read (all instances) a read runs wholly compiled;
# above it torch's matmul runs between the compiled converters. Alone, the two are about as fast
# for the benchmark's reads (2-core AMD EPYC, torch 2.13: a 10 x 785 x 256 forward read 99 us
# either way, a 10 x 129 x 10 one 7 us compiled against 14 us), but within training steps, 4
# million measured faster than 1 million: a median of 0.97 against 1.02 ms per mini-batch for
# one chip of 784-256-128-10, and 7.1-7.2 against 7.4-8.1 ms for eight.
FUSED_MACS = 4_000_000


@njit(fastmath={"nnan", "ninf", "nsz", "reassoc"})
def largest(v: np.ndarray) -> np.float32:
    """The largest magnitude in ``v`` (a vectorised max: the inputs were checked finite)."""
    top = np.float32(0.0)
    for j in range(v.size):
        top = max(top, abs(v[j]))
    return top


@njit(fastmath=_MAC)
def _power(x: np.ndarray) -> np.float32:
    s = np.float32(0.0)
    for j in range(x.size):
        s += x[j] * x[j]
    return s


@njit(inline="always")
def _convert_row(v: np.ndarray, drive: np.ndarray, p: np.ndarray) -> tuple[np.float32, np.float32]:
    """DAC of one input vector ``v`` into ``drive``: noise management (divide by the largest
    magnitude over the full scale), saturation, rounding to the DAC step. Returns the scale to
    undo after the ADC and, when the devices have read noise, the sum of the squared drives."""
    manage = p[R_MANAGE] > 0.0
    bound = np.float32(p[R_IN_BOUND])
    res = np.float32(p[R_DAC_STEP])
    s = max(largest(v), np.float32(1e-12)) / bound if manage else np.float32(1.0)
    # Periphery.convert_input's operations in its order (a division by 1 changes nothing).
    # Written as one loop with one store: other forms took two to three times as long.
    for j in range(v.size):
        x = v[j] / s
        x = min(max(x, -bound), bound)
        if res > 0.0:
            x = np.rint(x / res) * res
        drive[j] = x
    return s, _power(drive) if p[R_READ_NOISE] > 0.0 else np.float32(0.0)


@njit(inline="always")
def _sense_row(y: np.ndarray, scale: np.float32, power: np.float32, p: np.ndarray, z: Any) -> Any:
    """ADC of one output vector ``y`` in place: the devices' read noise (std proportional to
    the root of the summed squared drives), output noise, saturation, rounding to the ADC step,
    the digital rescale. Normal draws from the stream with state ``z``; returns its new state."""
    read_std = p[R_READ_NOISE] * math.sqrt(power)
    sigma = p[R_SIGMA]
    bound = np.float32(p[R_OUT_BOUND])
    res = np.float32(p[R_ADC_STEP])
    manage = p[R_MANAGE] > 0.0
    for o in range(y.size):
        v = y[o]
        if read_std > 0.0:
            e, z = normal(z)
            v += np.float32(read_std * e)
        if sigma > 0.0:
            e, z = normal(z)
            v += np.float32(sigma * e)
        v = min(max(v, -bound), bound)
        if res > 0.0:
            v = np.rint(v / res) * res
        if manage:
            v = v * scale
        y[o] = v
    return z


@njit(fastmath=_MAC)
def _multiply(drive: np.ndarray, w: np.ndarray, transposed: bool, y: np.ndarray) -> None:
    """The array's currents: ``y = drive @ w.T`` (forward) or ``drive @ w`` (transposed) for
    one instance, ``drive`` (B, n), ``w`` (out, in), ``y`` (B, m).

    Blocks of weight rows are taken outermost, so that each is read from memory once and reused
    from the cache for every vector of the batch (a quarter faster than vector by vector).
    Forward, a block is two weight rows against four input vectors: eight sums at once, six
    loads per eight multiply-adds. Transposed, four weight rows are added into each output
    vector: one load and store of it per four rows. The loops are written out here, not in
    helpers taking array slices: each such call cost reference counting (atomic operations) and
    the reads took a quarter longer.
    """
    rows, n = drive.shape
    if transposed:
        m = y.shape[1]
        y[:] = 0.0
        o = 0
        while o + 4 <= n:
            for r in range(rows):
                a0, a1, a2, a3 = drive[r, o], drive[r, o + 1], drive[r, o + 2], drive[r, o + 3]
                for j in range(m):
                    y[r, j] += a0 * w[o, j] + a1 * w[o + 1, j] + a2 * w[o + 2, j] + a3 * w[o + 3, j]
            o += 4
        for last in range(o, n):
            for r in range(rows):
                a = drive[r, last]
                for j in range(m):
                    y[r, j] += a * w[last, j]
        return
    m = w.shape[0]
    for o in range(0, m - 1, 2):
        r = 0
        while r + 4 <= rows:
            s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = np.float32(0.0)
            for j in range(n):
                x0, x1 = w[o, j], w[o + 1, j]
                a0, a1, a2, a3 = drive[r, j], drive[r + 1, j], drive[r + 2, j], drive[r + 3, j]
                s00 += a0 * x0
                s01 += a0 * x1
                s10 += a1 * x0
                s11 += a1 * x1
                s20 += a2 * x0
                s21 += a2 * x1
                s30 += a3 * x0
                s31 += a3 * x1
            y[r, o], y[r, o + 1] = s00, s01
            y[r + 1, o], y[r + 1, o + 1] = s10, s11
            y[r + 2, o], y[r + 2, o + 1] = s20, s21
            y[r + 3, o], y[r + 3, o + 1] = s30, s31
            r += 4
        for q in range(r, rows):
            s0 = s1 = np.float32(0.0)
            for j in range(n):
                s0 += drive[q, j] * w[o, j]
                s1 += drive[q, j] * w[o + 1, j]
            y[q, o], y[q, o + 1] = s0, s1
    if m % 2:
        for q in range(rows):
            s = np.float32(0.0)
            for j in range(n):
                s += drive[q, j] * w[m - 1, j]
            y[q, m - 1] = s


def _analog_read(
    v: np.ndarray, w: np.ndarray, transposed: bool, y: np.ndarray, p: np.ndarray, state: np.ndarray
) -> None:
    """A whole read of every instance: inputs ``v`` (I, B, n) through the DAC, the weights
    ``w`` (I, out, in) (transposed: driven from the output side) and the ADC into ``y``
    (I, B, m); instance ``i`` draws its noise from stream ``i`` of ``state``."""
    inst, rows, n = v.shape
    drive = np.empty((rows, n), dtype=np.float32)
    scale = np.empty(rows, dtype=np.float32)
    power = np.empty(rows, dtype=np.float32)
    for i in range(inst):
        for r in range(rows):
            scale[r], power[r] = _convert_row(v[i, r], drive[r], p)
        _multiply(drive, w[i], transposed, y[i])
        z = state[i]
        for r in range(rows):
            z = _sense_row(y[i, r], scale[r], power[r], p, z)
        state[i] = z


def _convert_inputs(
    v: np.ndarray, drive: np.ndarray, scale: np.ndarray, power: np.ndarray, p: np.ndarray
) -> None:
    """The DAC half of a read, for torch's matmul to follow: ``v`` (I, B, n) into ``drive``,
    with each vector's scale and summed squared drive in ``scale`` and ``power`` (I, B)."""
    inst, rows, _ = v.shape
    for i in range(inst):
        for r in range(rows):
            scale[i, r], power[i, r] = _convert_row(v[i, r], drive[i, r], p)


def _convert_outputs(
    y: np.ndarray, scale: np.ndarray, power: np.ndarray, p: np.ndarray, state: np.ndarray
) -> None:
    """The ADC half of a read, after torch's matmul: ``y`` (I, B, m) in place."""
    inst, rows, _ = y.shape
    for i in range(inst):
        z = state[i]
        for r in range(rows):
            z = _sense_row(y[i, r], scale[i, r], power[i, r], p, z)
        state[i] = z


# Typed for mypy as plain callables (numba's dispatcher type hides the signatures).
analog_read = cast(Callable[..., None], njit(cache=True)(_analog_read))
convert_inputs = cast(Callable[..., None], njit(cache=True)(_convert_inputs))
convert_outputs = cast(Callable[..., None], njit(cache=True)(_convert_outputs))


def read_params(
    manage: bool,
    in_bound: float,
    dac_step: float,
    read_noise: float,
    sigma: float,
    out_bound: float,
    adc_step: float,
) -> np.ndarray:
    """The periphery vector of the read kernels (``R_*`` fields). ``read_noise`` is the std of
    an output per unit root-summed-squared drive (devices' read noise, all devices of a weight)."""
    p = np.zeros(N_READ_PARAMS)
    p[R_MANAGE] = float(manage)
    p[R_IN_BOUND] = in_bound
    p[R_DAC_STEP] = dac_step
    p[R_READ_NOISE] = read_noise
    p[R_SIGMA] = sigma
    p[R_OUT_BOUND] = out_bound
    p[R_ADC_STEP] = adc_step
    return p
