"""Spiking layers as ``nn.Module``s: thin sugar over :func:`insitu.hardware.lif.lif_step`.

Software models of LIF neurons that compose with any torch front-end, e.g. a convolution run
on every time step feeding a spiking layer::

    net = nn.Sequential(
        PerStep(nn.Conv2d(1, 4, 3)),  # (B, T, 1, 8, 8) -> (B, T, 4, 6, 6)
        PerStep(nn.Flatten()),        # -> (B, T, 144)
        SpikingLinear(144, 32, nominal_params(NeuronParams())),
        SpikingLinear(32, 10, nominal_params(NeuronParams(), spiking=False)),
    )

Tensors are batch first and time second, (B, T, ...). Time is in steps, voltages in the chip's
normalised units, currents in voltage units per step (see :mod:`insitu.hardware.lif`). Spikes
are differentiated with the SuperSpike surrogate of the software model
(:func:`insitu.hardware.lif.superspike`); the reset and refractory hold are not differentiated,
so the gradients equal those of :func:`insitu.algorithms.lif_graph.lif_layer`'s hand-written
backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from insitu.hardware.lif import (
    LIFParams,
    lif_initial_state,
    lif_step,
    nominal_params,
    superspike,
)

__all__ = ["LIF", "PerStep", "SpikingLinear", "nominal_params"]


class LIF(nn.Module):
    """A layer of LIF neurons fed input currents (B, T, N) (voltage units per step).

    Returns spikes (B, T, N) (0.0/1.0 with a surrogate gradient), or the membrane (B, T, N)
    for a non-spiking leaky integrator (``params.spiking`` False: a readout). ``membrane``
    also returns the membrane (before reset) of a spiking layer: ``(spikes, membrane)``.

    ``surrogate_beta``: steepness of the SuperSpike derivative per threshold-to-leak voltage
    (the software model's convention; 10 by default).
    """

    def __init__(self, params: LIFParams, surrogate_beta: float = 10.0) -> None:
        super().__init__()
        self.params = params
        span = float(params.threshold) - float(params.leak)
        self.spike_fn = superspike(surrogate_beta / span)

    def run(self, current: Tensor) -> tuple[Tensor, Tensor]:
        """Spikes and membrane (before reset), each (B, T, N), for ``current`` (B, T, N)."""
        state = lif_initial_state(
            self.params, (current.shape[0], current.shape[2]), current.dtype, current.device
        )
        zs: list[Tensor] = []
        vs: list[Tensor] = []
        for t in range(current.shape[1]):
            z, v, state = lif_step(current[:, t], state, self.params, spike_fn=self.spike_fn)
            zs.append(z)
            vs.append(v)
        return torch.stack(zs, dim=1), torch.stack(vs, dim=1)

    def forward(self, current: Tensor) -> Tensor:
        spikes, membrane = self.run(current)
        return spikes if self.params.spiking else membrane


class SpikingLinear(nn.Module):
    """Synapses (a weight matrix, voltage units per input spike) feeding a :class:`LIF` layer.

    Input (B, T, in) spikes or any signal; output (B, T, out) as :class:`LIF`'s.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        params: LIFParams,
        surrogate_beta: float = 10.0,
    ) -> None:
        super().__init__()
        self.synapses = nn.Linear(in_features, out_features, bias=False)
        self.neurons = LIF(params, surrogate_beta)

    @property
    def weight(self) -> Tensor:
        """(out, in) synaptic weights."""
        return self.synapses.weight

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.neurons(self.synapses(x))
        return out


class PerStep(nn.Module):
    """Runs ``module`` on every time step of a (B, T, ...) tensor (batch and time merged), so a
    frame-wise front-end (convolution, flatten, pooling) feeds a spiking layer."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        out: Tensor = self.module(x.reshape(b * t, *x.shape[2:]))
        return out.reshape(b, t, *out.shape[1:])
