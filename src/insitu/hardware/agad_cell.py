"""AGAD: analog gradient accumulation with a dynamic reference.

M. J. Rasch, F. Carta, O. Fagbohungbe and T. Gokmen, "Fast and robust analog in-memory deep
neural network training", Nat. Commun. 15, 7133 (2024); aihwkit's ``DynamicTransferCompound``.

Chopped-TTv2 reads A's columns against A's zero, a reference conductance that must sit at the
devices' symmetry point; a programming error there biases every read, and the chopper only
averages it out slowly. AGAD drops that requirement: the gradient is carried by how A's read
*changes* between chopper periods. Per read of column j (a vector over the output lines),
measured through A's DAC, array and ADC and held in the digital periphery:

- H_j += transfer_lr * c_j * (a_j - p_j), with c_j the column's chopper sign and p_j its
  reference (p starts at 0: A written to zero);
- m_j += beta * (a_j - m_j), a leaky mean of the reads with ``beta = min(tail_weight / period,
  1)``, so it weights the last ``period / tail_weight`` reads, after the transient in which A
  turns to follow the switched chopper;
- the choppers switch regularly: after every ``period = ceil(1 / chop_prob)`` (at least 2)
  reads of a column its sign flips and p_j takes m_j, the value A settled at in the period
  just ended.

This follows aihwkit (``DynamicTransferCompound`` with its default regular chopper; the core's
``rpu_dynamic_transfer_device.cpp`` and the torch ``TorchTransferTile``) with one difference:
aihwkit's core writes nothing to C during the first chopper period (no reference yet); here
the first period reads against p = 0, A's programmed zero, as Chopped-TTv2 does (with 785
columns read one per sample and a period of 200, aihwkit's first layer waits about 158,000
samples for its first transfer).

C then receives H's whole steps as in TTv2 (:class:`insitu.hardware.transfer_cell.TransferCell`
does the reads, H and the pulses; this cell changes only how a read enters H). The reference,
the leaky mean and the read counters live in periphery memory: every write is counted as a
stored value, every arithmetic operation as a digital operation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from insitu.hardware import agad_kernels
from insitu.hardware.backend import Implementation, choose
from insitu.hardware.events import Event
from insitu.hardware.kernel_switch import as_numpy
from insitu.hardware.transfer_cell import TransferCell


class AGADCell(TransferCell):
    """AGAD (``config.cell.kind`` agad), for ``instances`` chips."""

    def _build(self) -> None:
        super()._build()
        dev = self._device
        self.reference = torch.zeros(self.shape, device=dev)  # p: (I, out, in), weight units
        self.tail_mean = torch.zeros(self.shape, device=dev)  # m: leaky mean of the reads
        # Reads of each column since its chopper last switched (the same on every instance).
        self.reads = torch.zeros(self.in_features, dtype=torch.int64, device=dev)
        compiled = choose(dev, torch.float32, self._backend) is Implementation.KERNEL
        self._demodulation = self._kernel_demodulate if compiled else self._torch_demodulate

    @property
    def period(self) -> int:
        """Reads of a column between two switches of its chopper: ``ceil(1 / chop_prob)``,
        at least 2 (aihwkit's ``getNumInChopSamples``)."""
        return max(2, math.ceil(1.0 / self.params.chop_prob - 1e-9))

    def _buffers(self) -> dict[str, Tensor]:
        return {
            **super()._buffers(),
            "reference": self.reference,
            "tail_mean": self.tail_mean,
            "reads": self.reads,
        }

    def _demodulate(self, columns: Tensor, v: Tensor) -> Tensor:
        return self._demodulation(columns, v)

    def _torch_demodulate(self, columns: Tensor, v: Tensor) -> Tensor:
        """``c (a - p)`` for the reads ``v`` (I, k, out) of ``columns``; then the leaky
        mean, the read counts, and for the columns whose period ends the chopper switch and
        the new reference (the torch reference of :func:`agad_kernels.demodulate`)."""
        a = v.transpose(1, 2)  # (I, out, k), the layout of H
        signs = self.chopper[:, columns].unsqueeze(1)  # (I, 1, k)
        p = self.reference[:, :, columns]
        signal = signs * (a - p)
        beta = min(self.params.tail_weight / self.period, 1.0)
        m = self.tail_mean[:, :, columns]
        m = m + beta * (a - m)
        self.tail_mean[:, :, columns] = m
        reads = self.reads[columns] + 1
        switch = reads >= self.period  # (k,)
        self.reads[columns] = torch.where(switch, 0, reads)
        self.chopper[:, columns] = torch.where(switch, -signs, signs).squeeze(1)
        self.reference[:, :, columns] = torch.where(switch, m, p)
        self._log_demodulation(a.numel(), columns.numel(), switch.sum())
        return signal.transpose(1, 2)

    def _kernel_demodulate(self, columns: Tensor, v: Tensor) -> Tensor:
        """:meth:`_torch_demodulate` as one compiled loop (CPU tensors, bit for bit)."""
        signal = torch.empty(v.shape)
        beta = np.float32(min(self.params.tail_weight / self.period, 1.0))
        switched = agad_kernels.demodulate(
            as_numpy(v.contiguous()),
            as_numpy(columns.to(torch.int64)),
            as_numpy(self.chopper),
            as_numpy(self.reference),
            as_numpy(self.tail_mean),
            as_numpy(self.reads),
            self.period,
            beta,
            as_numpy(signal),
        )
        self._log_demodulation(v.numel(), columns.numel(), switched)
        return signal

    def _log_demodulation(self, values: int, columns: int, switched: Tensor | int) -> None:
        """Per read value: subtract p, sign, and the mean's difference, scale, add; per column:
        count and compare. Stored: the mean, the counts, and p where it was replaced (a tensor
        count on the torch path: no device synchronisation)."""
        self.log.add_many(
            (
                (Event.DIGITAL_OP, 5 * values + 2 * columns),
                (Event.STORED_VALUE, values + columns),
            )
        )
        self.log.add(Event.STORED_VALUE, switched * (self.instances * self.out_features))
