"""The software model of a spiking chip: float weights per chip instance, nominal LIF neurons
(the model side of Cramer et al., PNAS 119, e2109194119, 2022). In the loop its layers take the
chip's measured observables forward and give the model's gradients backward."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from insitu.algorithms.injection import measured_layer
from insitu.algorithms.lif_graph import LIFModelParams, layer_drive, lif_backend, lif_layer
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.hardware.backend import BackendChoice, choose
from insitu.hardware.lif import nominal_params
from insitu.hardware.spiking import WEIGHT_LIMIT, Recording, SpikingChipConfig


def model_params(config: SpikingChipConfig, layer: int, beta: float) -> LIFModelParams:
    """The nominal neuron of ``layer`` as the model sees it: no mismatch, no noise."""
    n = config.neuron_params(layer)
    step = nominal_params(n, spiking=config.layers[layer].spiking)  # one place for the decays
    return LIFModelParams(
        decay_m=float(step.decay_m),
        decay_s=float(step.decay_s),
        threshold=n.threshold,
        leak=n.leak,
        reset=n.reset,
        refractory_steps=int(n.refractory_steps),
        surrogate_beta=beta / (n.threshold - n.leak),
        spiking=step.spiking,
    )


def to_integer_weights(w: Tensor, scale: float) -> Tensor:
    """Model weights (voltage per spike) as 6-bit signed synapse values: w / scale rounded and
    clipped to -63..63 (int8)."""
    return (w / scale).round().clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT).to(torch.int8)


class SpikingNetwork:
    """The software model: float weights per chip instance, nominal neurons.

    Weights are in voltage units (the membrane step one spike causes); ``scale[k]`` is the
    nominal synapse gain of layer k, the voltage one integer weight step is worth on the chip.
    """

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int,
        options: SpikingOptions,
        gen: torch.Generator,
        device: torch.device,
        backend: BackendChoice = "auto",
    ) -> None:
        self.config = config
        self.options = options
        # Torch loops or compiled kernels, chosen once (see insitu.hardware.backend.choose).
        self.backend = lif_backend(choose(device, torch.float32, backend))
        self.params = [
            model_params(config, k, options.surrogate_beta) for k in range(len(config.layers))
        ]
        self.scale = [config.neuron_params(k).synapse_gain for k in range(len(config.layers))]
        sizes = config.sizes
        self.weights: list[Tensor] = []
        self.recurrent: list[Tensor | None] = []
        for k, lay in enumerate(config.layers):
            n_in, n_out = sizes[k], sizes[k + 1]
            span = config.neuron_params(k).threshold - config.neuron_params(k).leak
            # Scaled to the fan-in, but well inside what the synapses hold (no clipped init).
            limit = WEIGHT_LIMIT * self.scale[k]
            std = min(options.init_scale * span / math.sqrt(n_in), limit / 3)
            w = torch.randn((instances, n_out, n_in), generator=gen, device=device) * std
            self.weights.append(self.clip(w, k).requires_grad_(True))
            if lay.recurrent:
                std_r = min(options.init_scale * span / math.sqrt(n_out), limit / 3)
                r = torch.randn((instances, n_out, n_out), generator=gen, device=device) * std_r
                self.recurrent.append(self.clip(r, k).requires_grad_(True))
            else:
                self.recurrent.append(None)

    def parameters(self) -> list[Tensor]:
        """Every trainable tensor."""
        return [*self.weights, *(r for r in self.recurrent if r is not None)]

    def clip(self, w: Tensor, layer: int) -> Tensor:
        """``w`` limited to what a 6-bit synapse can hold."""
        limit = WEIGHT_LIMIT * self.scale[layer]
        return w.clamp(-limit, limit)

    @torch.no_grad()
    def clip_(self) -> None:
        """Clip every weight in place after an optimiser step."""
        for k, w in enumerate(self.weights):
            w.copy_(self.clip(w, k))
            r = self.recurrent[k]
            if r is not None:
                r.copy_(self.clip(r, k))

    def integer_weights(self, layer: int, recurrent: bool = False) -> Tensor:
        """Layer ``layer``'s weights as the chip stores them, (instances, out, in) int8."""
        w = self.recurrent[layer] if recurrent else self.weights[layer]
        assert w is not None
        return to_integer_weights(w.detach(), self.scale[layer])

    def forward(self, x: Tensor, recording: Recording | None = None) -> tuple[Tensor, list[Tensor]]:
        """Readout membrane (T, I, B, C) and hidden spikes [(T, I, B, N)] for input spikes ``x``
        (B, T, inputs) or (I, B, T, inputs).

        With ``recording`` (the chip's measurement for the same input), every layer's forward
        values are the measured ones and the gradients the model's at them.
        """
        inp = _time_major(x)
        hidden: list[Tensor] = []
        v = inp
        for k, w in enumerate(self.weights):
            measured = None if recording is None else measured_layer(recording, k)
            # With the measured observables, lif_layer's forward values are the measurements and
            # its backward the model's, linearised at them: the injection (no second identity
            # on top, which cost a copy of every trace, about a tenth of a training step).
            v, z = lif_layer(inp, w, self.params[k], self.recurrent[k], measured, self.backend)
            if self.params[k].spiking:
                hidden.append(z)
            inp = z
        return v, hidden

    @torch.no_grad()
    def traces(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Every layer's membrane and spikes, each (T, I, B, N), simulated without a graph."""
        inp = _time_major(x)
        membranes, spikes = [], []
        for k, w in enumerate(self.weights):
            drive = layer_drive(inp, w, self.backend.synapses)
            v, inp = self.backend.model.simulate(drive, self.recurrent[k], self.params[k])
            membranes.append(v)
            spikes.append(inp)
        return membranes, spikes

    def simulate(self, x: Tensor) -> Tensor:
        """Readout membrane (T, I, B, C) without a graph (evaluation)."""
        return self.traces(x)[0][-1]


def _time_major(x: Tensor) -> Tensor:
    """Input spikes (B, T, F) -> (T, B, F), or (I, B, T, F) -> (T, I, B, F)."""
    return x.transpose(0, 1) if x.dim() == 3 else x.permute(2, 0, 1, 3)
