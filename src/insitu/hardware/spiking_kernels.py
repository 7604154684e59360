"""Compiled CPU kernel of the spiking chip's time loop: membrane with mismatch, noise,
refractory hold, dead neurons and (optional) recurrent synapses.

The torch loop in :class:`insitu.hardware.lif_emulation.TorchEmulation` is the reference (and
what runs on a GPU); it costs a dozen small tensor operations per time step. Here every
(instance, sample) row runs its whole time loop at once, in parallel over the rows, in float32
with the same operations in the same order, so membranes and spikes equal the torch path's for
the same drive and noise. The noise is drawn by the caller with the chip's generator in one bulk
call, as the torch path does. Recurrent input is summed event by event (only the neurons that
spiked), in a different order from the torch path's matrix product: equal to rounding.

:class:`insitu.hardware.lif_emulation.KernelEmulation` calls it where the chip was built with
the kernels (:func:`insitu.hardware.backend.choose`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from numba import prange
from torch import Tensor

from insitu.hardware.kernel_switch import jit, sync_threads

F32 = npt.NDArray[np.float32]


@jit(parallel=True)
def _emulate(
    drive: F32,  # (I, B, T, N): synaptic current each step adds
    noise: F32,  # (T, I, B, N) membrane noise, or (0, 0, 0, 0) for none
    decay_m: F32,  # (I, N): exp(-1/tau_m) of each neuron
    decay_s: F32,  # (I, N)
    rest: F32,  # (I, N): leak * (1 - decay_m)
    leak: F32,  # (I, N): the membrane at step -1
    threshold: F32,  # (I, N)
    alive: npt.NDArray[np.bool_],  # (I, N)
    rec_t: F32,  # (I, N, N): row j = where neuron j projects (gain folded in); unused if empty
    reset: np.float32,
    refractory: int,
    spiking: bool,
    recurrent: bool,
    adc: bool,  # False: an ideal ADC (the membrane as it is)
    adc_lo: np.float32,  # the ADC: voltage of code 0, code step, highest code, highest voltage
    adc_step: np.float32,
    adc_top: np.float32,
    adc_hi: np.float32,
    v_out: F32,  # (I, B, T, N): membrane before reset, as the ADC reports it
    z_out: F32,  # (I, B, T, N): 0/1 spikes
) -> None:
    i_n, b_n, t_n, n = drive.shape
    noisy = noise.shape[0] > 0
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for row in prange(i_n * b_n):
        i = row // b_n
        b = row % b_n
        v = leak[i].copy()
        cur = np.zeros(n, dtype=np.float32)
        rec = np.zeros(n, dtype=np.float32)
        held_for = np.zeros(n, dtype=np.int64)  # steps left at reset
        for t in range(t_n):
            any_spike = False
            for k in range(n):
                u = decay_m[i, k] * v[k] + rest[i, k] + cur[k]
                if noisy:
                    u = u + noise[t, i, b, k]
                cur[k] = decay_s[i, k] * cur[k] + drive[i, b, t, k]
                spike = False
                if spiking:
                    if refractory > 0 and held_for[k] > 0:
                        u = reset
                        held_for[k] -= 1
                    elif u >= threshold[i, k] and alive[i, k]:
                        spike = True
                        held_for[k] = refractory
                m = u  # the sample: :func:`insitu.hardware.spiking.adc_measure`, same float32 ops
                if adc:
                    code = min(max(np.rint((u - adc_lo) / adc_step), zero), adc_top)
                    m = min(max(code * adc_step + adc_lo, adc_lo), adc_hi)
                v_out[i, b, t, k] = m
                if spike:
                    z_out[i, b, t, k] = one
                    v[k] = reset
                    any_spike = True
                else:
                    z_out[i, b, t, k] = zero
                    v[k] = u
            if recurrent and any_spike:
                # cur + W_rec z: the weight rows of the neurons that spiked, summed, then added.
                rec[:] = zero
                for j in range(n):
                    if z_out[i, b, t, j] != zero:
                        for k in range(n):
                            rec[k] += rec_t[i, j, k]
                for k in range(n):
                    cur[k] = cur[k] + rec[k]


def emulate_layer(
    drive: Tensor,
    noise: Tensor | None,
    decay_m: Tensor,
    decay_s: Tensor,
    leak: Tensor,
    threshold: Tensor,
    alive: Tensor,
    reset: float,
    refractory: int,
    spiking: bool,
    rec_t: Tensor | None,
    adc_bits: int | None,
    adc_range: tuple[float, float],
) -> tuple[Tensor, Tensor]:
    """Measured membrane (before reset, through the ADC of ``adc_bits`` over ``adc_range``; None
    = ideal) and 0/1 spikes, each (I, B, T, N), of one layer of the chip.

    ``drive`` (I, B, T, N) float32; ``noise`` (T, I, B, N) or None; neuron parameters (I, N);
    ``rec_t`` (I, N, N) recurrent weights with the gain folded in, transposed (row j = the
    targets of neuron j), or None. All spikes are 0 for a non-spiking layer.
    """
    d = drive.detach().contiguous().numpy()
    rest = leak * (1.0 - decay_m)  # as the torch path computes it, in float32
    empty = np.zeros((0, 0, 0, 0), dtype=np.float32)
    nz = empty if noise is None else noise.detach().contiguous().numpy()
    rt = np.zeros((1, 1, 1), dtype=np.float32)
    if rec_t is not None:
        rt = rec_t.detach().to(torch.float32).contiguous().numpy()
    v_out = np.empty_like(d)
    z_out = np.empty_like(d)
    lo, hi = adc_range
    top = 1 if adc_bits is None else (1 << adc_bits) - 1
    step = (hi - lo) / top  # as adc_measure has it: in double, then float32
    sync_threads()
    _emulate(
        d,
        nz,
        decay_m.detach().contiguous().numpy(),
        decay_s.detach().contiguous().numpy(),
        rest.detach().contiguous().numpy(),
        leak.detach().contiguous().numpy(),
        threshold.detach().contiguous().numpy(),
        alive.detach().contiguous().numpy(),
        rt,
        np.float32(reset),
        int(refractory),
        bool(spiking),
        rec_t is not None and spiking,
        adc_bits is not None,
        np.float32(lo),
        np.float32(step),
        np.float32(top),
        np.float32(hi),
        v_out,
        z_out,
    )
    return torch.from_numpy(v_out), torch.from_numpy(z_out)
