"""Surrogate-gradient training of spiking networks: in software, in the loop, and deployed.

After Cramer, Billaudelle, ..., Schemmel, Zenke, "Surrogate gradients for analog neuromorphic
computing", PNAS 119, e2109194119 (2022):

- ``snn-software``: the software model (ideal, uniform LIF neurons) trained alone by
  backpropagation through time with a surrogate spike derivative.
- ``in-the-loop``: every forward pass runs on the chip (mismatch, temporal noise, 8-bit ADC);
  the measured membrane traces and spikes are injected into the model's graph
  (:class:`insitu.hardware.observables.Observables` through
  :func:`insitu.algorithms.lif_graph.lif_layer`: measured values forward, the model linearised
  at them backward), gradients come from the model, and the
  updated weights are scaled, rounded and clipped to 6 bit + sign and written back.
- ``deploy``: trained like ``snn-software``, evaluated by writing the weights to the chip.

The loss is the NLL of a softmax over the readout's maximum over time (or its sum over time,
for SHD), plus an L2 penalty on the readout's amplitude and an upper-bound penalty on each hidden
neuron's spike count per sample. The paper names both penalties; their exact forms and weights
here are this project's choices (options).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import torch
from torch import Tensor

from insitu.algorithms.spiking_model import SpikingNetwork
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.errors import DivergenceError
from insitu.hardware.events import EventLog
from insitu.hardware.spiking import SpikingChip, SpikingChipConfig


def readout_scores(v_out: Tensor, options: SpikingOptions) -> Tensor:
    """Class scores (I, B, C) from the readout membrane (T, I, B, C)."""
    if options.readout == "max":
        return v_out.amax(dim=0)
    return v_out.sum(dim=0) / options.sum_scale


def spiking_loss(
    v_out: Tensor, hidden: list[Tensor], y: Tensor, options: SpikingOptions
) -> tuple[Tensor, Tensor]:
    """Total loss (summed over instances, so each instance gets its own gradient) and the per
    instance loss (I,) for logging."""
    scores = readout_scores(v_out, options)
    logp = torch.log_softmax(options.logit_scale * scores, dim=-1)
    nll = -logp.gather(-1, y.view(1, -1, 1).expand(scores.shape[0], -1, 1)).squeeze(-1)
    per_instance = nll.mean(dim=1)
    if options.readout_penalty:
        per_instance = per_instance + options.readout_penalty * v_out.amax(0).square().mean((1, 2))
    if options.rate_penalty:
        for z in hidden:
            excess = (z.sum(0) - options.rate_limit).clamp(min=0.0)
            per_instance = per_instance + options.rate_penalty * excess.square().mean((1, 2))
    if not bool(torch.isfinite(per_instance).all()):
        raise DivergenceError("spiking loss is NaN or infinite: lower the learning rate")
    return per_instance.sum(), per_instance.detach()


class SpikingTrainer:
    """Common base: a model, Adam, and (for chip rules) a spiking chip."""

    name: ClassVar[str]
    description: ClassVar[str]
    uses_chip: ClassVar[bool] = True

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        options: SpikingOptions | dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.instances = instances
        self.device = torch.device(device)
        self.options = (
            options if isinstance(options, SpikingOptions) else SpikingOptions.parse(options)
        )
        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.model = SpikingNetwork(
            config, instances=instances, options=self.options, gen=gen, device=self.device
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.options.lr)
        # The chip is made from its own seed, so every rule at one seed meets the same chip.
        self.chip = (
            SpikingChip(config, instances=instances, seed=seed + 1, device=self.device)
            if self.uses_chip
            else None
        )
        self._written = False

    @property
    def log(self) -> EventLog:
        """The chip's event log (empty for software)."""
        return self.chip.log if self.chip is not None else EventLog()

    def set_lr(self, lr: float) -> None:
        """Set the Adam learning rate (for schedules)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def write_chip(self) -> None:
        """Write the model's weights (scaled, rounded, clipped) to the chip."""
        assert self.chip is not None
        for k in range(len(self.config.layers)):
            self.chip.write_weights(k, self.model.integer_weights(k))
            if self.model.recurrent[k] is not None:
                self.chip.write_weights(k, self.model.integer_weights(k, True), recurrent=True)
        self._written = True

    def step(self, loss: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.model.clip_()
        self._written = False

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        """One optimiser step on input spikes ``x`` (B, T, inputs); the loss per instance (I,)."""
        raise NotImplementedError

    def predict(self, x: Tensor) -> Tensor:
        """Class scores (I, B, C) of the network as this rule runs it."""
        raise NotImplementedError

    def classify(self, out: Tensor) -> Tensor:
        """Predicted classes (I, B): the highest score."""
        return out.argmax(-1)

    def finish(self) -> None:
        """Nothing to do at the end of training (the runner's hook)."""

    def software_predict(self, x: Tensor) -> Tensor:
        """Class scores of the software model alone (ideal neurons, float weights)."""
        return readout_scores(self.model.simulate(x), self.options)

    def chip_predict(self, x: Tensor) -> Tensor:
        """Class scores measured on the chip with the current weights."""
        assert self.chip is not None
        if not self._written:
            self.write_chip()
        rec = self.chip.run(x)
        return readout_scores(rec.readout.permute(2, 0, 1, 3), self.options)

    def state_dict(self) -> dict[str, Any]:
        """Model weights, optimiser and chip state."""
        return {
            "weights": [w.detach().clone() for w in self.model.parameters()],
            "optimizer": self.optimizer.state_dict(),
            "chip": None if self.chip is None else self.chip.state_dict(),
            "options": asdict(self.options),
            # Whether the chip holds the current weights: a resumed run writes them again
            # exactly when the uninterrupted one would (writes are logged events).
            "written": self._written,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        with torch.no_grad():
            for w, saved in zip(self.model.parameters(), state["weights"], strict=True):
                w.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.chip is not None and state["chip"] is not None:
            self.chip.load_state_dict(state["chip"])
        self._written = bool(state.get("written", False))


class SoftwareSNN(SpikingTrainer):
    """The model alone, with ideal neurons: surrogate-gradient BPTT."""

    name = "snn-software"
    description = "software spiking network (ideal neurons), surrogate-gradient BPTT"
    uses_chip = False

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        v_out, hidden = self.model.forward(x)
        loss, per = spiking_loss(v_out, hidden, y, self.options)
        self.step(loss)
        return per

    def predict(self, x: Tensor) -> Tensor:
        return self.software_predict(x)


class Deploy(SoftwareSNN):
    """Trained in software; evaluated by writing the weights to the (mismatched) chip."""

    name = "deploy"
    description = "train the software model, then write its weights to the chip and run there"
    uses_chip = True

    def predict(self, x: Tensor) -> Tensor:
        return self.chip_predict(x)


class InTheLoop(SpikingTrainer):
    """Forward pass on the chip, measured traces injected, gradients from the model."""

    name = "in-the-loop"
    description = "hardware in the loop: chip forward, injected traces, model gradients"

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        assert self.chip is not None
        if not self._written:
            self.write_chip()
        rec = self.chip.run(x)
        v_out, hidden = self.model.forward(x, rec)
        loss, per = spiking_loss(v_out, hidden, y, self.options)
        self.step(loss)
        return per

    def predict(self, x: Tensor) -> Tensor:
        return self.chip_predict(x)
