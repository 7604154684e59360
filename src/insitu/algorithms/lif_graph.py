"""The software model of a LIF layer as a differentiable graph, and the in-the-loop injection.

The model is the chip's dynamics (:mod:`insitu.hardware.spiking`) with ideal, uniform neurons:
nominal time constants, threshold, leak and reset, no noise, an ideal ADC. Per step t::

    V[t] = d_m * Vr[t-1] + rest + I[t-1]      (V held at ``reset`` while refractory)
    z[t] = V[t] >= threshold                  (not while refractory)
    I[t] = d_s * I[t-1] + D[t] + W_rec z[t]   (D: feed-forward drive, W x[t])
    Vr[t] = reset if z[t] else V[t]

The backward pass is written out by hand (backpropagation through time over the 2-state
recursion) instead of being recorded op by op, which keeps training fast. Spikes are
differentiated with the SuperSpike fast-sigmoid surrogate ``1 / (beta |V - threshold| + 1)^2``
(Zenke & Ganguli 2018, as in Cramer et al., PNAS 2022); the reset is not differentiated.

**Injection** (hardware in the loop, Cramer et al. 2022): given the chip's measured membrane
trace and spikes, the layer's forward value *is* the measurement, and its backward pass is the
model's, with every local derivative (surrogate, reset gate, refractory gate) evaluated at the
measured values. This equals a step-by-step graph in which every step's membrane and spikes are
replaced by their measured values through an identity whose gradient is the model's; the
values themselves enter the graph through that identity
(:func:`insitu.algorithms.injection.measured_forward_model_backward`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from insitu.algorithms import lif_kernels
from insitu.hardware.backend import Implementation
from insitu.hardware.lif import (
    LIFParams,
    LIFState,
    lif_initial_state,
    lif_step,
    surrogate_derivative,
)
from insitu.hardware.observables import Observables
from insitu.hardware.synapse_kernels import Events
from insitu.hardware.synapses import SynapticDrive, TorchSynapses, synaptic_backend


class LIFModelParams(NamedTuple):
    """The nominal neuron the model assumes (time in steps, voltages normalised)."""

    decay_m: float  # exp(-1/tau_m)
    decay_s: float  # exp(-1/tau_s)
    threshold: float
    leak: float
    reset: float
    refractory_steps: int
    surrogate_beta: float  # steepness of the surrogate derivative (1/voltage)
    spiking: bool  # False: a non-spiking leaky-integrator readout


def refractory_mask(z: Tensor, steps: int) -> Tensor:
    """1.0 where a neuron is held after a spike in one of the ``steps`` previous steps.

    ``z``: (T, ...) spikes; returns the same shape.
    """
    held = torch.zeros_like(z)
    for k in range(1, min(steps, z.shape[0] - 1) + 1):
        held[k:] = torch.maximum(held[k:], z[:-k])
    return held


def step_parameters(p: LIFModelParams) -> LIFParams:
    """The model's nominal neuron as the parameters of :func:`insitu.hardware.lif.lif_step`."""
    return LIFParams(
        decay_m=p.decay_m,
        decay_s=p.decay_s,
        leak=p.leak,
        threshold=p.threshold,
        reset=p.reset,
        refractory_steps=p.refractory_steps,
        spiking=p.spiking,
    )


def simulate(drive: Tensor, w_rec: Tensor | None, p: LIFModelParams) -> tuple[Tensor, Tensor]:
    """The model's forward pass: membrane (before reset) and spikes, each (T, *batch, N).

    ``drive``: (T, *batch, N) feed-forward input current per step (e.g. batch = instances,
    samples); ``w_rec``: (..., N, N) recurrent weights (row = receiving neuron), broadcast over
    the batch dimensions (e.g. (instances, N, N)), or None.

    The torch reference; :class:`KernelLIFModel` runs the same loop compiled.
    """
    step_params = step_parameters(p)
    state = lif_initial_state(step_params, tuple(drive.shape[1:]), drive.dtype, drive.device)
    vs = torch.empty_like(drive)
    zs = torch.zeros_like(drive)
    w_rec_t = None if w_rec is None else w_rec.transpose(-1, -2)
    for t in range(drive.shape[0]):
        z, vs[t], state = lif_step(drive[t], state, step_params)
        if not p.spiking:
            continue
        zs[t] = z
        if w_rec_t is not None:
            rec = torch.matmul(z, w_rec_t)  # the recurrent synapses feed the next step
            state = LIFState(state.membrane, state.current + rec, state.refractory)
    return vs, zs


