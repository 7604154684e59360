"""Weight cells: a plain tile or a compound cell, chosen by the tile design's ``cell``.

:func:`make_tile` builds what a chip layer or an ``insitu.nn`` layer holds; every kind offers
the tile's chip protocol (:mod:`insitu.hardware.compound_cell`). The kinds and their papers are
listed in :mod:`insitu.hardware.cell_config`.
"""

from __future__ import annotations

import torch

from insitu.hardware.agad_cell import AGADCell
from insitu.hardware.backend import BackendChoice
from insitu.hardware.cell_config import CellKind, CellParams
from insitu.hardware.compound_cell import CompoundCell, RefreshCell
from insitu.hardware.events import EventLog
from insitu.hardware.mixed_precision_cell import MixedPrecisionCell
from insitu.hardware.residual_cell import ResidualCell
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import TileConfig
from insitu.hardware.tile_grid import TileGrid, needs_grid
from insitu.hardware.transfer_cell import TransferCell

__all__ = [
    "AGADCell",
    "CellKind",
    "CellParams",
    "CompoundCell",
    "MixedPrecisionCell",
    "RefreshCell",
    "ResidualCell",
    "TileGrid",
    "TransferCell",
    "WeightArray",
    "make_tile",
]

WeightArray = Tile | CompoundCell | TileGrid
"""What holds one weight layer: a plain tile, a compound cell, or a grid of either for a layer
larger than one array (the same protocol)."""


def make_tile(
    in_features: int,
    out_features: int,
    config: TileConfig,
    *,
    instances: int = 1,
    generator: torch.Generator,
    log: EventLog | None = None,
    device: torch.device | str = "cpu",
    backend: BackendChoice = "auto",
) -> WeightArray:
    """The weight array of ``config.cell.kind``: a :class:`Tile` for ``single`` (a
    :class:`RefreshCell` with a pair refresh), otherwise the compound cell, its arrays each
    ``in_features`` x ``out_features`` on the same log; a :class:`TileGrid` of them when the
    layer exceeds one array (``config.max_inputs``, ``config.max_outputs``)."""
    if needs_grid(in_features, out_features, config):
        shared = EventLog() if log is None else log
        return TileGrid(
            in_features,
            out_features,
            config,
            instances=instances,
            log=shared,
            make_block=lambda n_in, n_out: _make_array(
                n_in, n_out, config, instances, generator, shared, device, backend
            ),
        )
    return _make_array(
        in_features, out_features, config, instances, generator, log, device, backend
    )


def _make_array(
    in_features: int,
    out_features: int,
    config: TileConfig,
    instances: int,
    generator: torch.Generator,
    log: EventLog | None,
    device: torch.device | str,
    backend: BackendChoice,
) -> Tile | CompoundCell:
    """One array (or compound cell) of the layer's size or smaller."""
    kind = config.cell.kind
    cls: type[Tile | CompoundCell]
    if kind is CellKind.SINGLE:
        cls = RefreshCell if config.cell.refresh_every else Tile
    elif kind is CellKind.MIXED_PRECISION:
        cls = MixedPrecisionCell
    elif kind.residual:
        cls = ResidualCell
    elif kind is CellKind.AGAD:
        cls = AGADCell
    else:
        cls = TransferCell
    return cls(
        in_features,
        out_features,
        config,
        instances=instances,
        generator=generator,
        log=log,
        device=device,
        backend=backend,
    )
