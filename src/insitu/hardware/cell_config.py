"""A weight cell's design: how many device arrays hold one weight and how they exchange it.

A plain tile holds each weight in one device (or one differential pair). Compound cells spread
it over a fast array that receives the gradient and a slow array that holds the weight, or
keep part of it digitally in the periphery:

- ``tiki-taka`` (Gokmen & Haensch, Front. Neurosci. 14, 103, 2020): ``W = gamma A + C``; the
  pulsed updates go to A; every ``transfer_every`` updates ``columns`` columns of A are read
  (one-hot input vectors through DAC, array and ADC) and written to C by a pulsed outer-product
  update scaled by ``transfer_lr``.
- ``ttv2`` (Gokmen, Front. Artif. Intell. 4, 699148, 2021): the reads of A are accumulated in a
  digital buffer H; C receives whole pulses when an entry of H passes ``threshold`` steps of C,
  and H keeps the remainder (low-pass filtering of A's noisy reads).
- ``chopped-ttv2`` (Rasch et al., Nat. Commun. 15, 1, 2024): as ``ttv2``, with the inputs of A's
  updates multiplied by a chopper sign per input line, undone on the read; each line's chopper
  flips with probability ``chop_prob`` after its column is read, so A's offset from its devices'
  symmetry points averages out in H.
- ``agad`` (AGAD, "analog gradient accumulation with dynamic reference", Rasch et al., Nat.
  Commun. 15, 7133, 2024; aihwkit's ``DynamicTransferCompound``): as ``chopped-ttv2``, but A's
  reads enter H relative to a reference formed from A's own past reads (kept digitally)
  instead of A's programmed zero: H += transfer_lr c (a - p). The choppers switch regularly,
  every ``ceil(1 / chop_prob)`` reads of a column; a leaky mean of the reads weighted
  towards the end of each chopper period (rate ``min(tail_weight / period, 1)``) becomes the
  column's reference p when its chopper switches. A needs no symmetry-point reference.
- any kind with ``refresh_every`` > 0 on one-sided pairs (PCM): the pair refresh of Boybat et
  al. (Nat. Commun. 9, 2514, 2018), :mod:`insitu.hardware.pair_refresh`.
- ``residual`` (Wu, Xiao, Gokmen, Fagbohungbe and Chen, NeurIPS 2025, arXiv 2502.06309) and
  ``multi-tile-residual`` (Li, Wu, Liu, Gokmen and Chen, arXiv 2510.02516): ``tiles`` arrays
  of geometrically falling significance, ``W = sum_n tile_gamma**n W_n``; the gradient is
  taken at that sum and pulsed into the least significant array, each array is transferred
  into the next more significant one (:mod:`insitu.hardware.residual_cell`).
- ``mixed-precision`` (Nandakumar et al., ISCAS 2018, and Front. Neurosci. 14, 406, 2020): the
  gradient is accumulated digitally in chi (one value per weight); when an entry passes
  ``threshold`` device steps, that many pulses are applied and chi keeps the remainder.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from insitu.errors import ConfigError, check_range


class CellKind(StrEnum):
    """How a weight is held: see the module docstring."""

    SINGLE = "single"  # one device (pair) per weight: a plain tile
    TIKI_TAKA = "tiki-taka"
    TTV2 = "ttv2"
    CHOPPED_TTV2 = "chopped-ttv2"
    AGAD = "agad"
    MIXED_PRECISION = "mixed-precision"
    RESIDUAL = "residual"
    MULTI_TILE_RESIDUAL = "multi-tile-residual"

    @property
    def transfers(self) -> bool:
        """A fast array A whose columns are transferred to a slow array C."""
        return self in (CellKind.TIKI_TAKA, CellKind.TTV2, CellKind.CHOPPED_TTV2, CellKind.AGAD)

    @property
    def buffered(self) -> bool:
        """Transfers go through a digital buffer H (TTv2 and its chopped variants)."""
        return self in (CellKind.TTV2, CellKind.CHOPPED_TTV2, CellKind.AGAD)

    @property
    def chopped(self) -> bool:
        """A's input lines carry sign choppers (Chopped-TTv2 and AGAD)."""
        return self in (CellKind.CHOPPED_TTV2, CellKind.AGAD)

    @property
    def residual(self) -> bool:
        """Arrays of geometrically falling significance (residual learning)."""
        return self in (CellKind.RESIDUAL, CellKind.MULTI_TILE_RESIDUAL)