def backward_through_time(
    grad_v: Tensor,
    grad_z: Tensor,
    v: Tensor,
    z: Tensor,
    w_rec: Tensor | None,
    p: LIFModelParams,
) -> tuple[Tensor, Tensor | None]:
    """Adjoints of the drive (T, *batch, N) and of ``w_rec``, given the output gradients and the
    membrane and spikes at which to evaluate the local derivatives.

    The torch reference; :class:`KernelLIFModel` runs the same loop compiled.
    """
    t_steps = v.shape[0]
    grad_drive = torch.empty_like(v)
    a_u = torch.zeros_like(v[0])  # adjoint of the next step's pre-hold membrane
    a_i = torch.zeros_like(v[0])  # adjoint of the current this step feeds forward
    if not p.spiking:  # a leaky integrator: V[t+1] = d_m V[t] + I[t], no reset
        for t in range(t_steps - 1, -1, -1):
            a_i = torch.add(a_u, a_i, alpha=p.decay_s)
            grad_drive[t] = a_i
            a_u = torch.add(grad_v[t], a_u, alpha=p.decay_m)
        return grad_drive, None
    free = 1.0 - refractory_mask(z, p.refractory_steps) if p.refractory_steps else None
    # What carries a_u back one step: decay_m through the (undifferentiated) reset, then the
    # refractory hold. Computed for all steps at once; the loop keeps only the recursion.
    keep = (1.0 - z).mul_(p.decay_m)
    surrogate = surrogate_derivative(v, p.threshold, p.surrogate_beta)
    if free is not None:
        keep.mul_(free)
        surrogate.mul_(free)
    if w_rec is None:
        # a_u[t] = (grad_v[t] + grad_z[t] * surrogate[t]) * free[t] + keep[t] * a_u[t+1]
        drive_u = torch.addcmul(grad_v if free is None else grad_v * free, grad_z, surrogate)
        for t in range(t_steps - 1, -1, -1):
            a_i = torch.add(a_u, a_i, alpha=p.decay_s)
            grad_drive[t] = a_i
            a_u = torch.addcmul(drive_u[t], keep[t], a_u)
        return grad_drive, None
    grad_w_rec = torch.zeros_like(w_rec)
    for t in range(t_steps - 1, -1, -1):
        a_i = torch.add(a_u, a_i, alpha=p.decay_s)
        grad_drive[t] = a_i
        # The layer's own spikes feed its current in the same step (recurrent synapses).
        g_z = grad_z[t] + torch.matmul(a_i, w_rec)
        grad_w_rec += torch.matmul(a_i.transpose(-1, -2), z[t])
        direct = grad_v[t] if free is None else grad_v[t] * free[t]
        a_u = direct + g_z * surrogate[t] + keep[t] * a_u
    return grad_drive, grad_w_rec


class LIFModel(Protocol):
    """The model's loops through time: :func:`simulate` and :func:`backward_through_time`."""

    def simulate(
        self, drive: Tensor, w_rec: Tensor | None, p: LIFModelParams
    ) -> tuple[Tensor, Tensor]:
        """:func:`simulate`."""
        ...

    def backward_through_time(
        self,
        grad_v: Tensor,
        grad_z: Tensor,
        v: Tensor,
        z: Tensor,
        w_rec: Tensor | None,
        p: LIFModelParams,
    ) -> tuple[Tensor, Tensor | None]:
        """:func:`backward_through_time`."""
        ...


class TorchLIFModel:
    """The reference: the torch loops of this module, any device."""

    def simulate(
        self, drive: Tensor, w_rec: Tensor | None, p: LIFModelParams
    ) -> tuple[Tensor, Tensor]:
        return simulate(drive, w_rec, p)

    def backward_through_time(
        self,
        grad_v: Tensor,
        grad_z: Tensor,
        v: Tensor,
        z: Tensor,
        w_rec: Tensor | None,
        p: LIFModelParams,
    ) -> tuple[Tensor, Tensor | None]:
        return backward_through_time(grad_v, grad_z, v, z, w_rec, p)


class KernelLIFModel:
    """The compiled loops (:mod:`insitu.algorithms.lif_kernels`): one loop over time per
    sample, in parallel over the samples. Traces the kernels do not serve (see
    :func:`insitu.algorithms.lif_kernels.supported`) take the reference."""

    def simulate(
        self, drive: Tensor, w_rec: Tensor | None, p: LIFModelParams
    ) -> tuple[Tensor, Tensor]:
        if lif_kernels.supported(drive, w_rec):
            return lif_kernels.simulate(drive, w_rec, p)
        return simulate(drive, w_rec, p)

    def backward_through_time(
        self,
        grad_v: Tensor,
        grad_z: Tensor,
        v: Tensor,
        z: Tensor,
        w_rec: Tensor | None,
        p: LIFModelParams,
    ) -> tuple[Tensor, Tensor | None]:
        if lif_kernels.supported(v, w_rec):
            return lif_kernels.backward_through_time(grad_v, grad_z, v, z, w_rec, p)
        return backward_through_time(grad_v, grad_z, v, z, w_rec, p)


class LIFBackend(NamedTuple):
    """What a LIF layer of the software model runs on: its loops through time and the synaptic
    drive feeding it."""

    model: LIFModel
    synapses: SynapticDrive


TORCH_LIF = LIFBackend(TorchLIFModel(), TorchSynapses())
"""The torch reference of both."""


def lif_backend(implementation: Implementation) -> LIFBackend:
    """The software model's ``implementation`` (chosen by
    :func:`insitu.hardware.backend.choose` when the model is built)."""
    if implementation is Implementation.KERNEL:
        return LIFBackend(KernelLIFModel(), synaptic_backend(implementation))
    return TORCH_LIF


