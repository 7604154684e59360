"""The spiking chip's time loop for one layer: membrane with mismatch, noise, refractory hold,
dead neurons, (optional) recurrent synapses and the membrane ADC.

Two implementations side by side behind :class:`LayerEmulation`: the torch reference
(:class:`TorchEmulation`, a dozen small tensor operations per time step; what runs on a GPU)
and the compiled CPU loop (:class:`KernelEmulation`, :mod:`insitu.hardware.spiking_kernels`),
which gives the same membranes and spikes for the same drive and noise. The dynamics are
those of :mod:`insitu.hardware.spiking`. :func:`insitu.hardware.backend.choose` picks one when
the chip is built; :func:`layer_emulation` makes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch
from torch import Tensor

from insitu.hardware import spiking_kernels
from insitu.hardware.backend import Implementation
from insitu.hardware.lif import LIFParams, LIFState, lif_initial_state, lif_step

if TYPE_CHECKING:
    from insitu.hardware.neurons import NeuronArray, NeuronParams


def adc_measure(v: Tensor, params: NeuronParams) -> Tensor:
    """Membrane voltages as the ADC reports them: clipped to ``adc_range``, quantised to
    ``2**adc_bits`` evenly spaced levels (both ends included), in voltage units."""
    if params.adc_bits is None:
        return v
    lo, hi = params.adc_range
    top = (1 << params.adc_bits) - 1
    step = (hi - lo) / top
    code = ((v - lo) / step).round_().clamp_(0, top)
    return code.mul_(step).add_(lo).clamp_(lo, hi)


class LayerEmulation(Protocol):
    """One layer's time loop on the chip."""

    def __call__(
        self,
        drive: Tensor,
        noise: Tensor | None,
        neurons: NeuronArray,
        params: NeuronParams,
        spiking: bool,
        refractory: int,
        rec_t: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """Spikes (0/1 float; all 0 for a non-spiking layer) and ADC-measured membrane (before
        reset), each (I, B, T, N).

        ``drive`` (I, B, T, N): the synaptic current each step adds; ``noise`` (T, I, B, N)
        membrane noise or None; ``neurons`` the layer's drawn parameters (I, N); ``params`` its
        nominal neuron (reset, ADC); ``refractory`` steps held at reset after a spike;
        ``rec_t`` (I, N, N) recurrent weights with the gain folded in, transposed (row j = the
        targets of neuron j), or None.
        """
        ...


class TorchEmulation:
    """The reference: one step of tensor operations per time step, any device."""

    def __call__(
        self,
        drive: Tensor,
        noise: Tensor | None,
        neurons: NeuronArray,
        params: NeuronParams,
        spiking: bool,
        refractory: int,
        rec_t: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        nrn = neurons
        i_n, b, t_steps, n = drive.shape
        drive = drive.permute(2, 0, 1, 3)  # (T, I, B, N): one slice per step
        step_params = LIFParams(
            decay_m=torch.exp(-1.0 / nrn.tau_m).unsqueeze(1),  # (I, 1, N)
            decay_s=torch.exp(-1.0 / nrn.tau_s).unsqueeze(1),
            leak=nrn.leak.unsqueeze(1),
            threshold=nrn.threshold.unsqueeze(1),
            reset=params.reset,
            refractory_steps=refractory,
            spiking=spiking,
            alive=nrn.alive.unsqueeze(1),
        )
        state = lif_initial_state(step_params, (i_n, b, n), device=drive.device)
        vs: list[Tensor] = []
        zs: list[Tensor] = []
        for t in range(t_steps):
            z, v, state = lif_step(
                drive[t], state, step_params, noise=None if noise is None else noise[t]
            )
            vs.append(v)
            if not spiking:
                continue
            zs.append(z)
            if rec_t is not None:
                rec = torch.bmm(z, rec_t)  # the recurrent synapses feed the next step
                state = LIFState(state.membrane, state.current + rec, state.refractory)
        trace = adc_measure(torch.stack(vs, dim=2), params)
        if spiking:
            return torch.stack(zs, dim=2), trace
        return torch.zeros_like(trace), trace


class KernelEmulation:
    """The compiled loop (:func:`insitu.hardware.spiking_kernels.emulate_layer`): every
    (instance, sample) row's whole time loop at once, in parallel over the rows. A drive that
    is not float32 takes the reference."""

    def __init__(self) -> None:
        self._reference = TorchEmulation()

    def __call__(
        self,
        drive: Tensor,
        noise: Tensor | None,
        neurons: NeuronArray,
        params: NeuronParams,
        spiking: bool,
        refractory: int,
        rec_t: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        if drive.dtype != torch.float32:
            return self._reference(drive, noise, neurons, params, spiking, refractory, rec_t)
        nrn, p = neurons, params
        trace, z_out = spiking_kernels.emulate_layer(
            drive,
            noise,
            torch.exp(-1.0 / nrn.tau_m),
            torch.exp(-1.0 / nrn.tau_s),
            nrn.leak,
            nrn.threshold,
            nrn.alive,
            p.reset,
            refractory,
            spiking,
            rec_t,
            p.adc_bits,
            p.adc_range,
        )
        return z_out, trace


def layer_emulation(implementation: Implementation) -> LayerEmulation:
    """The chip's time loop ``implementation``."""
    if implementation is Implementation.KERNEL:
        return KernelEmulation()
    return TorchEmulation()