@dataclass(frozen=True)
class CellParams:
    """A weight cell (see the module docstring for the papers).

    Attributes:
        kind: single, tiki-taka, ttv2, chopped-ttv2, agad, mixed-precision, residual or
            multi-tile-residual.
        gamma: share of the fast array A in the weight read, ``W = gamma A + C`` (0: C alone,
            as in TTv2; A is then never read forward).
        fast_lr: factor on the learning rate of the pulsed updates of A. A must follow the
            gradient faster than its columns are read (and, chopped, faster than the choppers
            flip): ttv2 on ``reram-taox`` digits, 3 epochs, reached 67 % at 1 and 86 % at 10.
        transfer_every: rank-1 updates (samples) between two transfers.
        columns: columns of A read and transferred per transfer, in turn over the array.
        transfer_lr: weight moved to C per unit read from A (tiki-taka: the learning rate of
            C's pulsed update; ttv2: the factor on the reads added to H).
        threshold: buffer threshold in nominal weight steps of the receiving array (H for
            ttv2, chi for mixed precision).
        chop_prob: chance that an input line's chopper flips after its column is read
            (chopped-ttv2); agad switches every ``ceil(1 / chop_prob)`` reads (at least 2).
        tail_weight: agad: the leaky mean of A's reads that becomes the reference moves by
            ``min(tail_weight / period, 1)`` of each read, so it weights the last
            ``period / tail_weight`` reads of a chopper period (after A's transient).
        refresh_every: updates between two refreshes of one-sided pairs (Boybat et al., Nat.
            Commun. 9, 2514, 2018: :mod:`insitu.hardware.pair_refresh`); 0: never.
        refresh_level: a pair is refreshed when a device is above this fraction of its range
            and the other device above ``refresh_floor`` of it. On ``pcm`` digits (8 seeds,
            benchmarks/RESULTS.md) mixed precision does best at 0.4 (0.3 points below
            software; 0.8 below at 0.7), AGAD at 0.7 (0.7 below; 2.3 below at 0.4): the
            default 0.7 keeps both within a point.
        refresh_floor: pairs whose lower device is below this fraction of the range are not
            refreshed (already compact: rewriting them frees no headroom). 0.1-0.3 gave the
            same ``pcm`` digits accuracy (benchmarks/RESULTS.md).
        tiles: arrays of a ``multi-tile-residual`` cell (``residual``: always 2). Li et al.
            show the residual shrinking with every tile; their LeNet-5 script trains 7 for 200
            epochs; 4 here (3, 4 and 6 measured on a 9-state device: benchmarks/RESULTS.md).
        tile_gamma: significance of each residual array relative to the next more significant
            one (the papers' gamma; 0.5 in Li et al.'s scripts).
        period_growth: factor by which the transfer period grows from one array to the next
            more significant one (5 in Li et al.'s scripts: periods 2, 10, 50, ...); the
            least significant array is transferred every ``transfer_every`` updates.
    """

    kind: CellKind = CellKind.SINGLE
    gamma: float = 0.0
    fast_lr: float = 10.0
    transfer_every: int = 1
    columns: int = 1
    transfer_lr: float = 0.05
    threshold: float = 1.0
    chop_prob: float = 0.02
    tail_weight: float = 5.0
    refresh_every: int = 0
    refresh_level: float = 0.7
    refresh_floor: float = 0.2
    tiles: int = 4
    tile_gamma: float = 0.5
    period_growth: int = 5

    def __post_init__(self) -> None:
        if self.kind not in set(CellKind):
            valid = ", ".join(k.value for k in CellKind)
            raise ConfigError(f"cell kind = {self.kind!r}; valid: {valid}")
        object.__setattr__(self, "kind", CellKind(self.kind))
        check_range("gamma", self.gamma, low=0.0)
        check_range("fast_lr", self.fast_lr, low=0.0, low_open=True)
        check_range("transfer_lr", self.transfer_lr, low=0.0, low_open=True)
        check_range("threshold", self.threshold, low=0.0, low_open=True)
        check_range("chop_prob", self.chop_prob, low=0.0, high=1.0)
        check_range("tail_weight", self.tail_weight, low=0.0, low_open=True)
        if self.kind is CellKind.AGAD and self.chop_prob == 0.0:
            raise ConfigError(
                "cell chop_prob = 0 with kind agad: AGAD takes its reference when a chopper "
                "switches; need 0 < chop_prob <= 1 (a switch every ceil(1/chop_prob) reads)"
            )
        check_range("refresh_level", self.refresh_level, low=0.0, high=1.0, low_open=True)
        if not 0.0 <= self.refresh_floor < self.refresh_level:
            raise ConfigError(
                f"cell refresh_floor = {self.refresh_floor!r}; need 0 <= refresh_floor < "
                f"refresh_level ({self.refresh_level!r})"
            )
        check_range("tile_gamma", self.tile_gamma, low=0.0, high=1.0, low_open=True)
        whole = (("transfer_every", 1), ("columns", 1), ("refresh_every", 0))
        for name, low in (*whole, ("tiles", 2), ("period_growth", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"cell {name} = {v!r}; need a whole number >= {low}")
