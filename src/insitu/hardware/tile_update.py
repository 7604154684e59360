"""A tile's parallel pulsed update ``W -= lr * sum_b d_b x_b^T``: the torch reference and the
compiled CPU update side by side, behind one interface.

The reference turns the wanted outer product into pulses as tensor operations (stochastic
coincident trains, deterministic counts or Manhattan sign pulses) and applies them through
:mod:`insitu.hardware.tile_pulses`. The compiled update
(:func:`insitu.hardware.crossbar_kernels.stochastic_update`) does a whole mini-batch of
stochastic rank-1 updates in one loop per chip instance; it serves tiles with stochastic trains
of at most ``MAX_KERNEL_SLOTS`` slots, a tabled device kind and two-sided pairs, on the CPU.
:func:`insitu.hardware.backend.choose` picks one when the tile is built; :func:`update_backend`
makes it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from insitu.devices import NoiseMode
from insitu.errors import check_range
from insitu.hardware import crossbar_kernels as kernels
from insitu.hardware import pulse_kernels as pk
from insitu.hardware.backend import Implementation
from insitu.hardware.events import Event
from insitu.hardware.kernel_switch import as_numpy
from insitu.hardware.tile_config import TileConfig, UpdateMode
from insitu.hardware.tile_pulses import (
    Entries,
    apply_entries,
    column_entries,
    count_entries,
    whole_steps,
)

if TYPE_CHECKING:
    from insitu.hardware.tile import Tile


class UpdateBackend(Protocol):
    """A tile's pulsed update; ``compiled`` says whether it runs as one compiled loop (a chip
    then updates its tiles one by one instead of pooling their pulses)."""

    compiled: bool

    def __call__(self, x: Tensor, d: Tensor, lr: float) -> None:
        """In-place SGD step from inputs ``x`` (B, in) or (I, B, in) and errors ``d``."""
        ...

    def forget(self) -> None:
        """Drop what was derived from the tile's state (it was replaced)."""
        ...

    def apply(self, weight: Tensor, counts: Tensor) -> None:
        """Apply signed pulse counts to the devices of the weights ``weight`` (indices into
        the flat (I, out, in) weights, in instance order; each weight's entries in time order)."""
        ...

    def fire(self, acc: Tensor, threshold: float, columns: Tensor) -> Fired:
        """Pulse the whole weight steps of digital accumulators ``acc`` (I, out, k) of the
        tile's ``columns`` (k,) that reach ``threshold`` steps and subtract them
        (:meth:`Tile.pulse_steps`, :meth:`Tile.pulse_column_steps`)."""
        ...


class Fired(NamedTuple):
    """What a firing of accumulators pulsed (ints, or 0-dim tensors on the torch path)."""

    weights: int | Tensor  # weights pulsed
    line_pulses: int | Tensor  # pulses of all row trains (one per pulse)
    column_trains: int | Tensor  # length of all column trains (each column's longest row)


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


