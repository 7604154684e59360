"""Inspection hook: the hidden state of a simulated chip, for tests, plots and reports only.

Algorithms must not import this module; a real chip has no such window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from insitu.devices import DeviceArray
from insitu.hardware.cells import WeightArray
from insitu.hardware.compound_cell import CompoundCell
from insitu.hardware.spiking import NeuronArray, SpikingChip
from insitu.hardware.tile import Tile
from insitu.hardware.tile_grid import TileGrid

T = TypeVar("T")


def _array(tile: Tile | CompoundCell) -> Tile:
    """The tile itself, or the array that holds a compound cell's weight."""
    return tile.weights if isinstance(tile, CompoundCell) else tile


def true_weights(tile: WeightArray) -> Tensor:
    """Noise-free weights (I, out, in) implied by the true conductances (a compound cell: the
    weight its forward read sees: its arrays by their significance, ``gamma A + C`` for a
    transfer cell; a grid: its arrays' joined)."""
    if isinstance(tile, TileGrid):
        return _joined(tile, true_weights)
    if isinstance(tile, CompoundCell):
        arrays, scale = tile.arrays(), tile.significance()
        return sum(
            (scale[name] * a._weights() for name, a in arrays.items() if scale[name]),
            torch.zeros(tile.shape, device=tile.weights._g.device),
        )
    return _array(tile)._weights().clone()


def conductances(tile: WeightArray) -> list[Tensor]:
    """True conductances: [G+, G-] for differential pairs, [G] for reference mode (a compound
    cell: of its weight-holding array; a grid: its arrays' joined)."""
    if isinstance(tile, TileGrid):
        return _joined(tile, conductances)
    return [g.clone() for g in _array(tile)._g.unbind(0)]


def device_arrays(tile: WeightArray) -> list[DeviceArray]:
    """The per-device parameters drawn at fabrication (a compound cell: its weight array's; a
    grid: its arrays' joined)."""
    if isinstance(tile, TileGrid):
        return _joined(tile, device_arrays)
    t = _array(tile)
    return [DeviceArray(*(f[k] for f in t._arrays)) for k in range(t.devices_per_weight)]


def pulse_counts(tile: WeightArray) -> Tensor:
    """Cumulative programming pulses received per weight (I, out, in) (a compound cell: by
    every array of it)."""
    if isinstance(tile, TileGrid):
        return _joined(tile, pulse_counts)
    if isinstance(tile, CompoundCell):
        return torch.stack([a._pulses for a in tile.arrays().values()]).sum(0)
    return tile._pulses.clone()


def cell_weights(cell: CompoundCell | TileGrid) -> dict[str, Tensor]:
    """Every array's true weights (I, out, in) by name (``fast``, ``slow``; ``array``; a grid
    of compound cells: its cells' joined)."""
    if isinstance(cell, TileGrid):
        return _joined(cell, lambda b: cell_weights(_compound(b)))
    return {name: a._weights().clone() for name, a in cell.arrays().items()}


def _joined(grid: TileGrid, part: Callable[[Any], T]) -> T:
    """``part`` of every array of ``grid``, joined into the layer's: a tensor, or a list,
    named tuple or dict of them, joined field by field."""
    return cast(T, _join(grid, [[part(b) for b in row] for row in grid.blocks]))


def _join(grid: TileGrid, parts: list[list[Any]]) -> Any:
    first = parts[0][0]
    if isinstance(first, Tensor):
        return grid.assemble(parts)
    if isinstance(first, dict):
        return {k: _join(grid, [[p[k] for p in row] for row in parts]) for k in first}
    fields = [_join(grid, [[p[i] for p in row] for row in parts]) for i in range(len(first))]
    return type(first)(*fields) if isinstance(first, tuple) else fields


def _compound(block: Tile | CompoundCell) -> CompoundCell:
    if not isinstance(block, CompoundCell):
        raise TypeError("cell_weights: this grid holds plain tiles, not compound cells")
    return block


def neuron_parameters(chip: SpikingChip) -> list[NeuronArray]:
    """Per layer, every neuron's parameters as drawn at fabrication, each (I, neurons)."""
    return [NeuronArray(*(f.clone() for f in nrn)) for nrn in chip._neurons]


def spiking_weights(chip: SpikingChip) -> list[Tensor]:
    """Per layer, the stored feed-forward integer weights (I, out, in), int8."""
    return [w.clone() for w in chip._w]


def recurrent_weights(chip: SpikingChip) -> list[Tensor | None]:
    """Per layer, the stored recurrent integer weights (I, n, n), int8; None if not recurrent."""
    return [None if w is None else w.clone() for w in chip._w_rec]
