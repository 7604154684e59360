"""Mixed-precision cells: the gradient accumulated digitally, whole device steps pulsed.

S. R. Nandakumar, M. Le Gallo, I. Boybat, B. Rajendran, A. Sebastian and E. Eleftheriou,
"Mixed-precision architecture based on computational memory for training deep neural
networks", ISCAS 2018; and "Mixed-precision deep learning based on computational memory",
Front. Neurosci. 14, 406 (2020).

The forward and transposed reads stay analog on the device array. The weight update is formed
in the digital periphery: ``chi -= lr * sum_b d_b x_b^T`` (one digital outer product per
sample). Where ``|chi|`` reaches ``threshold`` nominal weight steps, ``trunc(chi / step)``
pulses are applied to that weight (row by row) and chi keeps the remainder, so small
gradients are never lost to the device's coarse, noisy steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.hardware.compound_cell import CompoundCell, per_instance
from insitu.hardware.events import Event
from insitu.hardware.tile import Tile


class MixedPrecisionCell(CompoundCell):
    """One device array with a digital accumulator chi per weight."""

    def _build(self) -> None:
        self.array = self._array()
        self.chi = torch.zeros(self.shape, device=self._device)  # weight units

    @property
    def weights(self) -> Tile:
        return self.array

    def arrays(self) -> dict[str, Tile]:
        return {"array": self.array}

    def _buffers(self) -> dict[str, Tensor]:
        return {"chi": self.chi}

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """Accumulate ``-lr * d^T x`` in chi; pulse the whole steps that passed the threshold."""
        x = per_instance(x, self.in_features, self.instances, "update input")
        d = per_instance(d, self.out_features, self.instances, "update error")
        samples = x.shape[1]
        self.chi.sub_(lr * torch.matmul(d.transpose(1, 2), x))
        # One multiply-add per weight and sample, then compare and subtract per weight.
        self.log.add(Event.DIGITAL_OP, self.chi.numel() * (samples + 2))
        self.array.pulse_steps(self.chi, self.params.threshold)
        self.after_update()
