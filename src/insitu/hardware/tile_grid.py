"""A layer larger than one crossbar array, on a grid of arrays.

A chip's arrays have a fixed size (``TileConfig.max_inputs`` input lines by ``max_outputs``
output lines); a layer with more is split into blocks of nearly equal size, one array each,
as chips and simulators map large layers (aihwkit's ``MappingParameter`` splits at 512 inputs
and outputs by default). Every array keeps its own periphery and its own update: the forward
read adds the partial outputs of one output block's arrays after their ADCs, the transposed
read adds the partial errors of one input block's arrays, and an update drives each array with
its slices of the inputs and errors (each array's pulse trains scaled by its own maxima).
Compound cells are split the same way, each block a whole cell with its own transfer schedule:
a Tiki-Taka layer on two arrays moves two columns of A per transfer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from insitu.hardware.compound_cell import CompoundCell
from insitu.hardware.events import Event, EventLog
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import ProgramResult, TileConfig, check_batch, program_target

Block = Tile | CompoundCell  # one array of the grid: a plain tile or a compound cell
T = TypeVar("T")


def block_bounds(size: int, largest: int | None) -> list[tuple[int, int]]:
    """``size`` lines split into the fewest blocks of at most ``largest`` lines, as even as
    possible (the first blocks one line longer): the (start, stop) of each."""
    if largest is None or size <= largest:
        return [(0, size)]
    k = math.ceil(size / largest)
    base, extra = divmod(size, k)
    bounds, start = [], 0
    for b in range(k):
        stop = start + base + (b < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def needs_grid(in_features: int, out_features: int, config: TileConfig) -> bool:
    """Whether a layer of this size exceeds one array of ``config``."""
    return len(block_bounds(in_features, config.max_inputs)) > 1 or (
        len(block_bounds(out_features, config.max_outputs)) > 1
    )


class TileGrid:
    """One layer (``in_features`` x ``out_features``, ``instances`` chips) on a grid of arrays
    built by ``make_block(in_block, out_block)``; the same chip protocol as one array."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        config: TileConfig,
        *,
        instances: int,
        log: EventLog,
        make_block: Callable[[int, int], Block],
    ) -> None:
        self.in_features = in_features
        self.out_features = out_features
        self.instances = instances
        self.config = config
        self.log = log
        self.inputs = block_bounds(in_features, config.max_inputs)
        self.outputs = block_bounds(out_features, config.max_outputs)
        # blocks[j][i]: output block j, input block i.
        self.blocks: list[list[Block]] = [
            [make_block(b - a, e - c) for a, b in self.inputs] for c, e in self.outputs
        ]
        # The last forward read: its input and every array's partial output (after its ADC),
        # which the arrays' overflow flags are judged from (:meth:`over_range`).
        self._last_read: tuple[Tensor, list[list[Tensor]]] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(instances, out_features, in_features)."""
        return (self.instances, self.out_features, self.in_features)

    @property
    def n_devices(self) -> int:
        """Devices of every array, all instances."""
        return sum(b.n_devices for row in self.blocks for b in row)

    def kernel_ready(self) -> bool:
        """False: a chip updates a grid array by array, never pooled with other tiles."""
        return False

    def _each(self, fn: Callable[[Block], T]) -> list[list[T]]:
        return [[fn(b) for b in row] for row in self.blocks]

    def assemble(self, parts: list[list[Tensor]]) -> Tensor:
        """Per-block tensors (..., out block, in block) joined into the layer's (..., out, in)."""
        return torch.cat([torch.cat(row, dim=-1) for row in parts], dim=-2)

    def split(self, t: Tensor) -> list[list[Tensor]]:
        """A layer-sized tensor (..., out, in) cut into the blocks' pieces."""
        return [[t[..., c:e, a:b] for a, b in self.inputs] for c, e in self.outputs]

    # -- the protocol ---------------------------------------------------------------------
    def read(self, x: Tensor) -> Tensor:
        """Forward read (B, in) or (I, B, in) -> (I, B, out): each output block the sum of
        its arrays' reads, added after their ADCs."""
        check_batch(x, self.in_features, self.instances, "read input")
        parts = [
            [blk.read(x[..., a:b]) for (a, b), blk in zip(self.inputs, row, strict=True)]
            for row in self.blocks
        ]
        self._last_read = (x, parts)
        y = torch.cat([functools.reduce(torch.add, row) for row in parts], dim=-1)
        self.log.add(Event.DIGITAL_OP, (len(self.inputs) - 1) * y.numel())
        return y

    def over_range(self, x: Tensor) -> Tensor:
        """The ADC overflow flags (I, B, out) of the last forward read, which ``x`` must have
        driven: an output line is flagged where any of its arrays read at that array's full
        scale, from its own slice of ``x`` (one comparison per array output, one OR per extra
        array)."""
        last = self._last_read
        if last is None or last[0] is not x:
            raise ValueError("over_range judges the grid's last read; read these inputs first")
        periphery = self.config.periphery
        flags = []
        for row in last[1]:
            over = [
                periphery.over_range(part, x[..., a:b])
                for (a, b), part in zip(self.inputs, row, strict=True)
            ]
            flags.append(functools.reduce(torch.logical_or, over))
        out = torch.cat(flags, dim=-1)
        self.log.add(Event.DIGITAL_OP, (2 * len(self.inputs) - 1) * out.numel())
        return out

    def read_transposed(self, d: Tensor) -> Tensor:
        """Transposed read (I, B, out) -> (I, B, in): each input block the sum of its arrays'
        reads."""
        check_batch(d, self.out_features, self.instances, "transposed read input")
        ins = []
        for i in range(len(self.inputs)):
            parts = [
                row[i].read_transposed(d[..., c:e])
                for (c, e), row in zip(self.outputs, self.blocks, strict=True)
            ]
            ins.append(functools.reduce(torch.add, parts))
        z = torch.cat(ins, dim=-1)
        self.log.add(Event.DIGITAL_OP, (len(self.outputs) - 1) * z.numel())
        return z

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """``W -= lr * sum_b d_b x_b^T``, each array from its slices of ``x`` and ``d``."""
        check_batch(x, self.in_features, self.instances, "update input")
        check_batch(d, self.out_features, self.instances, "update error")
        for (c, e), row in zip(self.outputs, self.blocks, strict=True):
            for (a, b), blk in zip(self.inputs, row, strict=True):
                blk.update(x[..., a:b], d[..., c:e], lr)

    def pulse(self, counts: Tensor) -> None:
        """Signed pulse counts (I, out, in), each array its block."""
        for row, pieces in zip(self.blocks, self.split(counts), strict=True):
            for blk, piece in zip(row, pieces, strict=True):
                blk.pulse(piece.contiguous())

    def measure(self) -> Tensor:
        """Every device read one by one: the apparent weights (I, out, in)."""
        return self.assemble(self._each(lambda b: b.measure()))

    def program(
        self, target: Tensor, tolerance: float | None = None, max_iterations: int = 20
    ) -> ProgramResult:
        """Write-verify every array to its block of ``target`` ((out, in) or (I, out, in))."""
        target = program_target(target, self.shape)
        results = [
            (blk.program(piece, tolerance, max_iterations), piece.numel())
            for row, pieces in zip(self.blocks, self.split(target), strict=True)
            for blk, piece in zip(row, pieces, strict=True)
        ]
        total = sum(n for _, n in results)
        return ProgramResult(
            iterations=max(r.iterations for r, _ in results),
            rms_error=math.sqrt(sum(r.rms_error**2 * n for r, n in results) / total),
            converged=sum(r.converged * n for r, n in results) / total,
        )

    def relax(self, seconds: float) -> None:
        """Let ``seconds`` pass on every array."""
        for row in self.blocks:
            for blk in row:
                blk.relax(seconds)

    def state_dict(self) -> dict[str, Any]:
        """Every array's state, by block."""
        return {"blocks": self._each(lambda b: b.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        for row, states in zip(self.blocks, state["blocks"], strict=True):
            for blk, s in zip(row, states, strict=True):
                blk.load_state_dict(s)
