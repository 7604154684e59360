"""A crossbar tile's design: how weights are formed from devices and how updates become pulses.

Also the shape check every tile operation applies to its inputs, and the outcome of
write-verify programming.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import torch
from torch import Tensor

from insitu.devices import DeviceParams
from insitu.errors import ConfigError, check_range
from insitu.hardware.cell_config import CellParams
from insitu.hardware.periphery import Periphery


def program_target(target: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """A write-verify target as (I, out, in): given so, or (out, in) for every instance."""
    if target.shape == torch.Size(shape[1:]):
        target = target.unsqueeze(0).expand(shape)
    if target.shape != torch.Size(shape):
        raise ValueError(
            f"program target has shape {tuple(target.shape)}; need {shape} or {shape[1:]}"
        )
    return target


def check_batch(v: Tensor, features: int, instances: int, what: str) -> None:
    """Raise ConfigError unless ``v`` is (batch, features) or (instances, batch, features).

    The message counts features as the caller's layer does (a chip passes its inputs
    before it appends the bias column), so it names the shape the user gave.
    """
    expected = f"expected shape (batch, {features}) or ({instances}, batch, {features})"
    shape = tuple(v.shape)
    if v.dim() not in (2, 3):
        raise ConfigError(f"{what} has shape {shape}; {expected}")
    if shape[-1] != features:
        raise ConfigError(
            f"{what} has {shape[-1]} features; this layer takes {features} ({expected})"
        )
    if v.dim() == 3 and shape[0] != instances:
        raise ConfigError(
            f"{what} has shape {shape}, for {shape[0]} chip instances; this chip has "
            f"{instances} ({expected})"
        )


class PairMode(StrEnum):
    """How a weight is formed from conductances."""

    DIFFERENTIAL = "differential"  # w = s * (G+ - G-), two devices per weight
    REFERENCE = "reference"  # w = s * (G - g_ref), one device against a reference column


class UpdateMode(StrEnum):
    """How ``update`` turns a desired outer product into pulses."""

    STOCHASTIC = "stochastic"  # coincident stochastic pulse trains (Gokmen & Vlasov 2016)
    COUNT = "count"  # deterministic pulse counts per device, programmed row by row
    MANHATTAN = "manhattan"  # one sign pulse where thresholded row and column lines coincide


@dataclass(frozen=True)
class UpdateParams:
    """Update periphery.

    Attributes:
        mode: stochastic coincidences or deterministic pulse counts.
        max_pulses: longest pulse train (stochastic) or largest count (count mode) per update.
        sequential: apply a mini-batch as one rank-1 update per sample (as the hardware and
            aihwkit do); False sums the batch's pulses and applies them once (faster; pulses of
            opposite sign cancel before reaching the device).
        dynamic_length: shorten pulse trains when the largest needed update is small.
        threshold: Manhattan mode: a line fires (one pulse of its sign) when its magnitude
            exceeds this fraction of the largest on its side; the step size ignores ``lr``.
    """

    mode: UpdateMode = UpdateMode.STOCHASTIC
    max_pulses: int = 31
    sequential: bool = True
    dynamic_length: bool = True
    threshold: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", UpdateMode(self.mode))
        check_range("threshold", self.threshold, low=0.0, high=1.0, high_open=True)
        if not 1 <= self.max_pulses <= 10_000:
            raise ConfigError(f"max_pulses = {self.max_pulses}; need 1 to 10000")


@dataclass(frozen=True)
class TileConfig:
    """Everything that defines a tile except its size.

    ``cell``: how many device arrays hold one weight and how they exchange it (a plain tile,
    or a compound cell built by :func:`insitu.hardware.cells.make_tile`). ``max_inputs`` and
    ``max_outputs``: the size of one array (input lines, output lines); a larger layer is split
    over a grid of arrays (:mod:`insitu.hardware.tile_grid`); None: no limit.
    """

    device: DeviceParams
    periphery: Periphery = field(default_factory=Periphery)
    update: UpdateParams = field(default_factory=UpdateParams)
    pair: PairMode = PairMode.DIFFERENTIAL
    weight_scale: float = 1.0
    cell: CellParams = field(default_factory=CellParams)
    max_inputs: int | None = None
    max_outputs: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair", PairMode(self.pair))
        check_range("weight_scale", self.weight_scale, low=0.0, low_open=True)
        for name in ("max_inputs", "max_outputs"):
            size = getattr(self, name)
            if size is not None and (
                not isinstance(size, int) or isinstance(size, bool) or size < 1
            ):
                raise ConfigError(f"{name} = {size!r}; need a whole number of lines >= 1, or None")

    @property
    def weight_step(self) -> float:
        """Nominal weight change of one coincidence (both devices of a pair move)."""
        factor = 2.0 if self.pair is PairMode.DIFFERENTIAL and not self.one_sided else 1.0
        return self.device.dw_min * self.weight_scale * factor

    @property
    def one_sided(self) -> bool:
        """Pairs of devices that can only be potentiated gradually (abrupt RESET, e.g. PCM)."""
        return self.pair is PairMode.DIFFERENTIAL and self.device.abrupt_reset

    @property
    def weight_bounds(self) -> tuple[float, float]:
        """Nominal range of representable weights."""
        d, s = self.device, self.weight_scale
        if self.pair is PairMode.DIFFERENTIAL:
            return (-s * d.g_range, s * d.g_range)
        return (-s * (d.g_ref - d.g_min), s * (d.g_max - d.g_ref))


class ProgramResult(NamedTuple):
    """Outcome of write-verify programming."""

    iterations: int
    rms_error: float  # root-mean-square weight error at the last verify
    converged: float  # fraction of weights within tolerance


def program_result(iterations: int, err: Tensor, tolerance: float) -> ProgramResult:
    """The outcome of a write-verify from the errors ``err`` left at its last verify (the
    weights it programmed; none: converged)."""
    if err.numel() == 0:
        return ProgramResult(iterations, 0.0, 1.0)
    rms = float(err.pow(2).mean().sqrt())
    return ProgramResult(iterations, rms, float((err.abs() <= tolerance).float().mean()))
