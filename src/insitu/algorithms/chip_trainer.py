"""The base of every rule that trains on a chip: it owns the chip and starts it programmed."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from insitu.algorithms.base import Trainer, glorot_weights
from insitu.errors import ConfigError
from insitu.hardware import ChipConfig, CrossbarChip


def parse_layer_lr(value: Any) -> tuple[float, ...] | None:
    """Per-weight-layer factors on the learning rate (inputs first; None: all 1), validated:
    the hardware knob is a pulse gain per tile."""
    if value is None:
        return None
    factors = tuple(value)
    if not factors or not all(
        isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors
    ):
        raise ValueError(f"layer_lr = {value!r}; need a list of positive numbers")
    return tuple(float(f) for f in factors)


def check_layer_lr(factors: tuple[float, ...] | None, config: ChipConfig) -> None:
    """One factor per weight layer of ``config``, or none at all."""
    n = len(config.layers) - 1
    if factors is not None and len(factors) != n:
        raise ConfigError(
            f"layer_lr has {len(factors)} factor(s); the network has {n} weight layer(s)"
        )


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
