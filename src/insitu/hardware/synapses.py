"""Synaptic drive of spike trains through weight matrices, dense or event-driven.

Spike trains are sparse (a latency-coded pixel fires once in 30 steps; hidden neurons fire a few
times per sample), so summing only the weight rows of inputs that spiked, as the chip's event
routing does, costs (spikes x outputs) instead of (steps x inputs x outputs). Below
``SPARSE_BELOW`` density the event-driven path is used; the result is the same sum.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

SPARSE_BELOW = 0.05
"""Spike density (fraction of nonzero entries) under which the drive is summed event by event."""
WIDE_FROM = 32
"""Fewest outputs for the event-driven sum: finding the events costs a pass over the spikes,
which pays off only when each event adds a long weight row (a 10-neuron readout: dense)."""


def is_sparse(spikes: Tensor, outputs: int = WIDE_FROM) -> bool:
    """True when ``spikes`` is sparse enough (and ``outputs`` many enough) for events."""
    if outputs < WIDE_FROM:
        return False
    return int(torch.count_nonzero(spikes)) < SPARSE_BELOW * spikes.numel()


class Events(NamedTuple):
    """The spikes of a (R, in) or (I, R, in) tensor as instance-major global indices, sorted by
    row: ``rows = i*R + r``, ``inputs = i*in + c``; ``rows_n`` = R."""

    rows: Tensor
    inputs: Tensor
    rows_n: int


def spike_events(spikes: Tensor, instances: int) -> Events:
    """The events of ``spikes`` for ``instances`` chips (shared spikes are repeated)."""
    return Events(*_bags(spikes, instances))


def _bags(spikes: Tensor, instances: int) -> tuple[Tensor, Tensor, int]:
    """The events of ``spikes`` (R, in) shared or (I, R, in) as (global row, global input)
    pairs, instance-major and sorted by row: row = i*R + r, input = i*in + c."""
    rows_n, n_in = spikes.shape[-2], spikes.shape[-1]
    if spikes.dim() == 2:
        rows, cols = torch.nonzero(spikes, as_tuple=True)
        base = torch.arange(instances, device=spikes.device).unsqueeze(1)
        return (base * rows_n + rows).reshape(-1), (base * n_in + cols).reshape(-1), rows_n
    inst, rows, cols = torch.nonzero(spikes, as_tuple=True)
    return inst * rows_n + rows, inst * n_in + cols, rows_n


def synaptic_drive(spikes: Tensor, weights: Tensor, events: Events | None = None) -> Tensor:
    """``spikes @ weights^T`` per instance.

    Args:
        spikes: (R, in) rows shared by every instance, or (I, R, in); values 0 or 1 only (any
            dtype): the event-driven path adds a weight row per nonzero entry.
        weights: (I, out, in) float.
        events: ``spike_events(spikes, I)`` if already known (forces the event-driven sum).

    Returns:
        (I, R, out) float, the summed weights of the inputs that spiked in each row.
    """
    i_n, n_out, n_in = weights.shape
    if events is None:
        if not is_sparse(spikes, n_out):
            return torch.matmul(spikes.to(weights.dtype), weights.transpose(-1, -2))
        events = spike_events(spikes, i_n)
    rows, inputs, rows_n = events
    # One bag of weight rows per output row, summed (a fused gather and add).
    offsets = torch.searchsorted(rows, torch.arange(i_n * rows_n, device=rows.device))
    table = weights.transpose(1, 2).reshape(i_n * n_in, n_out)
    out = torch.nn.functional.embedding_bag(inputs, table, offsets, mode="sum")
    return out.view(i_n, rows_n, n_out)


def weight_gradient(spikes: Tensor, grad_drive: Tensor, events: Events | None = None) -> Tensor:
    """The gradient of ``synaptic_drive(spikes, W)`` wrt W, (I, out, in), given the gradient of
    the drive ``grad_drive`` (I, R, out): ``grad_drive^T @ spikes`` per instance. ``events``:
    the forward pass's ``spike_events`` (forces the event-driven sum)."""
    i_n, rows_n, n_out = grad_drive.shape
    n_in = spikes.shape[-1]
    if events is None:
        if not is_sparse(spikes, n_out):
            return torch.matmul(grad_drive.transpose(-1, -2), spikes.to(grad_drive.dtype))
        events = spike_events(spikes, i_n)
    # The same events grouped by input: each input's bag sums the drive gradients of its rows.
    order = torch.argsort(events.inputs, stable=True)
    inputs, rows = events.inputs[order], events.rows[order]
    offsets = torch.searchsorted(inputs, torch.arange(i_n * n_in, device=inputs.device))
    table = grad_drive.reshape(i_n * rows_n, n_out)
    grad_t = torch.nn.functional.embedding_bag(rows, table, offsets, mode="sum")
    return grad_t.view(i_n, n_in, n_out).transpose(1, 2)
