"""Tiki-Taka cells: a fast array A that receives the gradient and a slow array C that holds the
weight, with transfers from A to C by column reads and pulses.

- Tiki-Taka: T. Gokmen and W. Haensch, "Algorithm for training neural networks on resistive
  device arrays", Front. Neurosci. 14, 103 (2020).
- TTv2: T. Gokmen, "Enabling training of neural networks on noisy hardware", Front. Artif.
  Intell. 4, 699148 (2021).
- Chopped-TTv2: M. J. Rasch, F. Carta, O. Fagbohungbe and T. Gokmen, "Fast and robust analog
  in-memory deep neural network training", Nat. Commun. 15, 7133 (2024).

The weight read forward is ``W = gamma A + C`` (both arrays read, summed after their ADCs;
gamma 0 reads C alone). ``update`` pulses A with the (chopped) inputs. Every
``transfer_every`` rank-1 updates, ``columns`` columns of A are read in turn, each by driving
a one-hot input vector through A's DAC, array and ADC (its read noise and quantisation
included). Tiki-Taka writes each read column to C by a pulsed outer-product update with the
same one-hot input; TTv2 adds it to the digital buffer H and writes C a column's whole steps
once they pass the threshold, keeping the remainder in H.
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.hardware.compound_cell import CompoundCell, due_columns, per_instance, read_columns
from insitu.hardware.events import Event
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import ProgramResult


class TransferCell(CompoundCell):
    """Tiki-Taka, TTv2 or Chopped-TTv2 (``config.cell.kind``), for ``instances`` chips; AGAD
    (:class:`insitu.hardware.agad_cell.AGADCell`) changes only :meth:`_demodulate`."""

    def _build(self) -> None:
        kind = self.params.kind
        if not kind.transfers:
            raise ValueError(f"a TransferCell is tiki-taka, ttv2, chopped-ttv2 or agad, not {kind}")
        self.fast = self._array()
        self.slow = self._array()
        dev = self._device
        # H: the digital transfer buffer (TTv2), in weight units; empty for Tiki-Taka.
        self.buffer = torch.zeros(self.shape if kind.buffered else (0,), device=dev)
        # The chopper sign of every input line of every instance (all +1 unless chopped).
        self.chopper = torch.ones(
            (self.instances, self.in_features) if kind.chopped else (0,),
            device=dev,
        )
        self._since = 0  # rank-1 updates since the last transfer
        self._next = 0  # the next column of A to transfer

    @property
    def weights(self) -> Tile:
        return self.slow

    def arrays(self) -> dict[str, Tile]:
        return {"fast": self.fast, "slow": self.slow}

    def significance(self) -> dict[str, float]:
        return {"fast": self.params.gamma, "slow": 1.0}

    def _buffers(self) -> dict[str, Tensor]:
        return {"buffer": self.buffer, "chopper": self.chopper}

    def _counters(self) -> dict[str, int]:
        return {**super()._counters(), "since": self._since, "next": self._next}

    def _set_counters(self, values: dict[str, int]) -> None:
        super()._set_counters(values)
        self._since, self._next = int(values["since"]), int(values["next"])

    def program(
        self, target: Tensor, tolerance: float | None = None, max_iterations: int = 20
    ) -> ProgramResult:
        result = super().program(target, tolerance, max_iterations)
        self.chopper.fill_(1.0)
        self._since = self._next = 0
        return result

    # -- update and transfer --------------------------------------------------------------
    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """Pulse A with ``-lr * fast_lr * d x^T`` (inputs chopped), then the transfers due."""
        p = self.params
        if self.chopper.numel():
            x = per_instance(x, self.in_features, self.instances, "update input")
            x = x * self.chopper.unsqueeze(1)  # the sign switch on each input line driver
        self.fast.update(x, d, lr * p.fast_lr)
        samples = x.shape[-2] if self.config.update.sequential else 1
        self._since, self._next, passes = due_columns(
            self._since + samples,
            self._next,
            p.transfer_every,
            p.columns,
            self.in_features,
            self._device,
        )
        for columns in passes:
            self.transfer(columns)
        self.after_update()

    def transfer(self, columns: Tensor) -> None:
        """Read ``columns`` (k distinct indices) of A and move them to C."""
        p = self.params
        one_hot, v = read_columns(self.fast, columns)  # v (I, k, out)
        if self.chopper.numel():
            v = self._demodulate(columns, v)
        if not p.kind.buffered:
            # C += transfer_lr * v e_k^T: the tile's update takes W -= lr * d x^T.
            self.slow.update(one_hot, -v, p.transfer_lr)
            return
        h = self.buffer[:, :, columns] + p.transfer_lr * v.transpose(1, 2)  # (I, out, k)
        self.log.add(Event.DIGITAL_OP, 3 * h.numel())  # accumulate, compare, subtract
        self.slow.pulse_column_steps(h, columns, p.threshold)  # fires h's whole steps
        self.buffer[:, :, columns] = h

    def _demodulate(self, columns: Tensor, v: Tensor) -> Tensor:
        """The reads ``v`` (I, k, out) of ``columns`` times their chopper signs; then each
        line's chopper flips with probability ``chop_prob`` (Chopped-TTv2)."""
        signs = self.chopper[:, columns]  # (I, k)
        flip = torch.rand(signs.shape, generator=self._gen, device=self._device)
        self.chopper[:, columns] = torch.where(flip < self.params.chop_prob, -signs, signs)
        self.log.add(Event.DIGITAL_OP, v.numel())
        return v * signs.unsqueeze(-1)
