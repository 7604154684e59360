"""Synaptic drive of spike trains through weight matrices, dense or event-driven.

Spike trains are sparse (a latency-coded pixel fires once in 30 steps; hidden neurons fire a few
times per sample), so summing only the weight rows of inputs that spiked, as the chip's event
routing does, costs (spikes x outputs) instead of (steps x inputs x outputs). Below
``SPARSE_BELOW`` density the event-driven path is used; the result is the same sum.
"""

from __future__ import annotations

import torch
from torch import Tensor

SPARSE_BELOW = 0.05
"""Spike density (fraction of nonzero entries) under which the drive is summed event by event."""


def is_sparse(spikes: Tensor) -> bool:
    """True when ``spikes`` is sparse enough for the event-driven sum."""
    return int(torch.count_nonzero(spikes)) < SPARSE_BELOW * spikes.numel()


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


def synaptic_drive(spikes: Tensor, weights: Tensor) -> Tensor:
    """``spikes @ weights^T`` per instance.

    Args:
        spikes: (R, in) rows shared by every instance, or (I, R, in); values 0 or 1 only (any
            dtype): the event-driven path adds a weight row per nonzero entry.
        weights: (I, out, in) float.

    Returns:
        (I, R, out) float, the summed weights of the inputs that spiked in each row.
    """
    i_n, n_out, n_in = weights.shape
    if not is_sparse(spikes):
        return torch.matmul(spikes.to(weights.dtype), weights.transpose(-1, -2))
    rows, inputs, rows_n = _bags(spikes, i_n)
    # One bag of weight rows per output row, summed (a fused gather and add).
    offsets = torch.searchsorted(rows, torch.arange(i_n * rows_n, device=rows.device))
    table = weights.transpose(1, 2).reshape(i_n * n_in, n_out)
    out = torch.nn.functional.embedding_bag(inputs, table, offsets, mode="sum")
    return out.view(i_n, rows_n, n_out)


def weight_gradient(spikes: Tensor, grad_drive: Tensor) -> Tensor:
    """The gradient of ``synaptic_drive(spikes, W)`` wrt W, (I, out, in), given the gradient of
    the drive ``grad_drive`` (I, R, out): ``grad_drive^T @ spikes`` per instance."""
    i_n, rows_n, n_out = grad_drive.shape
    n_in = spikes.shape[-1]
    if not is_sparse(spikes):
        return torch.matmul(grad_drive.transpose(-1, -2), spikes.to(grad_drive.dtype))
    # The same events grouped by input: each input's bag sums the drive gradients of its rows.
    inputs, rows, _ = _bags(spikes.transpose(-1, -2), i_n)
    offsets = torch.searchsorted(inputs, torch.arange(i_n * n_in, device=inputs.device))
    table = grad_drive.reshape(i_n * rows_n, n_out)
    grad_t = torch.nn.functional.embedding_bag(rows, table, offsets, mode="sum")
    return grad_t.view(i_n, n_in, n_out).transpose(1, 2)
