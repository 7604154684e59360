"""Residual learning cells: arrays of geometrically falling significance, each learning what
the more significant ones leave over.

- Residual learning: Z. Wu, Q. Xiao, T. Gokmen, O. Fagbohungbe and T. Chen, "Analog in-memory
  training on general non-ideal resistive elements: the impact of response functions",
  NeurIPS 2025, arXiv 2502.06309. An asymmetric response makes analog SGD minimise the loss
  plus an implicit penalty that pulls every weight toward its devices' symmetry point, so
  analog SGD stalls away from a critical point. A main array W and a residual array P are
  read together as ``W + gamma P``; the gradient taken at that sum is pulsed into P, and P is
  transferred into W (``W += beta P``, by reads and pulses). This solves a bilevel problem:
  P settles where the gradient at ``W + gamma P`` vanishes, and W moves until P is back at
  its symmetry point (zero for a pair of matched devices), so the sum reaches a critical
  point exactly. The updates are those of Tiki-Taka (Gokmen & Haensch 2020) with
  ``gamma > 0``; the paper extends the scheme to devices with few response steps.
- Multi-tile residual learning: J. Li, Z. Wu, G. Liu, T. Gokmen and T. Chen, "In-memory
  training on analog devices with limited conductance states via multi-tile residual
  learning", arXiv 2510.02516. With only 4-10 conductance states one array cannot hold a
  weight finely enough; N arrays hold ``W = sum_n gamma**n W_n`` (``W_0`` most significant),
  each learning, on its own timescale, the residual the more significant arrays leave. The
  optimality gap shrinks with the number of tiles. The defaults (gamma 0.5, transfer periods
  growing 5-fold toward the most significant array) follow the authors' public scripts.

Here (``tiles`` arrays; ``residual`` is the two-array case): the forward and transposed reads
are the sum of every array's read through its own DAC and ADC, scaled digitally by
``tile_gamma**n``. ``update`` pulses the least significant array with the gradient (times
``fast_lr``). Array ``n > 0`` is transferred into array ``n - 1`` every
``transfer_every * period_growth**(tiles - 1 - n)`` rank-1 updates: ``columns`` columns are
read in turn (one-hot inputs through DAC, array and ADC) and written by a pulsed
outer-product update scaled by ``transfer_lr``, as in Tiki-Taka (no digital buffer). The
source array is not reset. Li et al.'s warm start (the most significant array learning first,
the next one when the loss plateaus) needs the loss, which a weight cell does not see: not
modelled. Both papers assume each residual array's symmetry point at zero; matched device
pairs give that on average, device-to-device spread shifts it (Chopped-TTv2 targets that).
"""

from __future__ import annotations

from torch import Tensor

from insitu.hardware.cell_config import CellKind
from insitu.hardware.compound_cell import CompoundCell, due_columns, read_columns
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import ProgramResult


class ResidualCell(CompoundCell):
    """Residual or multi-tile residual learning (``config.cell.kind``), for ``instances``
    chips; arrays ``tile0`` (most significant, holds the weight) to ``tile{N-1}``."""

    def _build(self) -> None:
        kind = self.params.kind
        if not kind.residual:
            raise ValueError(f"a ResidualCell is residual or multi-tile-residual, not {kind}")
        n = 2 if kind is CellKind.RESIDUAL else self.params.tiles
        self.tiles = [self._array() for _ in range(n)]
        self._since = [0] * n  # per source array n > 0: rank-1 updates since its transfer
        self._next = [0] * n  # per source array n > 0: its next column to transfer

    @property
    def weights(self) -> Tile:
        return self.tiles[0]

    def arrays(self) -> dict[str, Tile]:
        return {f"tile{n}": t for n, t in enumerate(self.tiles)}

    def significance(self) -> dict[str, float]:
        return {f"tile{n}": self.params.tile_gamma**n for n in range(len(self.tiles))}

    def period(self, n: int) -> int:
        """Rank-1 updates between two transfers of array ``n`` (> 0) into array ``n - 1``."""
        p = self.params
        return int(p.transfer_every * p.period_growth ** (len(self.tiles) - 1 - n))

    def _counters(self) -> dict[str, int]:
        counters = super()._counters()
        for n in range(1, len(self.tiles)):
            counters |= {f"since{n}": self._since[n], f"next{n}": self._next[n]}
        return counters

    def _set_counters(self, values: dict[str, int]) -> None:
        super()._set_counters(values)
        for n in range(1, len(self.tiles)):
            self._since[n], self._next[n] = int(values[f"since{n}"]), int(values[f"next{n}"])

    def program(
        self, target: Tensor, tolerance: float | None = None, max_iterations: int = 20
    ) -> ProgramResult:
        result = super().program(target, tolerance, max_iterations)
        self._since = [0] * len(self.tiles)
        self._next = [0] * len(self.tiles)
        return result

    # -- update and transfer --------------------------------------------------------------
    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """Pulse the least significant array with ``-lr * fast_lr * d x^T``, then every
        transfer due, from the least significant array up."""
        p = self.params
        self.tiles[-1].update(x, d, lr * p.fast_lr)
        samples = x.shape[-2] if self.config.update.sequential else 1
        for n in range(len(self.tiles) - 1, 0, -1):
            self._since[n], self._next[n], passes = due_columns(
                self._since[n] + samples,
                self._next[n],
                self.period(n),
                p.columns,
                self.in_features,
                self._device,
            )
            for columns in passes:
                self.transfer(n, columns)
        self.after_update()

    def transfer(self, n: int, columns: Tensor) -> None:
        """Read ``columns`` (k distinct indices) of array ``n`` and add ``transfer_lr`` times
        them to array ``n - 1`` by a pulsed outer-product update with the same one-hot
        inputs."""
        one_hot, v = read_columns(self.tiles[n], columns)  # v (I, k, out)
        # W_{n-1} += transfer_lr * v e_k^T: the tile's update takes W -= lr * d x^T.
        self.tiles[n - 1].update(one_hot, -v, self.params.transfer_lr)
