"""A crossbar tile: one weight layer of devices with its periphery, for N chip instances.

Chip protocol (what an algorithm may call): ``read``, ``read_transposed``, ``update``,
``pulse``, ``program``, ``measure``, ``relax``. The true conductances are private; tests and
plots reach them through :mod:`insitu.hardware.inspect`.

Every state tensor has a leading ``instances`` dimension: N chips with independent
device-to-device variation, driven by the same inputs, trained at once.

The tile is split by concern: its design (:mod:`insitu.hardware.tile_config`), its reads
(:mod:`insitu.hardware.tile_read`), its pulsed updates (:mod:`insitu.hardware.tile_update`) and
the pulses reaching its devices (:mod:`insitu.hardware.tile_pulses`). Whether the reads and
updates run as torch operations or compiled kernels is decided once, when the tile is built
(:func:`insitu.hardware.backend.choose`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from insitu.devices import (
    DeviceArray,
    initial_conductance,
    read_conductance,
    relax,
    sample_device_array,
)
from insitu.devices.pulse_table import has_table, pulse_table
from insitu.errors import ConfigError, check_range
from insitu.hardware import read_kernels as reads
from insitu.hardware.backend import BackendChoice, choose
from insitu.hardware.cell_config import CellKind
from insitu.hardware.events import Event, EventLog
from insitu.hardware.kernel_rng import new_streams
from insitu.hardware.tile_config import (
    PairMode,
    ProgramResult,
    TileConfig,
    UpdateMode,
    UpdateParams,
    check_batch,
    program_result,
    program_target,
)
from insitu.hardware.tile_pulses import (
    Entries,
    apply_tile_entries,
    column_entries,
    count_entries,
    reset_devices,
)
from insitu.hardware.tile_read import ReadBackend, read_backend
from insitu.hardware.tile_update import TorchUpdate, UpdateBackend, update_backend

__all__ = [
    "PairMode",
    "ProgramResult",
    "Tile",
    "TileConfig",
    "UpdateMode",
    "UpdateParams",
    "apply_tile_entries",
    "check_batch",
]


class Tile:
    """One crossbar array of ``out_features`` x ``in_features`` weights, times ``instances``.

    ``backend``: ``auto``, ``torch`` or ``kernel``, the implementation of the reads and
    updates (see :func:`insitu.hardware.backend.choose`; ``INSITU_KERNELS`` is read here).
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
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if v < 1:
                raise ConfigError(f"{name} = {v}; need at least 1")
        if instances < 1:
            raise ConfigError(f"instances = {instances}; need at least 1")
        if config.cell.kind is not CellKind.SINGLE:
            raise ConfigError(
                f"a Tile holds one device (pair) per weight, not a {config.cell.kind} cell; "
                "build it with insitu.hardware.cells.make_tile"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.instances = instances
        self.config = config
        self.log = log if log is not None else EventLog()
        self._gen = generator
        shape = (instances, out_features, in_features)
        dev = config.device
        # Devices per weight (P) lead every state tensor: (P, I, out, in). One tensor for the
        # pair lets one physics call pulse both devices.
        self.devices_per_weight = 2 if config.pair is PairMode.DIFFERENTIAL else 1
        full = (self.devices_per_weight, *shape)
        self._arrays = sample_device_array(dev, full, generator, device)
        self._g = initial_conductance(dev, self._arrays)
        self._packed = self._pack()
        self._table = pulse_table(dev, self._arrays) if has_table(dev) else None
        self._kstreams: np.ndarray | None = None  # the compiled kernels' generator streams
        self._pulses = torch.zeros(shape, device=device)
        self._read_counts: dict[tuple[int, bool], list[tuple[Event, int]]] = {}
        self._w: Tensor | None = None
        self._all_columns: Tensor | None = None  # every column index, for pulse_steps
        # Std of one device's read noise in weight units (both read paths use it).
        self._device_read_std = dev.read_noise * dev.g_range * config.weight_scale
        p = config.periphery
        self._read_params = reads.read_params(
            p.noise_management,
            p.input_bound,
            p.dac_step,
            self._device_read_std * math.sqrt(self.devices_per_weight),
            p.output_noise,
            p.output_bound,
            p.adc_step,
        )
        implementation = choose(device, self._g.dtype, backend)
        self._read: ReadBackend = read_backend(implementation, self)
        self._reference_update = TorchUpdate(self)
        self._update: UpdateBackend = update_backend(implementation, self, self._reference_update)

    def _pack(self) -> Tensor:
        """Per-device parameters (P*I*out*in, fields): one gather fetches a device's parameters."""
        fields = [f.to(torch.float32).reshape(-1) for f in self._arrays]
        return torch.stack(fields, dim=-1)

    # -- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(instances, out_features, in_features)."""
        return (self.instances, self.out_features, self.in_features)

    def _weights(self) -> Tensor:
        if self._w is None:
            s = self.config.weight_scale
            if self.devices_per_weight == 2:
                self._w = s * (self._g[0] - self._g[1])
            else:
                self._w = s * (self._g[0] - self.config.device.g_ref)
        return self._w

    def _batch(self, v: Tensor, features: int, what: str) -> Tensor:
        if v.dim() == 2:
            v = v.unsqueeze(0)  # one op; an expand too only when there are several instances
            if self.instances > 1:
                v = v.expand(self.instances, -1, -1)
        check_batch(v, features, self.instances, what)
        return v

    def _streams(self) -> np.ndarray:
        """The compiled kernels' generator streams, one per instance (made on first use)."""
        if self._kstreams is None:
            self._kstreams = new_streams(self._gen, self.instances)
        return self._kstreams

    @property
    def n_devices(self) -> int:
        """Devices in the tile, all instances: P * I * out * in."""
        return self.devices_per_weight * self.instances * self.out_features * self.in_features

    # -- reads ----------------------------------------------------------------------------
    def _mvm(self, v: Tensor, transposed: bool) -> Tensor:
        """``v`` (I, B, n) through DAC, array (with its read noise) and ADC: ``v @ W.T``, or
        ``v @ W`` when ``transposed`` (driven from the output side)."""
        y = self._read(v, transposed)
        key = (v.shape[0] * v.shape[1], transposed)
        counts = self._read_counts.get(key)
        if counts is None:
            counts = self._read_counts[key] = self._count_read(*key)
        self.log.add_many(counts)
        return y

    def _count_read(self, vectors: int, transposed: bool) -> list[tuple[Event, int]]:
        """The events of reading ``vectors`` input vectors (the same for every read of that
        size, so a tile keeps them)."""
        n_in, n_out = self.in_features, self.out_features
        if transposed:
            n_in, n_out = n_out, n_in
        counts = [
            (Event.ARRAY_READ, vectors),
            (Event.MAC, vectors * n_in * n_out * self.devices_per_weight),
            (Event.DAC, vectors * n_in),
            (Event.ADC, vectors * n_out),
        ]
        if self.config.periphery.noise_management:
            counts.append((Event.DIGITAL_OP, vectors * (n_in + n_out)))
        return counts

    def read(self, x: Tensor) -> Tensor:
        """Forward read ``W x`` through DAC, array and ADC: (B, in) or (I, B, in) -> (I, B, out)."""
        return self._mvm(self._batch(x, self.in_features, "read input"), transposed=False)

    def read_transposed(self, d: Tensor) -> Tensor:
        """Transposed read ``W^T d`` driving the other side: (I, B, out) -> (I, B, in)."""
        d = self._batch(d, self.out_features, "read_transposed input")
        return self._mvm(d, transposed=True)

    def measure_devices(self) -> Tensor:
        """Read every device one by one (noisy, slow): conductances (P, I, out, in), the
        devices of a pair first by first."""
        reads = read_conductance(self.config.device, self._arrays, self._g, self._gen)
        self.log.add(Event.DEVICE_READ, reads.numel())
        return reads

    def measure(self) -> Tensor:
        """Read every device one by one (noisy, slow): the apparent weights (I, out, in)."""
        reads = self.measure_devices()
        s = self.config.weight_scale
        return (
            s * (reads[0] - reads[1])
            if len(reads) == 2
            else s * (reads[0] - self.config.device.g_ref)
        )

    # -- writes ---------------------------------------------------------------------------
    def pulse(self, counts: Tensor) -> None:
        """Apply signed pulse counts per weight (I, out, in), programmed row by row."""
        if counts.shape != torch.Size(self.shape):
            raise ValueError(f"pulse counts have shape {tuple(counts.shape)}; need {self.shape}")
        if torch.is_floating_point(counts) and not torch.equal(counts, counts.round()):
            raise ValueError("pulse counts must be whole numbers")
        entries = count_entries(self, counts.to(torch.float32).unsqueeze(1))
        if entries is not None:
            self._update.apply(*entries)
        self.log.add(Event.UPDATE, self.instances * self.out_features)

    def pulse_steps(self, acc: Tensor, threshold: float) -> None:
        """Fire accumulators ``acc`` (I, out, in; weight units) in place: whole steps (at most
        ``max_pulses``) pulsed row by row and subtracted where ``|acc|`` >= ``threshold`` steps."""
        if acc.shape != torch.Size(self.shape):
            raise ValueError(f"accumulators have shape {tuple(acc.shape)}; need {self.shape}")
        if self._all_columns is None:
            self._all_columns = torch.arange(self.in_features, device=acc.device)
        if self._update.fire(acc, threshold, self._all_columns).weights:
            self.log.add(Event.UPDATE, self.instances * self.out_features)

    def _column_shape(self, values: Tensor, columns: Tensor, what: str) -> int:
        """The number of ``columns``, once ``values`` is checked to be (I, out, k)."""
        k = columns.numel()
        if values.shape != torch.Size((self.instances, self.out_features, k)):
            need = (self.instances, self.out_features, k)
            raise ValueError(f"{what} have shape {tuple(values.shape)}; need {need}")
        return k

    def pulse_column_steps(self, acc: Tensor, columns: Tensor, threshold: float) -> None:
        """Fire accumulators ``acc`` (I, out, k; weight units) of ``columns`` (k distinct
        indices) in place, as :meth:`pulse_steps` does, the pulses written as
        :meth:`pulse_columns` writes them: one parallel cycle per column (how a TTv2 transfer
        writes its buffer's whole steps into C)."""
        k = self._column_shape(acc, columns, "column accumulators")
        if k == 0:
            return
        fired = self._update.fire(acc, threshold, columns)
        self._column_cycles(k, fired.line_pulses, fired.column_trains)

    def pulse_columns(self, columns: Tensor, counts: Tensor) -> None:
        """Apply signed pulse counts (I, out, k) to the devices of ``columns`` (k distinct
        indices): one parallel cycle per column, its line driven while each row line carries
        its signed train (how a transfer writes a column of a slow array)."""
        k = self._column_shape(counts, columns, "column pulse counts")
        if k == 0:
            return
        weight, n = column_entries(self, columns, counts)
        if weight.numel():
            self._update.apply(weight, n.to(torch.float32))
        magnitude = counts.abs()
        self._column_cycles(k, magnitude.sum(), magnitude.amax(1).sum())

    def _column_cycles(self, k: int, line_pulses: Any, column_trains: Any) -> None:
        """The events of ``k`` parallel cycles, one per column: the row trains' pulses plus
        each driven column line's train (as long as its longest row's)."""
        self.log.add(Event.LINE_PULSE, line_pulses + column_trains)
        self.log.add(Event.UPDATE, self.instances * k)

    def reset(self, weights: Tensor) -> None:
        """RESET every device of the weights flagged True in ``weights`` (I, out, in): one
        abrupt depressing pulse each, to near ``g_min`` (devices with ``abrupt_reset`` only)."""
        reset_devices(self, weights)

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """In-place SGD step ``W -= lr * sum_b d_b x_b^T`` done by pulses.

        ``x``: (B, in) or (I, B, in) inputs; ``d``: (I, B, out) errors (dLoss/dOutput).
        With ``sequential`` updates every sample is one rank-1 update, applied in order.
        """
        self._update(x, d, lr)

    def kernel_ready(self) -> bool:
        """Whether :meth:`update` runs as one compiled loop (CPU, stochastic trains of at most
        ``crossbar_kernels.MAX_KERNEL_SLOTS`` slots, a tabled device kind, two-sided pairs,
        kernels chosen when it was built)
        rather than as tensor operations."""
        return self._update.compiled

    def update_entries(self, x: Tensor, d: Tensor, lr: float) -> Entries | None:
        """The pulses of :meth:`update` by the torch reference, as entries (weight index,
        signed count), not applied.

        Lets a chip apply the updates of all its tiles in one pass (:func:`apply_tile_entries`).
        """
        return self._reference_update.entries(x, d, lr)

    def program(
        self,
        target: Tensor,
        tolerance: float | None = None,
        max_iterations: int = 20,
    ) -> ProgramResult:
        """Write-verify: measure, pulse toward ``target`` (I, out, in) or (out, in), repeat.

        Stops when every weight is within ``tolerance`` (default: one nominal weight step) or
        after ``max_iterations``. Weights outside a device's range end at its bound. Each
        iteration pulses the error in nominal steps (one-sided pairs are written by
        :func:`insitu.hardware.pair_refresh.write_pairs` instead).
        """
        target = program_target(target, self.shape)
        if max_iterations < 1:
            raise ConfigError(f"max_iterations = {max_iterations}; need at least 1")
        step = self.config.weight_step
        tol = step if tolerance is None else tolerance
        check_range("tolerance", tol, low=0.0, low_open=True)
        cap = max(self.config.update.max_pulses, 255)
        err = target - self.measure()
        iterations = 0
        for _ in range(max_iterations):
            todo = err.abs() > tol
            if not bool(todo.any()):
                break
            iterations += 1
            self.log.add(Event.PROGRAM_ITERATION, self.instances)
            n = torch.round(err / step)
            n = torch.where(n == 0, err.sign(), n).clamp(-cap, cap) * todo
            self.pulse(n)
            err = target - self.measure()
        return program_result(iterations, err, tol)

    def relax(self, seconds: float) -> None:
        """Let ``seconds`` pass: conductance drift and retention loss."""
        self._g = relax(self.config.device, self._arrays, self._g, seconds)
        self._w = None

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Conductances, device draws and pulse counts (generator state lives with the chip)."""
        state = {
            "g": self._g.clone(),
            "arrays": {k: v.clone() for k, v in self._arrays._asdict().items()},
            "pulses": self._pulses.clone(),
        }
        if self._kstreams is not None:
            state["kernel_streams"] = torch.from_numpy(self._kstreams.view(np.int64).copy())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A copy (deepcopy, unpickling) holds copies of the tensors; what the update backend
        # derived from the old ones (compiled kernels' array views) must be derived anew.
        self.__dict__.update(state)
        self._update.forget()
        self._w = None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self._g = state["g"].clone()
        self._arrays = DeviceArray(**{k: v.clone() for k, v in state["arrays"].items()})
        self._packed = self._pack()
        dev = self.config.device
        self._table = pulse_table(dev, self._arrays) if has_table(dev) else None
        self._kstreams = None
        if "kernel_streams" in state:
            words = state["kernel_streams"]
            if isinstance(words, tuple):  # older checkpoints: (words, kept normal draws)
                words = words[0]
            self._kstreams = words.numpy().view(np.uint64).copy()
        self._pulses = state["pulses"].clone()
        self._w = None
        self._update.forget()
