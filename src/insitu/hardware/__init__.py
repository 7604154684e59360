"""Chips built from devices: crossbar tiles with periphery, chips made of tiles, spiking
analog chips (LIF neurons with mismatch), event logs.

Knows nothing of learning rules or energy prices.
"""

from insitu.hardware.activation import Activation
from insitu.hardware.cell_config import CellKind, CellParams
from insitu.hardware.cells import WeightArray, make_tile
from insitu.hardware.chip import ChipConfig, CrossbarChip
from insitu.hardware.events import Event, EventLog
from insitu.hardware.neurons import IDEAL_NEURON, NeuronArray, NeuronParams
from insitu.hardware.periphery import IDEAL_PERIPHERY, Periphery
from insitu.hardware.spiking import (
    WEIGHT_LIMIT,
    Recording,
    SpikingChip,
    SpikingChipConfig,
    SpikingLayerConfig,
)
from insitu.hardware.tile import (
    PairMode,
    ProgramResult,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
    check_batch,
)
from insitu.hardware.tile_grid import TileGrid

__all__ = [
    "IDEAL_NEURON",
    "IDEAL_PERIPHERY",
    "WEIGHT_LIMIT",
    "Activation",
    "CellKind",
    "CellParams",
    "ChipConfig",
    "CrossbarChip",
    "Event",
    "EventLog",
    "NeuronArray",
    "NeuronParams",
    "PairMode",
    "Periphery",
    "ProgramResult",
    "Recording",
    "SpikingChip",
    "SpikingChipConfig",
    "SpikingLayerConfig",
    "Tile",
    "TileConfig",
    "TileGrid",
    "UpdateMode",
    "UpdateParams",
    "WeightArray",
    "check_batch",
    "make_tile",
]