def _rows(inp: Tensor, instances: int) -> Tensor:
    """Time-major spikes (T, B, in) or (T, I, B, in) as rows (T*B, in) or (I, T*B, in)."""
    if inp.dim() == 3:
        return inp.reshape(-1, inp.shape[-1])
    return inp.transpose(0, 1).reshape(instances, -1, inp.shape[-1])


def _time_major(rows: Tensor, t_steps: int) -> Tensor:
    """(I, T*B, N) -> (T, I, B, N), contiguous."""
    i_n, tb, n = rows.shape
    return rows.view(i_n, t_steps, tb // t_steps, n).transpose(0, 1).contiguous()


def layer_drive(
    inp: Tensor, w: Tensor, synapses: SynapticDrive, events: Events | None = None
) -> Tensor:
    """Synaptic drive (T, I, B, out) of time-major spikes ``inp`` through ``w`` (I, out, in);
    ``events``: ``synapses.events`` of ``inp``'s rows if already found."""
    return _time_major(synapses.drive(_rows(inp, w.shape[0]), w, events), inp.shape[0])


class _LIFLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        inp: Tensor,
        w: Tensor,
        w_rec: Tensor | None,
        p: LIFModelParams,
        measured_v: Tensor | None,
        measured_z: Tensor | None,
        backend: LIFBackend,
    ) -> tuple[Tensor, Tensor]:
        events = None
        if measured_v is None or measured_z is None:
            w_r = None if w_rec is None else w_rec.detach()
            # The input's events serve the drive now and the weight gradient later.
            synapses = backend.synapses
            events = synapses.events(_rows(inp.detach(), w.shape[0]), w)
            drive = layer_drive(inp.detach(), w.detach(), synapses, events)
            v, z = backend.model.simulate(drive, w_r, p)
        else:
            # The forward value is the measurement: the model's drive is never needed. Copied
            # time-major (the chip records time-last), as the backward loops read it.
            fmt = torch.contiguous_format
            v = measured_v.detach().clone(memory_format=fmt)
            z = measured_z.detach().clone(memory_format=fmt)
        ctx.save_for_backward(inp, w, v, z, w_rec)  # type: ignore[arg-type]  # None is allowed
        ctx.params = p  # type: ignore[attr-defined]
        ctx.events = events  # type: ignore[attr-defined]
        ctx.backend = backend  # type: ignore[attr-defined]
        return v, z

    @staticmethod
    def backward(ctx: Any, grad_v: Tensor | None, grad_z: Tensor | None) -> Any:
        inp, w, v, z, w_rec = ctx.saved_tensors
        gv = torch.zeros_like(v) if grad_v is None else grad_v
        gz = torch.zeros_like(z) if grad_z is None else grad_z
        backend: LIFBackend = ctx.backend
        grad_drive, grad_w_rec = backend.model.backward_through_time(
            gv, gz, v, z, w_rec, ctx.params
        )
        i_n, t_steps = w.shape[0], v.shape[0]
        rows = grad_drive.transpose(0, 1).reshape(i_n, -1, grad_drive.shape[-1])  # (I, T*B, out)
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = backend.synapses.weight_gradient(_rows(inp, i_n), rows, ctx.events)
        grad_inp = None
        if ctx.needs_input_grad[0]:
            grad_inp = _time_major(torch.matmul(rows, w), t_steps)
            if inp.dim() == 3:  # one input shared by every instance
                grad_inp = grad_inp.sum(1)
        return grad_inp, grad_w, grad_w_rec, None, None, None, None


def lif_layer(
    inp: Tensor,
    w: Tensor,
    p: LIFModelParams,
    w_rec: Tensor | None = None,
    measured: Observables | tuple[Tensor, Tensor] | None = None,
    backend: LIFBackend = TORCH_LIF,
) -> tuple[Tensor, Tensor]:
    """Membrane and spikes, each (T, I, B, N), of a LIF layer fed spikes ``inp`` (T, B, in)
    (shared by every instance) or (T, I, B, in) through weights ``w`` (I, N, in).

    Without ``measured`` the model simulates; with ``measured`` (membrane and spikes, time-major,
    from the chip) the model is linearised there: it does not simulate, its values are the
    measured ones and its local derivatives are evaluated at them: the in-the-loop injection,
    measured values forward and the model's gradient backward, in one graph node.
    Both outputs carry gradients back into ``inp``, ``w`` (and ``w_rec``): the spikes through
    the surrogate derivative. ``backend``: the loops and synaptic drive to run on (the torch
    reference unless given; a model makes ``lif_backend(choose(...))`` once when built).
    """
    mv, mz = (None, None) if measured is None else (measured[0], measured[1])
    shape = (inp.shape[0], w.shape[0], inp.shape[-2], w.shape[1])
    if mv is not None and (tuple(mv.shape) != shape or mz is None or tuple(mz.shape) != shape):
        raise ValueError(
            f"measured traces have shapes {tuple(mv.shape)} and "
            f"{None if mz is None else tuple(mz.shape)}; expected {shape} each"
        )
    v, z = _LIFLayer.apply(inp, w, w_rec, p, mv, mz, backend)
    return v, z
