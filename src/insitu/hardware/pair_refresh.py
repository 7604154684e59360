"""Refresh of one-sided device pairs: read both devices, RESET them, write the difference back.

I. Boybat, M. Le Gallo, S. R. Nandakumar, T. Moraitis, T. Parnell, T. Tuma, B. Rajendran,
Y. Leblebici, A. Sebastian and E. Eleftheriou, "Neuromorphic computing with multi-memristive
synapses", Nat. Commun. 9, 2514 (2018); the same refresh serves the mixed-precision training
of Nandakumar et al., Front. Neurosci. 14, 406 (2020).

A differential pair of devices that can only be potentiated gradually (phase-change memory:
SET in steps, RESET abrupt) moves its weight by potentiating one device or the other, so both
climb until one saturates and the weight can no longer move that way. Every ``refresh_every``
updates every device is read; the pairs where a device is above ``refresh_level`` of its range
are RESET and the read weight is written back onto one device by write-verify (each verify
reads the whole tile: counted).
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.devices import DeviceParams
from insitu.devices.response import nominal_device_array, step_size
from insitu.hardware.backend import BackendChoice
from insitu.hardware.compound_cell import CompoundCell
from insitu.hardware.events import EventLog
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import TileConfig


def reset_gain(params: DeviceParams) -> float:
    """The nominal step over the step of a device just RESET (its datasheet response at
    ``g_min``): the share of the error a write-verify round after a RESET should pulse."""
    array = nominal_device_array(params, (1,))
    g_min = torch.full((1,), params.g_min)
    return float(params.dw_min / step_size(params, array, g_min, up=True).clamp(min=1e-12))


def refresh_pairs(tile: Tile, level: float, iterations: int = 5) -> int:
    """Refresh the pairs of ``tile`` with a device above ``level`` of the device range:
    RESET both, then write-verify the read weight back (at most ``iterations`` rounds, each
    pulsing :func:`reset_gain` of the error). The number of weights refreshed (all
    instances)."""
    reads = tile.measure_devices()  # (2, I, out, in)
    dev = tile.config.device
    due = (reads >= dev.g_min + level * dev.g_range).any(0)
    count = int(due.sum())
    if count:
        tile.reset(due)
        w = tile.config.weight_scale * (reads[0] - reads[1])
        gain = min(1.0, reset_gain(dev))
        tile.program(w, max_iterations=iterations, only=due, gain=gain)
    return count


class RefreshCell(CompoundCell):
    """A plain one-sided pair tile with periodic refresh (``single`` with ``refresh_every``)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        config: TileConfig,
        *,
        instances: int = 1,
        generator: torch.Generator,
        log: EventLog | None = None,
        device: torch.device | str = "cpu",
        backend: BackendChoice = "auto",
    ) -> None:
        super().__init__(
            in_features,
            out_features,
            config,
            instances=instances,
            generator=generator,
            log=log,
            device=device,
            backend=backend,
        )
        self.array = self._array()

    @property
    def weights(self) -> Tile:
        return self.array

    def arrays(self) -> dict[str, Tile]:
        return {"array": self.array}

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """The tile's own pulsed update, then a refresh when one is due."""
        self.array.update(x, d, lr)
        self.after_update()
