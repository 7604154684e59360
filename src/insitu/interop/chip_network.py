"""A spiking network as the chip holds it (configuration and integer weights), moved between
trainers, chips and exchange formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from insitu.algorithms import make_spiking_trainer
from insitu.algorithms.spiking import SpikingTrainer
from insitu.errors import ConfigError
from insitu.hardware.spiking import NeuronArray, SpikingChip, SpikingChipConfig


@dataclass(frozen=True)
class ChipNetwork:
    """A spiking network as the chip holds it: its configuration and integer weights.

    Attributes:
        config: the chip's layers and neuron parameters (``synapse_gain`` is the voltage one
            integer weight step is worth).
        weights: per layer, feed-forward integer weights (out, in), int8 in -63..63.
        recurrent: per layer, recurrent integer weights (n, n), or None.
    """

    config: SpikingChipConfig
    weights: tuple[Tensor, ...]
    recurrent: tuple[Tensor | None, ...]

    def __post_init__(self) -> None:
        n = len(self.config.layers)
        if len(self.weights) != n or len(self.recurrent) != n:
            raise ConfigError(
                f"{len(self.weights)} weight and {len(self.recurrent)} recurrent entries for "
                f"{n} layers"
            )

    @classmethod
    def from_trainer(cls, trainer: SpikingTrainer, instance: int = 0) -> ChipNetwork:
        """The integer weights ``trainer`` writes to its chip (instance ``instance``)."""
        if not 0 <= instance < trainer.instances:
            raise ConfigError(f"instance = {instance}; the trainer has {trainer.instances}")
        model = trainer.model
        n = len(trainer.config.layers)
        return cls(
            trainer.config,
            tuple(model.integer_weights(k)[instance].clone() for k in range(n)),
            tuple(
                None if model.recurrent[k] is None else model.integer_weights(k, True)[instance]
                for k in range(n)
            ),
        )

    def write_to(self, chip: SpikingChip) -> None:
        """Write the integer weights to ``chip`` (every instance)."""
        for k, w in enumerate(self.weights):
            chip.write_weights(k, w)
            r = self.recurrent[k]
            if r is not None:
                chip.write_weights(k, r, recurrent=True)

    def load_into(self, trainer: SpikingTrainer) -> None:
        """Start ``trainer``'s model (every instance) from these weights, through its public
        ``state_dict``/``load_state_dict``; the chip gets them at the next write."""
        if trainer.config.sizes != self.config.sizes or [
            lay.recurrent for lay in trainer.config.layers
        ] != [lay.recurrent for lay in self.config.layers]:
            raise ConfigError(
                f"trainer has layers {trainer.config.sizes}; the network {self.config.sizes}"
            )
        state = trainer.state_dict()
        i_n, scale = trainer.instances, trainer.model.scale
        ff = [
            (w.to(torch.float32) * scale[k]).expand(i_n, -1, -1) for k, w in enumerate(self.weights)
        ]
        rec = [
            (r.to(torch.float32) * scale[k]).expand(i_n, -1, -1)
            for k, r in enumerate(self.recurrent)
            if r is not None
        ]
        state["weights"] = [*ff, *rec]  # the order of model.parameters()
        state["written"] = False
        trainer.load_state_dict(state)

    def trainer(self, algorithm: str = "in-the-loop", **kwargs: Any) -> SpikingTrainer:
        """A spiking trainer (``in-the-loop``, ``deploy``, ``snn-software``) on this network's
        chip configuration, starting from its weights; ``kwargs`` as for the trainer."""
        trainer = make_spiking_trainer(algorithm, self.config, **kwargs)
        self.load_into(trainer)
        return trainer


def simulated_calibration(chip: SpikingChip) -> list[NeuronArray]:
    """Per layer, every neuron's parameters (instances, neurons), as a complete, noise-free
    calibration of the simulated chip would report them.

    Reads through :mod:`insitu.hardware.inspection`, the named inspection hook: a stand-in for
    a lab's calibration, for export and reports only; algorithms never call it. A real chip
    passes its own calibration data to :func:`export_nir` instead.
    """
    from insitu.hardware import inspection  # the named hook, kept out of import time

    return inspection.neuron_parameters(chip)
