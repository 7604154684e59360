"""Pulses reaching a tile's devices: signed pulse counts per weight, applied run by run.

An update or a row-by-row programming step is described as entries ``(weight index, signed
count)``, for each weight in time order. Here they become device entries (both devices of a
differential pair move, a one-sided pair only potentiates), are grouped into same-sign runs
(:mod:`insitu.hardware.pulse_runs`) and move only the devices that receive pulses, by the
closed-form response of their pulses. Every pulse is counted in the tile's event log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from insitu.devices import DeviceArray, apply_pulses
from insitu.errors import ConfigError
from insitu.hardware.events import Event
from insitu.hardware.pulse_runs import apply_runs, schedule_runs

if TYPE_CHECKING:
    from insitu.hardware.tile import Tile

Entries = tuple[Tensor, Tensor]
"""(weight index into (I, out, in) flattened, signed pulse count), one entry per weight and
rank-1 update, each weight's entries in time order."""


def count_entries(tile: Tile, n: Tensor) -> Entries | None:
    """Non-zero counts of (I, S, out, in) as entries: (weight index, signed count)."""
    nz = n.flatten(2) != 0  # (I, S, out*in); flattening keeps S order for each device
    inst, _, cell = nz.nonzero(as_tuple=True)
    if inst.numel() == 0:
        return None
    counts = n.flatten(2)[nz]
    return inst * (tile.out_features * tile.in_features) + cell, counts


def column_entries(tile: Tile, columns: Tensor, counts: Tensor) -> Entries:
    """Non-zero counts (I, out, k) of ``columns`` (k,) as weight entries, in row-major order
    (each instance's entries together)."""
    nz = counts != 0
    inst, row, j = nz.nonzero(as_tuple=True)
    return (inst * tile.out_features + row) * tile.in_features + columns[j], counts[nz]


def whole_steps(h: Tensor, step: float, threshold: float, cap: int) -> Tensor:
    """Signed pulse counts for digital accumulators ``h`` (weight units): where ``|h|``
    reaches ``threshold`` steps, its whole number of ``step`` (at least one), at most ``cap``;
    zero elsewhere. The caller subtracts ``counts * step`` from ``h`` (the remainder stays).
    :func:`insitu.hardware.pulse_kernels.fire_whole_steps` is its compiled twin."""
    magnitude = torch.floor(h.abs() / step).clamp(1, cap)
    return torch.where(h.abs() >= threshold * step, h.sign() * magnitude, 0.0)


def device_entries(tile: Tile, weight: Tensor, counts: Tensor) -> Entries:
    """Weight entries to device entries: (device index, signed pulses on that device)."""
    size = tile.instances * tile.out_features * tile.in_features
    if tile.config.one_sided:
        return torch.where(counts > 0, weight, weight + size), counts.abs()
    if tile.devices_per_weight == 2:
        return torch.cat([weight, weight + size]), torch.cat([counts, -counts])
    return weight, counts


def record_pulses(tile: Tile, weight: Tensor, counts: Tensor) -> None:
    """Count the pulses of weight entries per weight and in the event log."""
    tile._pulses.view(-1).index_add_(0, weight, counts.abs())
    per_weight = 1 if tile.config.one_sided else tile.devices_per_weight
    tile.log.add(Event.PULSE, counts.abs().sum() * per_weight)
    tile._w = None


def apply_entries(tile: Tile, weight: Tensor, counts: Tensor) -> None:
    """Apply pulse-count entries to the devices of their weights.

    ``weight`` indexes (I, out, in) flattened; for each weight its entries come in time
    order. Only devices that receive pulses are computed, run by run
    (:mod:`insitu.hardware.pulse_runs`).
    """
    if weight.numel() == 0:
        return  # lines fired, but no row and column pulse coincided
    index, dev_counts = device_entries(tile, weight, counts)
    devices, schedule = schedule_runs(index, dev_counts)
    g = tile._g.view(-1)
    g_hit = g.index_select(0, devices)
    dev = tile.config.device
    if tile._table is not None:
        rows = tile._table.index_select(0, devices)
        g_hit = apply_runs(dev, rows, g_hit, schedule, tile._gen)
    else:
        params = DeviceArray(*tile._packed.index_select(0, devices).unbind(-1))
        for r in range(schedule.shape[1]):
            g_hit = apply_pulses(dev, params, g_hit, schedule[:, r], tile._gen)
    g.index_copy_(0, devices, g_hit)
    record_pulses(tile, weight, counts)


