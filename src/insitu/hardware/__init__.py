"""Chips built from devices: crossbar tiles with periphery, chips made of tiles, event logs.

Knows nothing of learning rules or energy prices.
"""

from insitu.hardware.activation import Activation
from insitu.hardware.chip import ChipConfig, CrossbarChip
from insitu.hardware.events import Event, EventLog
from insitu.hardware.periphery import IDEAL_PERIPHERY, Periphery
from insitu.hardware.tile import PairMode, ProgramResult, Tile, TileConfig, UpdateMode, UpdateParams

__all__ = [
    "IDEAL_PERIPHERY",
    "Activation",
    "ChipConfig",
    "CrossbarChip",
    "Event",
    "EventLog",
    "PairMode",
    "Periphery",
    "ProgramResult",
    "Tile",
    "TileConfig",
    "UpdateMode",
    "UpdateParams",
]