class TorchUpdate:
    """The reference: pulses formed and applied as tensor operations, every update mode."""

    compiled = False

    def __init__(self, tile: Tile) -> None:
        self._tile = tile

    def __call__(self, x: Tensor, d: Tensor, lr: float) -> None:
        entries = self.entries(x, d, lr)
        if entries is not None:
            apply_entries(self._tile, *entries)

    def forget(self) -> None:
        """Nothing is kept between updates."""

    def apply(self, weight: Tensor, counts: Tensor) -> None:
        """Apply pulse-count entries by tensor operations (:func:`apply_entries`)."""
        apply_entries(self._tile, weight, counts)

    def fire(self, acc: Tensor, threshold: float, columns: Tensor) -> Fired:
        tile = self._tile
        step = tile.config.weight_step
        n = whole_steps(acc, step, threshold, tile.config.update.max_pulses)
        weight, counts = column_entries(tile, columns, n)
        if weight.numel():
            acc.sub_(n * step)
            apply_entries(tile, weight, counts)
        magnitude = n.abs()
        return Fired(weight.numel(), magnitude.sum(), magnitude.amax(1).sum())

    def entries(self, x: Tensor, d: Tensor, lr: float) -> Entries | None:
        """The pulses of the update as entries (weight index, signed count), not applied."""
        tile = self._tile
        check_range("learning rate", lr, low=0.0)
        x = tile._batch(x, tile.in_features, "update input")
        d = tile._batch(d, tile.out_features, "update error")
        config = tile.config
        u = config.update
        samples = x.shape[1]
        tile.log.add(Event.UPDATE, tile.instances * (samples if u.sequential else 1))
        if u.mode is UpdateMode.COUNT:
            if u.sequential:
                want = -lr * d.unsqueeze(-1) * x.unsqueeze(-2) / config.weight_step
            else:
                want = -lr * torch.matmul(d.transpose(1, 2), x).unsqueeze(1) / config.weight_step
            return count_entries(tile, self._round_counts(want))
        if u.mode is UpdateMode.MANHATTAN:
            fx = x.sign() * (x.abs() > u.threshold * x.abs().amax(-1, keepdim=True))
            fd = d.sign() * (d.abs() > u.threshold * d.abs().amax(-1, keepdim=True))
            tile.log.add(Event.LINE_PULSE, fx.abs().sum() + fd.abs().sum())
            return self.coincidence_entries(fx.unsqueeze(2), fd.unsqueeze(2), u.sequential)
        trains = self._pulse_trains(x, d, lr)
        if trains is None:
            return None
        return self.coincidence_entries(*trains, sequential=u.sequential)

    def _round_counts(self, want: Tensor) -> Tensor:
        """Pulse counts from wanted steps, stochastically rounded (unbiased) and capped."""
        tile = self._tile
        m = tile.config.update.max_pulses
        floor = want.floor()
        up = torch.rand(want.shape, generator=tile._gen, device=want.device) < (want - floor)
        tile.log.add(Event.DIGITAL_OP, want.numel())
        return (floor + up.to(want.dtype)).clamp(-m, m)

    def _pulse_trains(self, x: Tensor, d: Tensor, lr: float) -> tuple[Tensor, Tensor] | None:
        """Signed stochastic pulse trains of every sample: (I, S, T, in) and (I, S, T, out).

        A line fires in a slot with probability proportional to its value; the two scales are
        balanced so both sides use their range, and their product makes the expected number of
        coincidences equal to the wanted update in units of one weight step.
        """
        tile = self._tile
        u = tile.config.update
        lam = lr / tile.config.weight_step
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
        shape_x = (inst, samples, slots, tile.in_features)
        shape_d = (inst, samples, slots, tile.out_features)
        bx = torch.rand(shape_x, generator=tile._gen, device=x.device) < px
        bd = torch.rand(shape_d, generator=tile._gen, device=x.device) < pd
        if slots > 1 and u.dynamic_length:  # samples with shorter trains leave slots silent
            live = torch.arange(slots, device=x.device).view(1, 1, slots, 1) < length.unsqueeze(2)
            bx &= live
            bd &= live
        tile.log.add(Event.LINE_PULSE, bx.sum() + bd.sum())
        sx = torch.where(bx, x.sign().unsqueeze(2), 0.0)
        sd = torch.where(bd, d.sign().unsqueeze(2), 0.0)
        return sx, sd

    def apply_coincidences(self, sx: Tensor, sd: Tensor, sequential: bool) -> None:
        """Pulse the devices where row and column trains coincide (see coincidence_entries)."""
        entries = self.coincidence_entries(sx, sd, sequential)
        if entries is not None:
            apply_entries(self._tile, *entries)

    def coincidence_entries(self, sx: Tensor, sd: Tensor, sequential: bool) -> Entries | None:
        """Entries (weight index, signed count) where row and column trains coincide.

        ``sx`` (I, S, T, in) and ``sd`` (I, S, T, out) are the signed trains of S samples. Only
        lines that fired can see a coincidence: each sample's counts are formed on its own
        block of fired rows x fired columns (padded to the largest block), never on the array.
        """
        tile = self._tile
        if not sequential:
            sx, sd = sx.flatten(1, 2).unsqueeze(1), sd.flatten(1, 2).unsqueeze(1)
        rows, row_n = _fired(sd)
        cols, col_n = _fired(sx)
        if row_n == 0 or col_n == 0:
            return None
        sd_b = sd.gather(3, rows.unsqueeze(2).expand(-1, -1, sd.shape[2], -1))
        sx_b = sx.gather(3, cols.unsqueeze(2).expand(-1, -1, sx.shape[2], -1))
        n = -torch.matmul(sd_b.transpose(2, 3), sx_b)  # (I, S, R, C); padding gives zeros
        cell = rows.unsqueeze(3) * tile.in_features + cols.unsqueeze(2)
        inst = torch.arange(tile.instances, device=n.device).view(-1, 1, 1, 1)
        weight = inst * (tile.out_features * tile.in_features) + cell
        nz = n != 0
        # Entries in (I, S, R, C) order: for each weight, its samples come in time order.
        return weight.expand_as(n)[nz], n[nz]


def kernel_serves(config: TileConfig, tabled: bool) -> bool:
    """Whether the compiled update implements this tile design: stochastic trains of at most
    ``MAX_KERNEL_SLOTS`` slots, a tabled device kind (``tabled``), two-sided pairs."""
    u = config.update
    return (
        u.mode is UpdateMode.STOCHASTIC
        and u.max_pulses <= kernels.MAX_KERNEL_SLOTS
        and tabled
        and not config.one_sided
    )


