"""``analog-sgd``: backpropagation executed on the chip (Gokmen & Vlasov 2016 style).

Per mini-batch: forward reads through every tile (activations stored in the periphery), the
output error formed digitally, the error carried down by transposed reads times the
derivative circuit evaluated on the stored activations, then one parallel pulsed ``update``
per layer after the backward pass.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from insitu.algorithms.base import Trainer, glorot_weights, softmax_error
from insitu.hardware import ChipConfig, CrossbarChip, Event


class ChipTrainer(Trainer):
    """A trainer that owns a chip, programmed to Glorot-initial weights at start."""

    program_tolerance: float | None = None
    program_iterations: int = 20

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.chip = CrossbarChip(
            config, instances=self.instances, seed=self.seed, device=self.device
        )
        self._log = self.chip.log

    def program_initial_weights(self) -> None:
        """Write-verify the chip to random initial weights drawn by the trainer."""
        w = glorot_weights(self.config.layers, self.instances, self.generator, self.device)
        self.chip.program(w, self.program_tolerance, self.program_iterations)

    def predict(self, x: Tensor) -> Tensor:
        return self.chip.infer(x)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "chip": self.chip.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.chip.load_state_dict(state["chip"])


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
        loss, d = softmax_error(acts[-1], y)
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
        for layer in range(chip.n_layers):
            chip.update(layer, acts[layer], errors[layer], self.lr)
        return loss
