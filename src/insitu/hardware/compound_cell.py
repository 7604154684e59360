"""The base of compound weight cells: several device arrays (and digital buffers) behind the
chip protocol of one tile.

A compound cell offers what a :class:`insitu.hardware.tile.Tile` offers (``read``,
``read_transposed``, ``update``, ``pulse``, ``program``, ``measure``, ``relax``, checkpoints),
so chips, trainers and ``insitu.nn`` layers drive it as they drive a tile. Inside, it moves the
weight between its arrays only by their own protocol operations (reads through DAC and ADC,
pulses), each counted in the shared event log: it never reads a true conductance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from insitu.errors import ConfigError
from insitu.hardware.backend import BackendChoice
from insitu.hardware.cell_config import CellParams
from insitu.hardware.events import Event, EventLog
from insitu.hardware.pair_refresh import refresh_pairs, write_pairs
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import ProgramResult, TileConfig, check_batch, program_target


def per_instance(v: Tensor, features: int, instances: int, what: str) -> Tensor:
    """``v`` (B, n) or (I, B, n) checked and as (I, B, n) (a view when it is shared)."""
    check_batch(v, features, instances, what)
    return v.unsqueeze(0).expand(instances, -1, -1) if v.dim() == 2 else v


def column_passes(start: int, due: int, columns: int, device: torch.device) -> list[Tensor]:
    """The column indices of ``due`` column transfers from column ``start`` on, in turn over
    an array of ``columns`` columns, as passes of distinct columns (one read each)."""
    passes = []
    while due > 0:
        k = min(due, columns)
        passes.append((start + torch.arange(k, device=device)) % columns)
        start, due = (start + k) % columns, due - k
    return passes


def due_columns(
    since: int, start: int, every: int, per_transfer: int, columns: int, device: torch.device
) -> tuple[int, int, list[Tensor]]:
    """The transfers due after ``since`` rank-1 updates, one every ``every`` of
    ``per_transfer`` columns, from column ``start`` on: the updates left over, the next
    column, and the columns as passes of distinct columns (:func:`column_passes`)."""
    due = (since // every) * per_transfer
    return since % every, (start + due) % columns, column_passes(start, due, columns, device)


def read_columns(array: Tile, columns: Tensor) -> tuple[Tensor, Tensor]:
    """Read ``columns`` (k distinct indices) of ``array`` by one-hot input vectors through
    its DAC, array and ADC (read noise and quantisation included): the one-hot inputs (k, in)
    and the columns read (I, k, out)."""
    k = columns.numel()
    one_hot = torch.zeros((k, array.in_features), device=columns.device)
    one_hot[torch.arange(k, device=columns.device), columns] = 1.0
    return one_hot, array.read(one_hot)


class CompoundCell:
    """Arrays of one weight layer, times ``instances``; the weight-holding array is
    ``self.weights`` (what forward reads, ``pulse`` and ``measure`` act on by default).

    Subclasses build their arrays with :meth:`_array` and keep their digital state in tensors
    listed by :meth:`_buffers` (saved and restored with the arrays).
    """

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
        self.in_features = in_features
        self.out_features = out_features
        self.instances = instances
        self.config = config
        self.params = config.cell
        self.log = log if log is not None else EventLog()
        self._gen = generator
        self._device = torch.device(device)
        self._backend = backend
        self._array_config = dataclasses.replace(config, cell=CellParams())
        self._updates = 0  # updates since the last refresh check
        if self.params.refresh_every and not config.one_sided:
            raise ConfigError(
                f"cell refresh_every = {self.params.refresh_every}: refresh is for one-sided "
                f"pairs (a device with abrupt RESET, differential pair); {config.device.name} "
                f"in {config.pair} mode is not; set refresh_every 0"
            )
        self._build()

    def _build(self) -> None:
        """Make the cell's device arrays and digital buffers (each kind its own)."""
        raise NotImplementedError

    def _array(self) -> Tile:
        """One more device array of the cell's size and device, on the shared log."""
        return Tile(
            self.in_features,
            self.out_features,
            self._array_config,
            instances=self.instances,
            generator=self._gen,
            log=self.log,
            device=self._device,
            backend=self._backend,
        )

    @property
    def weights(self) -> Tile:
        """The array that holds the weight."""
        raise NotImplementedError

    def arrays(self) -> dict[str, Tile]:
        """The cell's device arrays by name."""
        raise NotImplementedError

    def significance(self) -> dict[str, float]:
        """The factor of each array in the weight the forward read sees (weight array 1)."""
        return {name: float(a is self.weights) for name, a in self.arrays().items()}

    def _buffers(self) -> dict[str, Tensor]:
        """The cell's digital state by name (tensors updated in place)."""
        return {}

    def _counters(self) -> dict[str, int]:
        """The cell's whole-number state by name (subclasses add theirs)."""
        return {"updates": self._updates}

    def _set_counters(self, values: dict[str, int]) -> None:
        """Restore what :meth:`_counters` gave."""
        self._updates = int(values["updates"])

    def after_update(self) -> None:
        """Count an update; every ``refresh_every`` updates refresh the pairs of every array
        (:mod:`insitu.hardware.pair_refresh`)."""
        every = self.params.refresh_every
        if not every:
            return
        self._updates += 1
        if self._updates >= every:
            self._updates = 0
            for array in self.arrays().values():
                refresh_pairs(array, self.params.refresh_level, self.params.refresh_floor)

    # -- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(instances, out_features, in_features)."""
        return (self.instances, self.out_features, self.in_features)

    @property
    def n_devices(self) -> int:
        """Devices of every array of the cell, all instances."""
        return sum(a.n_devices for a in self.arrays().values())

    def kernel_ready(self) -> bool:
        """False: a chip updates a compound cell on its own, never pooled with other tiles."""
        return False

    # -- the protocol ---------------------------------------------------------------------
    def _read_arrays(self) -> list[tuple[float, Tile]]:
        """The arrays a read sees, with their significance: the weight array first, then
        every other array whose significance is not zero (:meth:`significance`)."""
        scale = self.significance()
        weights = self.weights
        others = [(scale[n], a) for n, a in self.arrays().items() if a is not weights and scale[n]]
        return [(1.0, weights), *others]

    def _combined(self, read: Callable[[Tile], Tensor]) -> Tensor:
        """``read`` of every array the forward read sees, scaled by its significance and added
        after the ADCs (two digital operations per extra array and output)."""
        parts = self._read_arrays()
        total = read(parts[0][1])
        for scale, array in parts[1:]:
            total = total + scale * read(array)
        if len(parts) > 1:
            self.log.add(Event.DIGITAL_OP, 2 * (len(parts) - 1) * total.numel())
        return total

    def read(self, x: Tensor) -> Tensor:
        """Forward read of the cell: (B, in) or (I, B, in) -> (I, B, out)."""
        return self._combined(lambda a: a.read(x))

    def read_transposed(self, d: Tensor) -> Tensor:
        """Transposed read of the cell: (I, B, out) -> (I, B, in)."""
        return self._combined(lambda a: a.read_transposed(d))

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """The SGD step ``W -= lr * sum_b d_b x_b^T`` the cell's way."""
        raise NotImplementedError

    def pulse(self, counts: Tensor) -> None:
        """Signed pulse counts (I, out, in) on the weight array, row by row."""
        self.weights.pulse(counts)

    def measure(self) -> Tensor:
        """Every device of the arrays a read sees, read one by one: the apparent weights."""
        return self._combined(lambda a: a.measure())

    def program(
        self, target: Tensor, tolerance: float | None = None, max_iterations: int = 20
    ) -> ProgramResult:
        """Write-verify the weight array to ``target``, every other array to zero, and clear
        the digital buffers (a cell starts with its whole weight in place). One-sided pairs
        that are refreshed are written from RESET, as a refresh writes them
        (:func:`insitu.hardware.pair_refresh.write_pairs`)."""
        target = program_target(target, self.shape)
        zero = torch.zeros(self.shape, device=self._device)
        others = [array for array in self.arrays().values() if array is not self.weights]
        if self.params.refresh_every:
            every = torch.ones(self.shape, dtype=torch.bool, device=self._device)
            for array in others:
                write_pairs(array, zero, every, max_iterations, tolerance)
            result = write_pairs(self.weights, target, every, max_iterations, tolerance)
        else:
            result = self.weights.program(target, tolerance, max_iterations)
            for array in others:
                array.program(zero, tolerance, max_iterations)
        for buffer in self._buffers().values():
            buffer.zero_()
        return result

    def relax(self, seconds: float) -> None:
        """Let ``seconds`` pass on every array."""
        for array in self.arrays().values():
            array.relax(seconds)

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every array's state, the digital buffers and counters."""
        return {
            "arrays": {name: a.state_dict() for name, a in self.arrays().items()},
            "buffers": {name: b.clone() for name, b in self._buffers().items()},
            "counters": dict(self._counters()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        for name, array in self.arrays().items():
            array.load_state_dict(state["arrays"][name])
        for name, buffer in self._buffers().items():
            buffer.copy_(state["buffers"][name])
        self._set_counters(state["counters"])


class RefreshCell(CompoundCell):
    """A plain one-sided pair tile with periodic refresh (``single`` with ``refresh_every``)."""

    def _build(self) -> None:
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
