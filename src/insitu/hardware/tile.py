"""A crossbar tile: one weight layer of devices with its periphery, for N chip instances.

Chip protocol (what an algorithm may call): ``read``, ``read_transposed``, ``update``,
``pulse``, ``program``, ``measure``, ``relax``. The true conductances are private; tests and
plots reach them through :mod:`insitu.hardware.inspect`.

Every state tensor has a leading ``instances`` dimension: N chips with independent
device-to-device variation, driven by the same inputs, trained at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from insitu.devices import (
    DeviceArray,
    DeviceParams,
    NoiseMode,
    apply_pulses,
    initial_conductance,
    read_conductance,
    relax,
    sample_device_array,
)
from insitu.devices.pulse_table import has_table, pulse_table
from insitu.errors import ConfigError, check_range
from insitu.hardware import crossbar_kernels as kernels
from insitu.hardware import read_kernels as reads
from insitu.hardware.events import Event, EventLog
from insitu.hardware.kernel_rng import new_streams
from insitu.hardware.kernel_switch import as_numpy, kernels_enabled
from insitu.hardware.periphery import Periphery
from insitu.hardware.pulse_runs import apply_runs, schedule_runs


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
    """Everything that defines a tile except its size."""

    device: DeviceParams
    periphery: Periphery = field(default_factory=Periphery)
    update: UpdateParams = field(default_factory=UpdateParams)
    pair: PairMode = PairMode.DIFFERENTIAL
    weight_scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair", PairMode(self.pair))
        check_range("weight_scale", self.weight_scale, low=0.0, low_open=True)

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


def _fired(trains: Tensor) -> tuple[Tensor, int]:
    """Indices of the lines that fired in each sample, padded: (I, S, T, L) -> (I, S, F), F.

    Padding indices point at lines that did not fire, whose trains are all zero.
    """
    fired = (trains != 0).any(2)
    width = int(fired.sum(-1).max().item())
    # A stable descending sort puts the fired lines first, in line order.
    order = torch.sort(fired.to(torch.int8), dim=-1, descending=True, stable=True).indices
    return order[..., :width], width


def _float32(t: Tensor) -> Tensor:
    """``t`` as a contiguous float32 tensor (itself when it is one: no call into torch)."""
    if t.dtype == torch.float32 and t.is_contiguous():
        return t
    return t.to(torch.float32).contiguous()


class ProgramResult(NamedTuple):
    """Outcome of write-verify programming."""

    iterations: int
    rms_error: float  # root-mean-square weight error at the last verify
    converged: float  # fraction of weights within tolerance


class Tile:
    """One crossbar array of ``out_features`` x ``in_features`` weights, times ``instances``."""

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
    ) -> None:
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if v < 1:
                raise ConfigError(f"{name} = {v}; need at least 1")
        if instances < 1:
            raise ConfigError(f"instances = {instances}; need at least 1")
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
        u = config.update
        # What the compiled update needs of the tile's design (fixed; see kernel_ready).
        self._kernel_kind = (
            u.mode is UpdateMode.STOCHASTIC
            and u.max_pulses <= kernels.MAX_KERNEL_SLOTS
            and self._table is not None
            and not config.one_sided
        )
        # Compiled update (made on first use): compact table, numpy views, generator streams.
        self._ktable: Tensor | None = None
        self._kviews: kernels.TileViews | None = None
        self._kstreams: np.ndarray | None = None
        self._pulses = torch.zeros(shape, device=device)
        self._read_counts: dict[tuple[int, bool], list[tuple[Event, int]]] = {}
        self._w: Tensor | None = None
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

    # -- reads ----------------------------------------------------------------------------
    def _mvm(self, v: Tensor, transposed: bool) -> Tensor:
        """``v`` (I, B, n) through DAC, array (with its read noise) and ADC: ``v @ W.T``, or
        ``v @ W`` when ``transposed`` (driven from the output side)."""
        w = self._weights()
        if kernels_enabled(v.device) and v.dtype == w.dtype == torch.float32:
            y = self._mvm_compiled(v, w, transposed)
        else:
            y = self._mvm_torch(v, w if transposed else w.transpose(1, 2))
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

    def _read_noise(self, drive: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Every device's independent read noise summed on its output line: the std per input
        vector (I, B, 1) and a standard normal draw per output (like ``y``)."""
        power = drive.pow(2).sum(-1, keepdim=True) * self.devices_per_weight
        draw = torch.randn(y.shape, generator=self._gen, device=y.device)
        return self._device_read_std * power.sqrt(), draw

    def _mvm_torch(self, v: Tensor, weights: Tensor) -> Tensor:
        p = self.config.periphery
        drive, scale = p.convert_input(v)
        y = torch.matmul(drive, weights)
        if self.config.device.read_noise > 0:
            std, noise = self._read_noise(drive, y)
            y = y + std * noise
        return p.convert_output(y, scale, self._gen)

    def _mvm_compiled(self, v: Tensor, w: Tensor, transposed: bool) -> Tensor:
        """:meth:`_mvm_torch` by the compiled reads (:mod:`insitu.hardware.read_kernels`): one
        call for reads of up to ``FUSED_MACS`` multiply-accumulates, the compiled converters
        around torch's matmul above that."""
        i_n, b, n = v.shape
        m = w.shape[2] if transposed else w.shape[1]
        src = as_numpy(v.contiguous())
        streams = self._streams()
        if i_n * b * n * m <= reads.FUSED_MACS:
            y = np.empty((i_n, b, m), dtype=np.float32)
            reads.analog_read(src, as_numpy(w), transposed, y, self._read_params, streams)
            return torch.from_numpy(y)
        drive = np.empty((i_n, b, n), dtype=np.float32)
        scale = np.empty((i_n, b), dtype=np.float32)
        power = np.empty((i_n, b), dtype=np.float32)
        reads.convert_inputs(src, drive, scale, power, self._read_params)
        out = torch.matmul(torch.from_numpy(drive), w if transposed else w.transpose(1, 2))
        reads.convert_outputs(as_numpy(out), scale, power, self._read_params, streams)
        return out

    def _streams(self) -> np.ndarray:
        """The compiled kernels' generator streams, one per instance (made on first use)."""
        if self._kstreams is None:
            self._kstreams = new_streams(self._gen, self.instances)
        return self._kstreams

    def read(self, x: Tensor) -> Tensor:
        """Forward read ``W x`` through DAC, array and ADC: (B, in) or (I, B, in) -> (I, B, out)."""
        return self._mvm(self._batch(x, self.in_features, "read input"), transposed=False)

    def read_transposed(self, d: Tensor) -> Tensor:
        """Transposed read ``W^T d`` driving the other side: (I, B, out) -> (I, B, in)."""
        d = self._batch(d, self.out_features, "read_transposed input")
        return self._mvm(d, transposed=True)

    def measure(self) -> Tensor:
        """Read every device one by one (noisy, slow): the apparent weights (I, out, in)."""
        dev = self.config.device
        reads = read_conductance(dev, self._arrays, self._g, self._gen)
        s = self.config.weight_scale
        w = s * (reads[0] - reads[1]) if len(reads) == 2 else s * (reads[0] - dev.g_ref)
        self.log.add(Event.DEVICE_READ, reads.numel())
        return w

    # -- writes ---------------------------------------------------------------------------
    def _apply(self, n: Tensor) -> None:
        """Apply signed pulse counts of S rank-1 updates (I, S, out, in), in order."""
        entries = self._count_entries(n)
        if entries is not None:
            self._apply_entries(*entries)

    def _count_entries(self, n: Tensor) -> tuple[Tensor, Tensor] | None:
        """Non-zero counts of (I, S, out, in) as entries: (weight index, signed count)."""
        nz = n.flatten(2) != 0  # (I, S, out*in); flattening keeps S order for each device
        inst, _, cell = nz.nonzero(as_tuple=True)
        if inst.numel() == 0:
            return None
        counts = n.flatten(2)[nz]
        return inst * (self.out_features * self.in_features) + cell, counts

    @property
    def n_devices(self) -> int:
        """Devices in the tile, all instances: P * I * out * in."""
        return self.devices_per_weight * self.instances * self.out_features * self.in_features

    def _device_entries(self, weight: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
        """Weight entries to device entries: (device index, signed pulses on that device)."""
        size = self.instances * self.out_features * self.in_features
        if self.config.one_sided:
            return torch.where(counts > 0, weight, weight + size), counts.abs()
        if self.devices_per_weight == 2:
            return torch.cat([weight, weight + size]), torch.cat([counts, -counts])
        return weight, counts

    def _record_pulses(self, weight: Tensor, counts: Tensor) -> None:
        self._pulses.view(-1).index_add_(0, weight, counts.abs())
        per_weight = 1 if self.config.one_sided else self.devices_per_weight
        self.log.add(Event.PULSE, counts.abs().sum() * per_weight)
        self._w = None

    def _apply_entries(self, weight: Tensor, counts: Tensor) -> None:
        """Apply pulse-count entries to the devices of their weights.

        ``weight`` indexes (I, out, in) flattened; for each weight its entries come in time
        order. Only devices that receive pulses are computed, run by run
        (:mod:`insitu.hardware.pulse_runs`).
        """
        if weight.numel() == 0:
            return  # lines fired, but no row and column pulse coincided
        index, dev_counts = self._device_entries(weight, counts)
        devices, schedule = schedule_runs(index, dev_counts)
        g = self._g.view(-1)
        g_hit = g.index_select(0, devices)
        if self._table is not None:
            rows = self._table.index_select(0, devices)
            g_hit = apply_runs(self.config.device, rows, g_hit, schedule, self._gen)
        else:
            params = DeviceArray(*self._packed.index_select(0, devices).unbind(-1))
            for r in range(schedule.shape[1]):
                g_hit = apply_pulses(self.config.device, params, g_hit, schedule[:, r], self._gen)
        g.index_copy_(0, devices, g_hit)
        self._record_pulses(weight, counts)

    def pulse(self, counts: Tensor) -> None:
        """Apply signed pulse counts per weight (I, out, in), programmed row by row."""
        if counts.shape != torch.Size(self.shape):
            raise ValueError(f"pulse counts have shape {tuple(counts.shape)}; need {self.shape}")
        if torch.is_floating_point(counts) and not torch.equal(counts, counts.round()):
            raise ValueError("pulse counts must be whole numbers")
        self._apply(counts.to(torch.float32).unsqueeze(1))
        self.log.add(Event.UPDATE, self.instances * self.out_features)

    def update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """In-place SGD step ``W -= lr * sum_b d_b x_b^T`` done by pulses.

        ``x``: (B, in) or (I, B, in) inputs; ``d``: (I, B, out) errors (dLoss/dOutput).
        With ``sequential`` updates every sample is one rank-1 update, applied in order.
        """
        if self.kernel_ready():
            self.kernel_update(x, d, lr)
            return
        entries = self.update_entries(x, d, lr)
        if entries is not None:
            self._apply_entries(*entries)

    def kernel_ready(self) -> bool:
        """Whether :meth:`update` runs as one compiled loop (CPU, stochastic trains of at most
        64 slots, a tabled device kind, two-sided pairs) rather than as tensor operations."""
        g = self._g  # replaced by relax and load_state_dict
        return self._kernel_kind and g.dtype == torch.float32 and kernels_enabled(g.device)

    def kernel_update(self, x: Tensor, d: Tensor, lr: float) -> None:
        """:meth:`update` by :func:`insitu.hardware.crossbar_kernels.stochastic_update`; only
        when :meth:`kernel_ready` (a chip checks that once for all its tiles)."""
        if not lr >= 0.0:  # the plain comparison first: this runs for every layer and step
            check_range("learning rate", lr, low=0.0)
        x = self._batch(x, self.in_features, "update input")
        d = self._batch(d, self.out_features, "update error")
        cycles = self.instances * (x.shape[1] if self.config.update.sequential else 1)
        if lr == 0.0:
            self.log.add(Event.UPDATE, cycles)
            return
        k = self._kernel_views()
        k.params[kernels.P_LAM] = lr / self.config.weight_step
        totals = np.zeros(2)
        kernels.stochastic_update(
            k.g,
            k.table,
            k.w,
            k.pulses,
            as_numpy(_float32(x)),
            as_numpy(_float32(d)),
            k.params,
            k.state,
            totals,
        )
        self.log.add_many(
            (
                (Event.UPDATE, cycles),
                (Event.LINE_PULSE, int(totals[0])),
                (Event.PULSE, int(totals[1])),
            )
        )

    def _kernel_views(self) -> kernels.TileViews:
        """The kernel's numpy views of this tile's state, made again when a tensor was replaced
        (relax, load_state_dict) and kept otherwise."""
        k = self._kviews
        w = self._weights()
        if k is None or k.g_tensor is not self._g or k.w_tensor is not w:
            if self._ktable is None:
                assert self._table is not None  # kernel_ready checked it
                self._ktable = kernels.kernel_table(self._table)
            if not w.is_contiguous():
                w = self._w = w.contiguous()
            dev, u = self.config.device, self.config.update
            params = np.zeros(kernels.N_PARAMS)
            params[kernels.P_MAX_PULSES] = u.max_pulses
            params[kernels.P_DYNAMIC] = u.dynamic_length
            params[kernels.P_SEQUENTIAL] = u.sequential
            params[kernels.P_PAIR] = self.devices_per_weight
            params[kernels.P_WEIGHT_SCALE] = self.config.weight_scale
            params[kernels.P_G_REF] = dev.g_ref
            params[kernels.P_SIGMA2] = dev.dw_min_std**2
            params[kernels.P_MULTIPLICATIVE] = dev.noise_mode is NoiseMode.MULTIPLICATIVE
            params[kernels.P_G_MIN] = dev.g_min
            params[kernels.P_DELTA] = (
                0.0 if dev.n_states is None else dev.g_range / (dev.n_states - 1)
            )
            k = self._kviews = kernels.TileViews(
                self._g,
                w,
                as_numpy(self._g.view(-1)),
                as_numpy(self._ktable),
                as_numpy(w),
                as_numpy(self._pulses),
                params,
                self._streams(),
            )
        return k

    def update_entries(self, x: Tensor, d: Tensor, lr: float) -> tuple[Tensor, Tensor] | None:
        """The pulses of :meth:`update` as entries (weight index, signed count), not applied.

        Lets a chip apply the updates of all its tiles in one pass (:func:`update_tiles`).
        """
        check_range("learning rate", lr, low=0.0)
        x = self._batch(x, self.in_features, "update input")
        d = self._batch(d, self.out_features, "update error")
        u = self.config.update
        samples = x.shape[1]
        self.log.add(Event.UPDATE, self.instances * (samples if u.sequential else 1))
        if u.mode is UpdateMode.COUNT:
            if u.sequential:
                want = -lr * d.unsqueeze(-1) * x.unsqueeze(-2) / self.config.weight_step
            else:
                want = (
                    -lr * torch.matmul(d.transpose(1, 2), x).unsqueeze(1) / self.config.weight_step
                )
            return self._count_entries(self._round_counts(want))
        if u.mode is UpdateMode.MANHATTAN:
            fx = x.sign() * (x.abs() > u.threshold * x.abs().amax(-1, keepdim=True))
            fd = d.sign() * (d.abs() > u.threshold * d.abs().amax(-1, keepdim=True))
            self.log.add(Event.LINE_PULSE, fx.abs().sum() + fd.abs().sum())
            return self._coincidence_entries(fx.unsqueeze(2), fd.unsqueeze(2), u.sequential)
        trains = self._pulse_trains(x, d, lr)
        if trains is None:
            return None
        return self._coincidence_entries(*trains, sequential=u.sequential)

    def _round_counts(self, want: Tensor) -> Tensor:
        """Pulse counts from wanted steps, stochastically rounded (unbiased) and capped."""
        m = self.config.update.max_pulses
        floor = want.floor()
        up = torch.rand(want.shape, generator=self._gen, device=want.device) < (want - floor)
        self.log.add(Event.DIGITAL_OP, want.numel())
        return (floor + up.to(want.dtype)).clamp(-m, m)

    def _pulse_trains(self, x: Tensor, d: Tensor, lr: float) -> tuple[Tensor, Tensor] | None:
        """Signed stochastic pulse trains of every sample: (I, S, T, in) and (I, S, T, out).

        A line fires in a slot with probability proportional to its value; the two scales are
        balanced so both sides use their range, and their product makes the expected number of
        coincidences equal to the wanted update in units of one weight step.
        """
        u = self.config.update
        lam = lr / self.config.weight_step
        ax, ad = x.abs(), d.abs()
        mx = ax.amax(-1, keepdim=True)
        md = ad.amax(-1, keepdim=True)
        need = lam * mx * md
        top = float(need.max())  # the one synchronisation: the longest train sets the slots
        if top == 0.0:
            return None
        if u.dynamic_length:
            length = need.ceil().clamp(1, u.max_pulses)
            slots = int(min(max(math.ceil(top), 1), u.max_pulses))
        else:
            length = torch.full_like(need, float(u.max_pulses))
            slots = u.max_pulses
        inst, samples = x.shape[0], x.shape[1]
        # Balanced scales: cx * cd = lam / length, cx / cd = md / mx.
        cx = (lam * md / (length * mx.clamp(min=1e-30))).sqrt()
        cd = (lam * mx / (length * md.clamp(min=1e-30))).sqrt()
        px = (ax * cx).clamp(max=1.0).unsqueeze(2)  # (I, S, 1, in)
        pd = (ad * cd).clamp(max=1.0).unsqueeze(2)
        shape_x = (inst, samples, slots, self.in_features)
        shape_d = (inst, samples, slots, self.out_features)
        bx = torch.rand(shape_x, generator=self._gen, device=x.device) < px
        bd = torch.rand(shape_d, generator=self._gen, device=x.device) < pd
        if slots > 1 and u.dynamic_length:  # samples with shorter trains leave slots silent
            live = torch.arange(slots, device=x.device).view(1, 1, slots, 1) < length.unsqueeze(2)
            bx &= live
            bd &= live
        self.log.add(Event.LINE_PULSE, bx.sum() + bd.sum())
        sx = torch.where(bx, x.sign().unsqueeze(2), 0.0)
        sd = torch.where(bd, d.sign().unsqueeze(2), 0.0)
        return sx, sd

    def _apply_coincidences(self, sx: Tensor, sd: Tensor, sequential: bool) -> None:
        """Pulse the devices where row and column trains coincide (see _coincidence_entries)."""
        entries = self._coincidence_entries(sx, sd, sequential)
        if entries is not None:
            self._apply_entries(*entries)

    def _coincidence_entries(
        self, sx: Tensor, sd: Tensor, sequential: bool
    ) -> tuple[Tensor, Tensor] | None:
        """Entries (weight index, signed count) where row and column trains coincide.

        ``sx`` (I, S, T, in) and ``sd`` (I, S, T, out) are the signed trains of S samples. Only
        lines that fired can see a coincidence: each sample's counts are formed on its own
        block of fired rows x fired columns (padded to the largest block), never on the array.
        """
        if not sequential:
            sx, sd = sx.flatten(1, 2).unsqueeze(1), sd.flatten(1, 2).unsqueeze(1)
        rows, row_n = _fired(sd)
        cols, col_n = _fired(sx)
        if row_n == 0 or col_n == 0:
            return None
        sd_b = sd.gather(3, rows.unsqueeze(2).expand(-1, -1, sd.shape[2], -1))
        sx_b = sx.gather(3, cols.unsqueeze(2).expand(-1, -1, sx.shape[2], -1))
        n = -torch.matmul(sd_b.transpose(2, 3), sx_b)  # (I, S, R, C); padding gives zeros
        cell = rows.unsqueeze(3) * self.in_features + cols.unsqueeze(2)
        inst = torch.arange(self.instances, device=n.device).view(-1, 1, 1, 1)
        weight = inst * (self.out_features * self.in_features) + cell
        nz = n != 0
        # Entries in (I, S, R, C) order: for each weight, its samples come in time order.
        return weight.expand_as(n)[nz], n[nz]

    def program(
        self, target: Tensor, tolerance: float | None = None, max_iterations: int = 20
    ) -> ProgramResult:
        """Write-verify: measure, pulse toward ``target`` (I, out, in) or (out, in), repeat.

        Stops when every weight is within ``tolerance`` (default: one nominal weight step) or
        after ``max_iterations``. Weights outside a device's range end at its bound.
        """
        if target.shape == torch.Size(self.shape[1:]):
            target = target.unsqueeze(0).expand(self.shape)
        if target.shape != torch.Size(self.shape):
            raise ValueError(
                f"program target has shape {tuple(target.shape)}; "
                f"need {self.shape} or {self.shape[1:]}"
            )
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
        rms = float(err.pow(2).mean().sqrt())
        converged = float((err.abs() <= tol).to(torch.float32).mean())
        return ProgramResult(iterations, rms, converged)

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

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self._g = state["g"].clone()
        self._arrays = DeviceArray(**{k: v.clone() for k, v in state["arrays"].items()})
        self._packed = self._pack()
        dev = self.config.device
        self._table = pulse_table(dev, self._arrays) if has_table(dev) else None
        self._ktable = None
        self._kviews = None
        self._kstreams = None
        if "kernel_streams" in state:
            words = state["kernel_streams"]
            if isinstance(words, tuple):  # older checkpoints: (words, kept normal draws)
                words = words[0]
            self._kstreams = words.numpy().view(np.uint64).copy()
        self._pulses = state["pulses"].clone()
        self._w = None


def apply_tile_entries(
    tiles: Sequence[Tile], entries: Sequence[tuple[Tensor, Tensor] | None]
) -> None:
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
            t._apply_entries(*e)
        return
    index_parts, count_parts, offsets = [], [], []
    offset = 0
    for t, (weight, counts) in live:
        index, dev_counts = t._device_entries(weight, counts)
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
        t._record_pulses(weight, counts)
