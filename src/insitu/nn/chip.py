"""Layers of a spiking chip as an ``nn.Module``, trained in the loop behind any torch front-end.

After Cramer et al., "Surrogate gradients for analog neuromorphic computing", PNAS 119,
e2109194119 (2022): the forward pass runs on the chip (fixed-pattern mismatch, temporal noise,
8-bit membrane ADC); its measured membranes and spikes are injected into the software model's
graph (measured values forward, the model's surrogate gradient, linearised at the measured
values, backward: :func:`insitu.algorithms.lif_graph.lif_layer`). The gradient reaches the
model's float weights and, through the input spikes, whatever torch front-end feeds the chip,
so one torch optimizer trains both::

    front = nn.Sequential(PerStep(nn.Conv2d(1, 4, 3)), PerStep(nn.Flatten()), LIF(params))
    chip = ChipSNN(SpikingChipConfig.from_sizes((144, 32, 10), time_steps=20), instances=2)
    readout = chip(front(images))  # (instances, batch, time, classes), measured on the chip
    optimizer = torch.optim.Adam([*front.parameters(), *chip.parameters()])

The chip is driven only through its protocol: before a run the float weights are scaled,
rounded and clipped to signed 6-bit integers (:func:`insitu.algorithms.spiking_model.
to_integer_weights`, with the trainers' scale) and written with ``write_weights`` whenever they
changed; ``run`` returns the recording. The chip's input must be spikes (0 or 1): a front-end
that emits currents needs a spiking layer (:class:`insitu.nn.LIF`) before the chip.

This module is the one place in :mod:`insitu.nn` that uses :mod:`insitu.algorithms`: the
injection and the software model of the spiking trainers, so both train the same way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from insitu.algorithms.spiking_model import SpikingNetwork
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.errors import ConfigError
from insitu.hardware.backend import BackendChoice
from insitu.hardware.events import EventLog
from insitu.hardware.spiking import SpikingChip, SpikingChipConfig

__all__ = ["ChipSNN"]


class ChipSNN(nn.Module):
    """``instances`` spiking chips of ``config``'s layers with the model's float weights.

    Input: spikes (B, T, inputs) shared by every chip, or (instances, B, T, inputs), with
    ``T = config.time_steps``, values 0.0 or 1.0. Output: the readout membrane (the last
    layer's), (instances, B, T, outputs), in the chip's voltage units: with ``in_the_loop``
    (the default) the chip's measured values carrying the model's gradient; otherwise the
    software model alone (nominal neurons, float weights: train in software, then set
    ``in_the_loop`` to evaluate the same weights deployed on the chip).

    Args:
        config: the chip's layers, neurons (mismatch: ``NeuronParams.with_mismatch``) and steps.
        instances: chips with their own mismatch draw, trained at once.
        seed: the weights' initial draw; the chip is fabricated from ``seed + 1`` (as the
            spiking trainers do, so a seed meets the same chip).
        options: the spiking trainers' options; used here: ``surrogate_beta`` and ``init_scale``.
        device: where the chip and the weights live.
        backend: ``auto``, ``torch`` or ``kernel`` for the chip and the model.

    Float weights are parameters ``weights[k]`` (instances, out, in) (and ``recurrent[str(k)]``
    for recurrent layers), in voltage per spike; ``scale[k]`` is what one integer step is worth.
    Weights beyond what a synapse holds are clipped in place before the next write.
    """

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        options: SpikingOptions | dict[str, Any] | None = None,
        device: torch.device | str = "cpu",
        backend: BackendChoice = "auto",
    ) -> None:
        super().__init__()
        if int(instances) != instances or instances < 1:
            raise ConfigError(f"instances = {instances!r}; need an integer >= 1")
        opts = options if isinstance(options, SpikingOptions) else SpikingOptions.parse(options)
        dev = torch.device(device)
        gen = torch.Generator(device=dev).manual_seed(seed)
        self.config = config
        self.in_the_loop = True
        self.network = SpikingNetwork(
            config, instances=instances, options=opts, gen=gen, device=dev, backend=backend
        )
        self.chip = SpikingChip(
            config, instances=instances, seed=seed + 1, device=dev, backend=backend
        )
        # The network's tensors become parameters (same objects, so its forward uses them).
        self.weights = nn.ParameterList(nn.Parameter(w.detach()) for w in self.network.weights)
        self.network.weights = list(self.weights)
        self.recurrent = nn.ParameterDict(
            {
                str(k): nn.Parameter(r.detach())
                for k, r in enumerate(self.network.recurrent)
                if r is not None
            }
        )
        self.network.recurrent = [self.recurrent.get(str(k)) for k in range(len(config.layers))]
        # What the host last wrote (its own copy: the chip's store is never read back).
        self._written: dict[tuple[int, bool], Tensor] = {}

    @property
    def instances(self) -> int:
        """Chips trained at once."""
        return self.chip.instances

    @property
    def scale(self) -> list[float]:
        """Per layer, the voltage one integer weight step is worth (the nominal synapse gain)."""
        return list(self.network.scale)

    @property
    def log(self) -> EventLog:
        """The chip's event log (weight writes, runs, ADC samples, transfers)."""
        return self.chip.log

    @torch.no_grad()
    def write_weights(self) -> int:
        """Write every weight matrix whose integer values changed since the last write; clip
        float weights beyond what a synapse holds first. Returns the number of writes."""
        net = self.network
        n = len(net.weights)
        held = [(w, k % n) for k, w in enumerate([*net.weights, *net.recurrent]) if w is not None]
        if any(not torch.equal(net.clip(w, k), w) for w, k in held):
            net.clip_()  # in place only when needed: a graph still to be differentiated stays valid
        writes = 0
        for k, lay in enumerate(self.config.layers):
            for recurrent in (False, True) if lay.recurrent else (False,):
                ints = self.network.integer_weights(k, recurrent)
                old = self._written.get((k, recurrent))
                if old is not None and torch.equal(old, ints):
                    continue
                self.chip.write_weights(k, ints, recurrent=recurrent)
                self._written[(k, recurrent)] = ints
                writes += 1
        return writes

    def run(self, spikes: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The readout membrane (instances, B, T, outputs) and every hidden layer's spikes
        (instances, B, T, neurons), as :meth:`forward` gives them (for spike-count penalties)."""
        x = self._check(spikes)
        recording = None
        if self.in_the_loop:
            self.write_weights()
            recording = self.chip.run(x)
        v, hidden = self.network.forward(x, recording)  # time-major (T, I, B, N)
        return v.permute(1, 2, 0, 3), [z.permute(1, 2, 0, 3) for z in hidden]

    def forward(self, spikes: Tensor) -> Tensor:
        return self.run(spikes)[0]

    def _check(self, x: Tensor) -> Tensor:
        """``x`` if it is spikes of the chip's input shape; a one-line ConfigError otherwise."""
        steps, n_in, i_n = self.config.time_steps, self.config.inputs, self.instances
        shared = x.dim() == 3
        own = x.dim() == 4 and x.shape[0] == i_n
        if not (shared or own) or x.shape[-2] != steps or x.shape[-1] != n_in:
            raise ConfigError(
                f"chip input has shape {tuple(x.shape)}; expected spikes (batch, {steps}, {n_in}) "
                f"or ({i_n}, batch, {steps}, {n_in})"
            )
        if not x.is_floating_point():
            x = x.to(torch.float32)
        if bool(((x != 0) & (x != 1)).any()):
            raise ConfigError(
                "chip input must be spikes (0 or 1): put a spiking layer (insitu.nn.LIF) after "
                "a front-end that emits currents"
            )
        return x

    # The chip (its mismatch, stored weights, log, generator) travels with the module's state.
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "chip": self.chip.state_dict(),
            "written": {f"{k}:{int(r)}": w.clone() for (k, r), w in self._written.items()},
            "in_the_loop": self.in_the_loop,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.chip.load_state_dict(state["chip"])
        self._written = {}
        for key, w in state["written"].items():
            k, r = key.split(":")
            self._written[(int(k), bool(int(r)))] = w.clone()
        self.in_the_loop = bool(state["in_the_loop"])
