"""Compiled CPU kernels for the LIF model's time loops: the forward simulation and its BPTT.

The torch loops in :mod:`insitu.algorithms.lif_graph` are the reference (and what runs on a
GPU). They cost some 17 small tensor operations per time step and layer forward and 10
backward; here each is one compiled loop over time per sample, in parallel over the samples,
with the same arithmetic in the same order (float32 stays float32), so the forward pass gives
the same membrane and spikes. Recurrent input is summed event by event (only the neurons that
spiked), and the recurrent weight gradient is one matrix product after the loop; these sums
run in a different order from the torch path's, so they agree to rounding.

Shapes: the batch dimensions of a ``(T, *batch, N)`` trace are flattened to rows; a recurrent
weight ``(*batch[:-1], N, N)`` serves the rows of its group (e.g. one chip instance's samples).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from numba import prange
from torch import Tensor

from insitu.hardware.kernel_switch import jit, sync_threads

if TYPE_CHECKING:
    from insitu.algorithms.lif_graph import LIFModelParams

Array = npt.NDArray[np.floating]


class LIFConstants(NamedTuple):
    """The model's neuron in the kernels' dtype (scalars of the traces' dtype, so float32
    arithmetic stays float32 as it does in torch)."""

    decay_m: np.floating
    decay_s: np.floating
    rest: np.floating
    leak: np.floating
    threshold: np.floating
    reset: np.floating
    beta: np.floating
    refractory_steps: int
    spiking: bool


def _constants(p: LIFModelParams, dtype: np.dtype[np.floating]) -> LIFConstants:
    c = dtype.type
    return LIFConstants(
        decay_m=c(p.decay_m),
        decay_s=c(p.decay_s),
        rest=c(p.leak * (1.0 - p.decay_m)),  # as the torch path has it: in double, then cast
        leak=c(p.leak),
        threshold=c(p.threshold),
        reset=c(p.reset),
        beta=c(p.surrogate_beta),
        refractory_steps=int(p.refractory_steps),
        spiking=bool(p.spiking),
    )


def supported(trace: Tensor, w_rec: Tensor | None) -> bool:
    """Whether the kernels serve this call: float32/float64 CPU tensors and a recurrent weight
    (if any) with one matrix per group of rows. (Whether the kernels are used at all is chosen
    when the software model is built: :class:`insitu.algorithms.lif_graph.KernelLIFModel`.)"""
    if trace.device.type != "cpu" or trace.dtype not in _DTYPES or trace.dim() < 3:
        return False
    if w_rec is None:
        return True
    return (
        w_rec.device == trace.device
        and w_rec.dtype == trace.dtype
        and tuple(w_rec.shape) == (*trace.shape[1:-2], trace.shape[-1], trace.shape[-1])
    )


_DTYPES = (torch.float32, torch.float64)


def _numpy_rows(x: Tensor) -> Array:
    """(T, *batch, N) as a (T, rows, N) numpy view (a copy only where the strides demand)."""
    return x.detach().reshape(x.shape[0], -1, x.shape[-1]).numpy()


@jit(parallel=True)
def _forward(
    drive: Array,
    w_rec_t: Array,
    rows_per_group: int,
    recurrent: bool,
    decay_m: np.floating,
    decay_s: np.floating,
    rest: np.floating,
    leak: np.floating,
    threshold: np.floating,
    reset: np.floating,
    refractory: int,
    spiking: bool,
    vs: Array,
    zs: Array,
) -> None:
    t_steps, rows, n = drive.shape
    zero = drive.dtype.type(0.0)
    one = drive.dtype.type(1.0)
    for r in prange(rows):
        g = r // rows_per_group
        v = np.full(n, leak, dtype=drive.dtype)
        cur = np.zeros(n, dtype=drive.dtype)
        rec = np.zeros(n, dtype=drive.dtype)
        held_for = np.zeros(n, dtype=np.int64)
        for t in range(t_steps):
            for k in range(n):
                vk = decay_m * v[k] + rest + cur[k]
                cur[k] = decay_s * cur[k] + drive[t, r, k]
                if not spiking:
                    vs[t, r, k] = vk
                    zs[t, r, k] = zero
                    v[k] = vk
                    continue
                spike = False
                if refractory > 0:
                    if held_for[k] > 0:
                        vk = reset
                        held_for[k] -= 1
                    elif vk >= threshold:
                        spike = True
                        held_for[k] = refractory
                else:
                    spike = vk >= threshold
                vs[t, r, k] = vk
                if spike:
                    zs[t, r, k] = one
                    v[k] = reset
                else:
                    zs[t, r, k] = zero
                    v[k] = vk
            if recurrent:
                # The layer's spikes feed its own current in the same step: add the weight
                # row of every neuron that spiked, then the sum, as cur + W_rec z.
                any_spike = False
                for j in range(n):
                    if zs[t, r, j] != zero:
                        if not any_spike:
                            rec[:] = zero
                            any_spike = True
                        for k in range(n):
                            rec[k] += w_rec_t[g, j, k]
                if any_spike:
                    for k in range(n):
                        cur[k] = cur[k] + rec[k]


@jit(parallel=True)
def _backward(
    grad_v: Array,
    grad_z: Array,
    v: Array,
    z: Array,
    w_rec: Array,
    rows_per_group: int,
    recurrent: bool,
    decay_m: np.floating,
    decay_s: np.floating,
    threshold: np.floating,
    beta: np.floating,
    refractory: int,
    spiking: bool,
    grad_drive: Array,
) -> None:
    t_steps, rows, n = v.shape
    zero = v.dtype.type(0.0)
    one = v.dtype.type(1.0)
    for r in prange(rows):
        g = r // rows_per_group
        a_u = np.zeros(n, dtype=v.dtype)  # adjoint of the next step's pre-hold membrane
        a_i = np.zeros(n, dtype=v.dtype)  # adjoint of the current this step feeds forward
        g_z = np.zeros(n, dtype=v.dtype)
        # free[t, k]: 0 where neuron k was held at reset at step t (it spiked within
        # `refractory` steps before), else 1; found forward, used backward as a factor (no
        # branch in the loop below, so the compiler vectorises it).
        free = np.ones((t_steps, n), dtype=v.dtype)
        if spiking and refractory > 0:
            last = np.full(n, -refractory - 1, dtype=np.int64)
            for t in range(t_steps):
                for k in range(n):
                    if t - last[k] <= refractory:
                        free[t, k] = zero
                    if z[t, r, k] != zero:
                        last[k] = t
        for t in range(t_steps - 1, -1, -1):
            for k in range(n):
                a_i[k] = a_u[k] + decay_s * a_i[k]
                grad_drive[t, r, k] = a_i[k]
            if not spiking:  # a leaky integrator: V[t+1] = d_m V[t] + I[t], no reset
                for k in range(n):
                    a_u[k] = grad_v[t, r, k] + decay_m * a_u[k]
                continue
            for k in range(n):
                g_z[k] = grad_z[t, r, k]
            if recurrent:  # g_z += a_i @ W_rec
                for i in range(n):
                    a = a_i[i]
                    if a != zero:
                        for k in range(n):
                            g_z[k] += a * w_rec[g, i, k]
            for k in range(n):
                s = one / (beta * abs(v[t, r, k] - threshold) + one)
                keep = (one - z[t, r, k]) * decay_m
                a_u[k] = free[t, k] * (grad_v[t, r, k] + g_z[k] * (s * s) + keep * a_u[k])


def simulate(drive: Tensor, w_rec: Tensor | None, p: LIFModelParams) -> tuple[Tensor, Tensor]:
    """:func:`insitu.algorithms.lif_graph.simulate` as one compiled loop; check
    :func:`supported` first."""
    d = _numpy_rows(drive)
    c = _constants(p, d.dtype)
    vs = np.empty_like(d)
    zs = np.empty_like(d)
    rows_per_group, w_t = _recurrent_layout(drive, w_rec, d)
    if w_rec is not None:
        w_t = np.ascontiguousarray(np.swapaxes(w_t, 1, 2))  # row j: where neuron j projects
    sync_threads()
    _forward(
        d,
        w_t,
        rows_per_group,
        w_rec is not None,
        c.decay_m,
        c.decay_s,
        c.rest,
        c.leak,
        c.threshold,
        c.reset,
        c.refractory_steps,
        c.spiking,
        vs,
        zs,
    )
    return _as_tensor(vs, drive), _as_tensor(zs, drive)


def backward_through_time(
    grad_v: Tensor, grad_z: Tensor, v: Tensor, z: Tensor, w_rec: Tensor | None, p: LIFModelParams
) -> tuple[Tensor, Tensor | None]:
    """:func:`insitu.algorithms.lif_graph.backward_through_time` as one compiled loop; check
    :func:`supported` first."""
    dtype = v.dtype
    gv, gz = _numpy_rows(grad_v.to(dtype)), _numpy_rows(grad_z.to(dtype))
    vv, zz = _numpy_rows(v), _numpy_rows(z)
    c = _constants(p, vv.dtype)
    grad_drive = np.empty(vv.shape, dtype=vv.dtype)
    rows_per_group, w = _recurrent_layout(v, w_rec, vv)
    recurrent = w_rec is not None and c.spiking
    sync_threads()
    _backward(
        gv,
        gz,
        vv,
        zz,
        w,
        rows_per_group,
        recurrent,
        c.decay_m,
        c.decay_s,
        c.threshold,
        c.beta,
        c.refractory_steps,
        c.spiking,
        grad_drive,
    )
    out = _as_tensor(grad_drive, v)
    if w_rec is None:
        return out, None
    if not c.spiking:
        return out, None
    # dL/dW_rec[g] = sum over steps and the group's rows of a_i (x) z: one matrix product.
    t_steps, n = v.shape[0], v.shape[-1]
    groups = w.shape[0]
    a = out.reshape(t_steps, groups, -1, n).permute(1, 3, 0, 2).reshape(groups, n, -1)
    s = z.to(dtype).reshape(t_steps, groups, -1, n).permute(1, 0, 2, 3).reshape(groups, -1, n)
    return out, (a @ s).reshape(w_rec.shape)


def _recurrent_layout(trace: Tensor, w_rec: Tensor | None, rows: Array) -> tuple[int, Array]:
    """Rows per recurrent group and the weights as (groups, N, N) (an empty stand-in if
    there are none)."""
    n = trace.shape[-1]
    if w_rec is None:
        return max(1, rows.shape[1]), np.zeros((1, 1, 1), dtype=rows.dtype)
    w = w_rec.detach().reshape(-1, n, n).numpy()
    return max(1, rows.shape[1] // w.shape[0]), w


def _as_tensor(a: Array, like: Tensor) -> Tensor:
    return torch.from_numpy(a).view(like.shape)
