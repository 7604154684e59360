"""Compiled CPU kernels for a tile's pulsed updates (reads: :mod:`insitu.hardware.read_kernels`).

The torch implementation in :mod:`insitu.hardware.tile_update` is the reference (what runs on a
GPU). On the CPU a mini-batch of sequential rank-1 updates costs hundreds of small tensor
operations there; here it is one loop per chip instance, as the hardware does it: for every
sample draw the row and column pulse trains, count where they coincide, and move each pulsed
device by the closed-form response of its pulses (:mod:`insitu.hardware.pulse_kernels`).

Random numbers come from one stream per chip instance (:mod:`insitu.hardware.kernel_rng`),
seeded from the chip's torch generator and saved in checkpoints: runs stay reproducible from
the run seed and independent of the number of threads. The draws differ from the torch path's,
so the two paths agree in distribution, not number for number (tests check both the
deterministic cases exactly and the statistics).

:class:`insitu.hardware.tile_update.KernelUpdate` calls them where the tile was built with the
kernels (:func:`insitu.hardware.backend.choose`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from insitu.hardware.kernel_rng import skip, uniform_at
from insitu.hardware.pulse_kernels import (
    K_COLUMNS,
    P_DYNAMIC,
    P_LAM,
    P_MAX_PULSES,
    P_PAIR,
    P_SEQUENTIAL,
    pulse_entries,
)
from insitu.hardware.read_kernels import largest

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)
_U56 = np.uint64(56)

# A pulse train is held as the bits of 64-bit words, one word for trains of up to 64 slots
# (nearly all); longer ones (aihwkit's TTv2 presets ask for 100) take several words per line.
# Beyond MAX_KERNEL_SLOTS, the torch path.
WORD_SLOTS = 64
MAX_KERNEL_SLOTS = 4 * WORD_SLOTS


@njit(inline="always")
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> _U1) & _M1)
    x = (x & _M2) + ((x >> _U2) & _M2)
    x = (x + (x >> _U4)) & _M4
    return int((x * _H01) >> _U56)


@njit(inline="always")
def _train(z: Any, line: int, slots: int, p: float, first: int = 0) -> np.uint64:
    """Slots ``first`` to ``first + 63`` (at most ``slots - 1``) of the pulse train of
    ``line`` as the bits of a word: ``slots`` slots, each firing with probability ``p``, drawn
    at stream positions ``line * slots + 1`` onwards from state ``z`` (so a loop over lines has
    no chain between them; it ends with ``skip(z, lines * slots)``). Scalars only: see
    :func:`_response`."""
    mask = _ZERO
    for t in range(first, min(first + WORD_SLOTS, slots)):
        hit = np.uint64(uniform_at(z, line * slots + t + 1) < p)
        mask |= hit << np.uint64(t - first)
    return mask


@intrinsic
def _prefetch_intrinsic(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask the CPU to bring element ``index`` of a C-contiguous ``array`` (counted in elements
    of its flat data) into the cache, without waiting for it: ``llvm.prefetch``."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte = ir.IntType(8).as_pointer()
        address = builder.bitcast(builder.gep(data, [args[1]]), byte)
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32])
        fetch = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0i8")
        builder.call(fetch, [address, i32(0), i32(3), i32(1)])  # read, keep, data cache
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


_prefetch = cast(Callable[[np.ndarray, int], None], _prefetch_intrinsic)


# Device tables larger than this are prefetched, weight by weight, before a sample's pulses are
# applied: their rows come from main memory, scattered, and asking early lets the misses
# overlap (the 785 x 256 tile's update, 6.4 MB of table, took 10-20 % less time). Smaller ones
# stay in the core's caches between steps (1 MB L2 on the benchmark machine), where the
# prefetches only cost instructions: the 257 x 128 tile's update took 10 % less without them.
PREFETCH_BYTES = 2 << 20


def _stochastic_update(
    g: np.ndarray,
    table: np.ndarray,
    w: np.ndarray,
    pulses: np.ndarray,
    x: np.ndarray,
    d: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
    totals: np.ndarray,
) -> None:
    """Pulsed SGD step ``W -= lr sum_s d_s x_s^T`` on every instance (in place).

    ``g`` (pair * I * out * in,) conductances, ``table`` their :func:`kernel_table` rows, ``w``
    (I, out, in) the weights kept in step with ``g``, ``pulses`` (I, out, in) pulse counts per
    weight, ``x`` (I, S, in) and ``d`` (I, S, out). ``params`` holds the scalars (``P_*``):
    ``lam`` = lr / weight step, the train length cap, dynamic length, sequential, ``pair`` (2: a
    differential pair whose device 1 mirrors device 0; 1: one device against ``g_ref``), the
    weight scale and the device constants. Sequential: every sample is one rank-1 update;
    otherwise a mini-batch's coincidences are summed per device and applied once. ``state`` (I,)
    holds each instance's generator stream; ``totals`` (2,) accumulates the line pulses and
    the device pulses of all instances.
    """
    lam = params[P_LAM]
    max_pulses = int(params[P_MAX_PULSES])
    dynamic_length = params[P_DYNAMIC] > 0
    sequential = params[P_SEQUENTIAL] > 0
    pair = int(params[P_PAIR])
    inst, samples, n_in = x.shape
    n_out = d.shape[2]
    size = inst * n_out * n_in
    w_flat = w.reshape(size)
    pulses_flat = pulses.reshape(size)
    far = table.nbytes > PREFETCH_BYTES
    for i in range(inst):
        # Each line's train as `words` consecutive words (one unless a train has > 64 slots).
        most = (max_pulses + WORD_SLOTS - 1) // WORD_SLOTS
        xm = np.zeros(n_in * most, dtype=np.uint64)
        dm = np.zeros(n_out * most, dtype=np.uint64)
        cols = np.zeros(n_in, dtype=np.int64)
        signs = np.zeros(n_in, dtype=np.int64)
        rows = np.zeros(n_out, dtype=np.int64)
        # A sample's coincidences (sequential) or the summed ones (aggregated), in row-major
        # order, as weight indices and signed counts; grown when a sample needs more room.
        room = n_out * n_in if not sequential else min(n_out * n_in, 4 * (n_in + n_out))
        cells = np.empty(room, dtype=np.int64)
        counts = np.empty(room, dtype=np.int64)
        acc = (
            np.zeros((1, 1), dtype=np.int32)
            if sequential
            else np.zeros((n_out, n_in), dtype=np.int32)
        )
        line_pulses = 0
        device_pulses = 0
        z = state[i]  # the stream's word in a register while the instance is updated
        for s in range(samples):
            mx = float(largest(x[i, s]))
            md = float(largest(d[i, s]))
            need = lam * mx * md
            if need == 0.0:
                continue
            slots = min(max(math.ceil(need), 1), max_pulses) if dynamic_length else max_pulses
            # Balanced scales: cx * cd = lam / slots, cx / cd = md / mx.
            cx = math.sqrt(lam * md / (slots * mx))
            cd = math.sqrt(lam * mx / (slots * md))
            n_cols = 0
            n_rows = 0
            words = 1
            if slots == 1:
                # One slot (most samples of the hidden layers): a line fires with probability
                # p. One draw per line, taken by position in the stream, and the fired lines
                # kept by a conditional advance: no chain between lines and no branch (the
                # update of one chip of the benchmark took 10 % less time than line by line).
                for j in range(n_in):
                    v = x[i, s, j]
                    cols[n_cols] = j
                    signs[n_cols] = 1 if v > 0 else -1
                    xm[n_cols] = _ONE
                    n_cols += uniform_at(z, j + 1) < abs(v) * cx
                z = skip(z, n_in)
                for r in range(n_out):
                    rows[n_rows] = r
                    dm[n_rows] = _ONE
                    n_rows += uniform_at(z, r + 1) < abs(d[i, s, r]) * cd
                z = skip(z, n_out)
                line_pulses += n_cols + n_rows
            elif slots > WORD_SLOTS:  # as below, each train over several words
                words = (slots + WORD_SLOTS - 1) // WORD_SLOTS
                for j in range(n_in):
                    v = x[i, s, j]
                    if v == 0.0:
                        continue  # never fires; the draws are by position, so none shift
                    cols[n_cols] = j
                    signs[n_cols] = 1 if v > 0 else -1
                    fired = _ZERO
                    for q in range(words):
                        mask = _train(z, j, slots, abs(v) * cx, q * WORD_SLOTS)
                        xm[n_cols * words + q] = mask
                        fired |= mask
                        line_pulses += _popcount(mask)
                    n_cols += fired != _ZERO
                z = skip(z, n_in * slots)
                for r in range(n_out):
                    if d[i, s, r] == 0.0:
                        continue
                    rows[n_rows] = r
                    fired = _ZERO
                    for q in range(words):
                        mask = _train(z, r, slots, abs(d[i, s, r]) * cd, q * WORD_SLOTS)
                        dm[n_rows * words + q] = mask
                        fired |= mask
                        line_pulses += _popcount(mask)
                    n_rows += fired != _ZERO
                z = skip(z, n_out * slots)
            else:  # the same, a draw per slot, the slots' outcomes as the bits of a word
                for j in range(n_in):
                    v = x[i, s, j]
                    # A silent line never fires; skipping its draws shifts no other line's (they
                    # are taken by position): a third less time for MNIST's mostly dark pixels.
                    if v == 0.0:
                        continue
                    mask = _train(z, j, slots, abs(v) * cx)
                    cols[n_cols] = j
                    signs[n_cols] = 1 if v > 0 else -1
                    xm[n_cols] = mask
                    n_cols += mask != _ZERO
                    line_pulses += _popcount(mask)
                z = skip(z, n_in * slots)
                for r in range(n_out):
                    if d[i, s, r] == 0.0:
                        continue
                    mask = _train(z, r, slots, abs(d[i, s, r]) * cd)
                    rows[n_rows] = r
                    dm[n_rows] = mask
                    n_rows += mask != _ZERO
                    line_pulses += _popcount(mask)
                z = skip(z, n_out * slots)
            if n_rows * n_cols > cells.size:  # at most every fired row meets every fired column
                cells = np.empty(n_rows * n_cols, dtype=np.int64)
                counts = np.empty(n_rows * n_cols, dtype=np.int64)
            # Every fired row against every fired column, without a branch on whether they
            # coincide (about 40 % do, at random): an entry is written for each pair and kept
            # by advancing the count (the mispredicted branch took a fifth of the update of
            # the Tiki-Taka benchmark's A tiles).
            m = 0
            for a in range(n_rows):
                r = rows[a]
                sr = -1 if d[i, s, r] > 0 else 1  # descent: minus the error's sign
                row = (i * n_out + r) * n_in
                if sequential and words == 1:  # the common case, in a loop of its own (4 % faster)
                    train = dm[a]
                    for b in range(n_cols):
                        k = _popcount(train & xm[b])
                        cells[m] = row + cols[b]
                        counts[m] = sr * signs[b] * k
                        m += k != 0
                    continue
                for b in range(n_cols):
                    if words == 1:
                        k = _popcount(dm[a] & xm[b])
                    else:
                        k = 0
                        for q in range(words):
                            k += _popcount(dm[a * words + q] & xm[b * words + q])
                    n = sr * signs[b] * k
                    if sequential:
                        cells[m] = row + cols[b]
                        counts[m] = n
                        m += k != 0
                    else:
                        acc[r, cols[b]] += n
            if far:
                # Asked for before the pulses are applied, so the misses overlap each other (in
                # the loop above they would cost a branch per pair; 8 chips: 3.05-3.07x aihwkit
                # either way).
                for e in range(m):
                    for dev in range(cells[e], pair * size, size):
                        _prefetch(table, dev * K_COLUMNS)
                        _prefetch(g, dev)
            if m > 0:
                done, z = pulse_entries(g, table, w_flat, pulses_flat, cells, counts, m, z, params)
                device_pulses += done
        if not sequential:
            m = 0
            for r in range(n_out):
                row = (i * n_out + r) * n_in
                for c in range(n_in):
                    if acc[r, c] != 0:
                        cells[m] = row + c
                        counts[m] = acc[r, c]
                        m += 1
                        if far:
                            for dev in range(row + c, pair * size, size):
                                _prefetch(table, dev * K_COLUMNS)
                                _prefetch(g, dev)
            done, z = pulse_entries(g, table, w_flat, pulses_flat, cells, counts, m, z, params)
            device_pulses += done
        state[i] = z
        totals[0] += line_pulses
        totals[1] += device_pulses


# One thread, on purpose. Measured on the 784-256-128-10 benchmark (2 cores): spreading 8 chip
# instances over 2 threads made the update no faster (3.2-3.5 vs 3.2-3.5 ms per mini-batch for
# the 784x256 layers; 1.2-2.2 vs 0.9 ms for the 129x10 ones): a device update is a random
# access into per-device state far larger than the caches, and a launch of numba's thread pool
# costs about 0.1 ms. (A serial and a parallel compilation of one function also share numba's
# on-disk cache entry, so one of them silently ran the other's code.)
stochastic_update = njit(cache=True)(_stochastic_update)
