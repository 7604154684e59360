"""One step of a current-based leaky integrate-and-fire neuron, as a pure torch function.

The per-step physics of every LIF time loop in insitu lives here once: the chip's emulation
(:class:`insitu.hardware.lif_emulation.TorchEmulation`, with per-neuron mismatched parameters,
temporal noise and dead neurons) and the software model
(:func:`insitu.algorithms.lif_graph.simulate`, with nominal scalar parameters) both call
:func:`lif_step` once per time step; the compiled kernels restate the same step.

Time is counted in steps (one step = one ADC sample period on the chip); voltages are in the
chip's normalised voltage units (threshold 1, leak and reset 0 by default); a current is the
voltage it adds to the membrane per step. Per step, with ``d_m = exp(-1/tau_m)`` and
``d_s = exp(-1/tau_s)``::

    V  = d_m * V_prev + leak * (1 - d_m) + I_prev  (+ noise)
    V  = reset                 while refractory (held after a spike)
    z  = H(V - threshold)      (not while refractory, never for a dead neuron)
    I  = d_s * I_prev + input_current
    V' = reset if z else V     (the membrane the next step starts from)

The step returns ``z``, ``V`` (the membrane before the reset: what the chip's ADC samples) and
the new state. An input current given at step t moves the membrane from step t+1 on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # spiking.py builds its chip on this module
    from insitu.hardware.neurons import NeuronParams

__all__ = [
    "LIFParams",
    "LIFState",
    "SpikeFunction",
    "lif_initial_state",
    "lif_step",
    "nominal_params",
    "superspike",
    "surrogate_derivative",
]

Scalar = float | Tensor
"""A parameter given once for every neuron (float) or per neuron (a tensor broadcasting
against the state)."""


class LIFParams(NamedTuple):
    """The neuron's parameters; each a float (every neuron alike) or a tensor broadcasting
    against the state (per-neuron fixed-pattern mismatch).

    Attributes:
        decay_m: membrane decay per step, ``exp(-1/tau_m)`` with ``tau_m`` in steps
            (dimensionless, in (0, 1]).
        decay_s: synaptic current decay per step, ``exp(-1/tau_s)`` with ``tau_s`` in steps.
        leak: resting potential the membrane decays toward (voltage units).
        threshold: spike threshold (voltage units).
        reset: potential after a spike (voltage units).
        refractory_steps: steps the membrane is held at ``reset`` after a spike (0: none).
        spiking: False makes a non-spiking leaky integrator (no threshold, no reset).
        alive: bool tensor, False where a neuron never spikes (a dead comparator); None: all
            alive.
    """

    decay_m: Scalar
    decay_s: Scalar
    leak: Scalar
    threshold: Scalar
    reset: float
    refractory_steps: int = 0
    spiking: bool = True
    alive: Tensor | None = None


class LIFState(NamedTuple):
    """The neuron's state between steps, each tensor of the layer's shape (..., neurons).

    Attributes:
        membrane: membrane potential after the previous step's reset (voltage units).
        current: synaptic current that reaches the membrane in the next step (voltage units
            per step).
        refractory: int32 steps the neuron is still held at reset.
    """

    membrane: Tensor
    current: Tensor
    refractory: Tensor


SpikeFunction = Callable[[Tensor], Tensor]
"""Maps ``V - threshold`` to spikes (1.0 at or above 0, else 0.0), with whatever gradient a
training method wants (a surrogate derivative)."""


def surrogate_derivative(v: Tensor, threshold: float, beta: float) -> Tensor:
    """SuperSpike fast-sigmoid derivative ``1 / (beta |v - threshold| + 1)^2`` (Zenke & Ganguli
    2018), ``beta`` in 1/voltage units: the derivative a spike is given in training."""
    return (beta * (v - threshold).abs() + 1.0).reciprocal().square()


class _SuperSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, beta: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.beta = beta
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, 0.0, ctx.beta), None


def superspike(beta: float) -> SpikeFunction:
    """The spike as a function of ``V - threshold``: 1.0 at or above 0, else 0.0, with the
    SuperSpike surrogate derivative of steepness ``beta`` (1/voltage units) in the backward
    pass; for :func:`lif_step`'s ``spike_fn``."""

    def spike(x: Tensor) -> Tensor:
        out: Tensor = _SuperSpike.apply(x, beta)
        return out

    return spike


def lif_initial_state(
    params: LIFParams,
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> LIFState:
    """The state before the first step: membrane at ``leak``, no current, none refractory."""
    if isinstance(params.leak, Tensor):
        membrane = params.leak.expand(shape)
    else:
        membrane = torch.full(shape, params.leak, dtype=dtype, device=device)
    return LIFState(
        membrane,
        torch.zeros(shape, dtype=dtype, device=device),
        torch.zeros(shape, dtype=torch.int32, device=device),
    )


def lif_step(
    input_current: Tensor,
    state: LIFState,
    params: LIFParams,
    *,
    noise: Tensor | None = None,
    spike_fn: SpikeFunction | None = None,
) -> tuple[Tensor, Tensor, LIFState]:
    """One time step: ``(spikes, membrane_before_reset, new_state)``.

    ``input_current`` (..., N): the synaptic current this step adds (voltage units per step);
    ``noise`` (..., N): membrane noise added this step (voltage units) or None; ``spike_fn``:
    None for plain 0/1 spikes (no gradient), or a function of ``V - threshold`` whose backward
    pass is a surrogate derivative (the reset and the refractory hold are not differentiated).
    Spikes are 0.0/1.0 in the membrane's dtype (all 0 for a non-spiking neuron). A recurrent
    current caused by this step's spikes is added to ``new_state.current`` by the caller.
    """
    p = params
    rest = p.leak * (1.0 - p.decay_m)
    v = p.decay_m * state.membrane + rest + state.current
    if noise is not None:
        v = v + noise
    current = p.decay_s * state.current + input_current
    if not p.spiking:
        return torch.zeros_like(v), v, LIFState(v, current, state.refractory)
    held = None
    refractory = state.refractory
    if p.refractory_steps:
        held = state.refractory > 0
        v = torch.where(held, p.reset, v)
    fires = v >= p.threshold
    if p.alive is not None:
        fires = fires & p.alive
    if held is not None:
        fires = fires & ~held
        refractory = torch.where(fires, p.refractory_steps, refractory - held.to(torch.int32))
    if spike_fn is None:
        z = fires.to(v.dtype)
    else:
        z = spike_fn(v - p.threshold)
        gate = None if held is None else ~held
        if p.alive is not None:
            gate = p.alive if gate is None else gate & p.alive
        if gate is not None:
            z = z * gate.to(v.dtype)
    return z, v, LIFState(torch.where(fires, p.reset, v), current, refractory)


def nominal_params(neuron: NeuronParams, spiking: bool = True) -> LIFParams:
    """The nominal (mismatch-free) neuron of ``neuron`` as step parameters."""
    return LIFParams(
        decay_m=math.exp(-1.0 / neuron.tau_m),
        decay_s=math.exp(-1.0 / neuron.tau_s),
        leak=neuron.leak,
        threshold=neuron.threshold,
        reset=neuron.reset,
        refractory_steps=int(neuron.refractory_steps),
        spiking=spiking,
    )
