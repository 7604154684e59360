"""The base of every rule that trains on a chip: it owns the chip and starts it programmed."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from insitu.algorithms.base import Trainer, glorot_weights
from insitu.hardware import ChipConfig, CrossbarChip


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