class KernelUpdate:
    """The update by :func:`insitu.hardware.crossbar_kernels.stochastic_update`: one compiled
    loop per chip instance (only for designs :func:`kernel_serves`)."""

    compiled = True

    def __init__(self, tile: Tile) -> None:
        self._tile = tile
        self._views: pk.TileViews | None = None
        self._table_of: Tensor | None = None  # the pulse table the compact table was made from
        self._table: Tensor | None = None

    def __call__(self, x: Tensor, d: Tensor, lr: float) -> None:
        if not lr >= 0.0:  # the plain comparison first: this runs for every layer and step
            check_range("learning rate", lr, low=0.0)
        tile = self._tile
        x = tile._batch(x, tile.in_features, "update input")
        d = tile._batch(d, tile.out_features, "update error")
        cycles = tile.instances * (x.shape[1] if tile.config.update.sequential else 1)
        if lr == 0.0:
            tile.log.add(Event.UPDATE, cycles)
            return
        k = self._kernel_views()
        k.params[pk.P_LAM] = lr / tile.config.weight_step
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
        tile.log.add_many(
            (
                (Event.UPDATE, cycles),
                (Event.LINE_PULSE, int(totals[0])),
                (Event.PULSE, int(totals[1])),
            )
        )

    def apply(self, weight: Tensor, counts: Tensor) -> None:
        """Apply pulse-count entries in one compiled loop, each instance's noise from its
        stream (:func:`insitu.hardware.pulse_kernels.pulse_weights`)."""
        if weight.numel() == 0:
            return
        tile = self._tile
        k = self._kernel_views()
        per_instance = tile.out_features * tile.in_features
        bounds = torch.arange(tile.instances + 1, device=weight.device) * per_instance
        starts = torch.searchsorted(weight, bounds)
        done = pk.pulse_weights(
            k.g,
            k.table,
            k.w,
            k.pulses,
            as_numpy(weight.to(torch.int64).contiguous()),
            as_numpy(counts.to(torch.int64).contiguous()),
            as_numpy(starts.to(torch.int64)),
            k.params,
            k.state,
        )
        tile.log.add(Event.PULSE, int(done))

    def fire(self, acc: Tensor, threshold: float, columns: Tensor) -> Fired:
        tile = self._tile
        if acc.dtype != torch.float32 or not acc.is_contiguous():
            raise ValueError("a fired accumulator must be a contiguous float32 tensor")
        k = self._kernel_views()
        done, fired, line_pulses, column_trains = pk.fire_whole_steps(
            k.g,
            k.table,
            k.w,
            k.pulses,
            as_numpy(acc),
            as_numpy(columns.to(torch.int64)),
            tile.in_features,
            tile.config.weight_step,
            threshold,
            tile.config.update.max_pulses,
            k.params,
            k.state,
        )
        tile.log.add(Event.PULSE, int(done))
        return Fired(int(fired), int(line_pulses), int(column_trains))

    def _kernel_views(self) -> pk.TileViews:
        """The kernel's numpy views of the tile's state, made again when a tensor was replaced
        (relax, load_state_dict) and kept otherwise."""
        tile = self._tile
        k = self._views
        w = tile._weights()
        if k is None or k.g_tensor is not tile._g or k.w_tensor is not w:
            if self._table is None or self._table_of is not tile._table:
                assert tile._table is not None  # kernel_serves checked it
                self._table_of, self._table = tile._table, pk.kernel_table(tile._table)
            if not w.is_contiguous():
                w = tile._w = w.contiguous()
            dev, u = tile.config.device, tile.config.update
            params = np.zeros(pk.N_PARAMS)
            params[pk.P_MAX_PULSES] = u.max_pulses
            params[pk.P_DYNAMIC] = u.dynamic_length
            params[pk.P_SEQUENTIAL] = u.sequential
            params[pk.P_PAIR] = tile.devices_per_weight
            params[pk.P_WEIGHT_SCALE] = tile.config.weight_scale
            params[pk.P_G_REF] = dev.g_ref
            params[pk.P_SIGMA2] = dev.dw_min_std**2
            params[pk.P_MULTIPLICATIVE] = dev.noise_mode is NoiseMode.MULTIPLICATIVE
            params[pk.P_G_MIN] = dev.g_min
            params[pk.P_DELTA] = 0.0 if dev.n_states is None else dev.g_range / (dev.n_states - 1)
            k = self._views = pk.TileViews(
                tile._g,
                w,
                as_numpy(tile._g.view(-1)),
                as_numpy(self._table),
                as_numpy(w),
                as_numpy(tile._pulses),
                params,
                tile._streams(),
            )
        return k

    def forget(self) -> None:
        """Drop the views and the compact table (the tile's state was replaced)."""
        self._views = None
        self._table_of = self._table = None


def update_backend(
    implementation: Implementation, tile: Tile, reference: TorchUpdate
) -> UpdateBackend:
    """The update ``implementation`` of ``tile`` where its kernel serves the tile's design,
    ``reference`` (the tile's :class:`TorchUpdate`) otherwise."""
    tabled = tile._table is not None
    float32 = tile._g.dtype == torch.float32
    if implementation is Implementation.KERNEL and float32 and kernel_serves(tile.config, tabled):
        return KernelUpdate(tile)
    return reference
