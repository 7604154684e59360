"""``analog-sgd``: backpropagation executed on the chip (Gokmen & Vlasov 2016 style).

Per mini-batch: forward reads through every tile (activations stored in the periphery), the
output error formed digitally, the error carried down by transposed reads times the
derivative circuit evaluated on the stored activations, then one parallel pulsed ``update``
per layer after the backward pass.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from insitu.algorithms.chip_trainer import ChipTrainer
from insitu.hardware import ChipConfig, Event


class AnalogSGD(ChipTrainer):
    """Backprop on the chip: forward reads, transposed reads, pulsed outer-product updates."""

    name = "analog-sgd"
    description = "backprop on the chip: stored activations, transposed reads, pulsed updates"

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.program_initial_weights()

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        chip = self.chip
        acts = chip.forward(x)
        loss, d = self.output_error(acts[-1], y)
        chip.log.add(Event.DIGITAL_OP, 3 * d.numel())
        # Everything the backward pass and the updates need must wait in periphery memory.
        stored = sum(a.numel() for a in acts[1:-1])
        stored += x.numel() * (self.instances if x.dim() == 2 else 1)
        errors: list[Tensor] = [d] * chip.n_layers
        for layer in reversed(range(chip.n_layers)):
            errors[layer] = d
            if layer > 0:
                d = chip.read_transposed(layer, d) * chip.derivative(layer - 1, acts[layer])
                stored += d.numel()
        chip.log.add(Event.STORED_VALUE, stored)
        chip.update_layers(acts[:-1], errors, self.lr)
        return loss
