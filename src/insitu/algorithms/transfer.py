"""``transfer``: train in software, then program the weights onto the chip (write-verify).

The conventional route the seeds argue against: the chip only ever sees the final weights,
so device variation, stuck devices, the finite range and the periphery are not compensated.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from insitu.algorithms.chip_trainer import ChipTrainer
from insitu.algorithms.software import Software
from insitu.hardware import ChipConfig


class Transfer(ChipTrainer):
    """Software SGD during training; at the end, write-verify the weights onto the chip."""

    name = "transfer"
    description = "train in software, program the weights onto the chip with write-verify"

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.software = Software(config, **{k: v for k, v in kwargs.items() if k != "options"})
        self.programmed = False

    def set_lr(self, lr: float) -> None:
        super().set_lr(lr)
        self.software.set_lr(lr)

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self.software.train_batch(x, y)

    def finish(self) -> None:
        if not self.programmed:
            self.chip.program(
                self.software.model.weights, self.program_tolerance, self.program_iterations
            )
            self.programmed = True

    def predict(self, x: Tensor) -> Tensor:
        return self.chip.infer(x) if self.programmed else self.software.predict(x)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "software": self.software.state_dict(),
            "programmed": self.programmed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.software.load_state_dict(state["software"])
        self.programmed = bool(state["programmed"])