def apply_tile_entries(tiles: Sequence[Tile], entries: Sequence[Entries | None]) -> None:
    """Apply the update entries of several tiles in one pass.

    The tiles' devices are numbered one after another, so one run schedule and one physics call
    per run rank serve them all (fewer, larger operations than tile by tile). Tiles that do not
    share a tabled device kind and a generator are applied one by one instead.
    """
    live = [(t, e) for t, e in zip(tiles, entries, strict=True) if e is not None and e[0].numel()]
    if not live:
        return
    head = live[0][0]
    dev = head.config.device
    if len(live) == 1 or any(
        t._table is None or t.config.device != dev or t._gen is not head._gen for t, _ in live
    ):
        for t, e in live:
            apply_entries(t, *e)
        return
    index_parts, count_parts, offsets = [], [], []
    offset = 0
    for t, (weight, counts) in live:
        index, dev_counts = device_entries(t, weight, counts)
        index_parts.append(index + offset)
        count_parts.append(dev_counts)
        offsets.append(offset)
        offset += t.n_devices
    devices, schedule = schedule_runs(torch.cat(index_parts), torch.cat(count_parts))
    starts = torch.tensor(offsets[1:], dtype=devices.dtype, device=devices.device)
    bounds = torch.searchsorted(devices, starts).tolist()
    local = [p - o for p, o in zip(devices.tensor_split(bounds), offsets, strict=True)]
    pairs = list(zip(live, local, strict=True))
    g_hit = torch.cat([t._g.view(-1).index_select(0, i) for (t, _), i in pairs])
    rows = torch.cat([t._table.index_select(0, i) for (t, _), i in pairs if t._table is not None])
    g_hit = apply_runs(dev, rows, g_hit, schedule, head._gen)
    for ((t, (weight, counts)), i), g_new in zip(pairs, g_hit.tensor_split(bounds), strict=True):
        t._g.view(-1).index_copy_(0, i, g_new)
        record_pulses(t, weight, counts)


def reset_devices(tile: Tile, weights: Tensor) -> None:
    """RESET every device of the weights flagged True in ``weights`` (I, out, in)
    (:meth:`insitu.hardware.tile.Tile.reset`): one abrupt depressing pulse each."""
    dev = tile.config.device
    if not dev.abrupt_reset:
        raise ConfigError(f"device {dev.name} has no abrupt RESET; reset needs one (e.g. pcm)")
    if weights.shape != torch.Size(tile.shape):
        raise ValueError(f"reset flags have shape {tuple(weights.shape)}; need {tile.shape}")
    flat = weights.reshape(-1).nonzero().squeeze(1)
    if flat.numel() == 0:
        return
    size = flat.new_tensor(tile.instances * tile.out_features * tile.in_features)
    devices = torch.cat([flat + k * size for k in range(tile.devices_per_weight)])
    g = tile._g.view(-1)
    params = DeviceArray(*tile._packed.index_select(0, devices).unbind(-1))
    ones = torch.full((devices.numel(),), -1.0, device=g.device)
    g.index_copy_(
        0, devices, apply_pulses(dev, params, g.index_select(0, devices), ones, tile._gen)
    )
    tile._pulses.view(-1).index_add_(
        0, flat, torch.full_like(flat, tile.devices_per_weight, dtype=tile._pulses.dtype)
    )
    tile.log.add(Event.PULSE, devices.numel())
    tile.log.add(Event.UPDATE, weights.any(-1).sum())
    tile._w = None
