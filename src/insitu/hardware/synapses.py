"""Synaptic drive of spike trains through weight matrices, dense or event-driven.

Spike trains are sparse (a latency-coded pixel fires once in 30 steps; hidden neurons fire a few
times per sample), so summing only the weight rows of inputs that spiked, as the chip's event
routing does, costs (spikes x outputs) instead of (steps x inputs x outputs). Below
``SPARSE_BELOW`` density the event-driven path is used; the result is the same sum. On the CPU
the event-driven sums run as compiled kernels (:mod:`insitu.hardware.synapse_kernels`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.hardware import synapse_kernels

SPARSE_BELOW = 0.05
"""Spike density (fraction of nonzero entries) under which the drive is summed event by event."""


def is_sparse(spikes: Tensor) -> bool:
    """True when ``spikes`` is sparse enough for the event-driven sum."""
    return int(torch.count_nonzero(spikes)) < SPARSE_BELOW * spikes.numel()


def spike_events(spikes: Tensor, weights: Tensor) -> synapse_kernels.Events | None:
    """The events of ``spikes`` as the compiled sums read them, to be passed to both
    :func:`synaptic_drive` and :func:`weight_gradient` (found once, used twice); None where
    the kernels do not serve these tensors."""
    if not synapse_kernels.supported(spikes, weights):
        return None
    return synapse_kernels.events(spikes)


def synaptic_drive(
    spikes: Tensor, weights: Tensor, events: synapse_kernels.Events | None = None
) -> Tensor:
    """``spikes @ weights^T`` per instance.

    Args:
        spikes: (R, in) rows shared by every instance, or (I, R, in); values 0 or 1 only (any
            dtype): the event-driven path adds a weight row per nonzero entry.
        weights: (I, out, in) float.
        events: ``spike_events(spikes, weights)`` if already found.

    Returns:
        (I, R, out) float, the summed weights of the inputs that spiked in each row.
    """
    i_n, n_out, _ = weights.shape
    if events is None:
        events = spike_events(spikes, weights)
    if events is not None:
        if events.n_events < SPARSE_BELOW * spikes.numel():
            return synapse_kernels.drive_from_events(events, spikes.shape, weights)
        return torch.matmul(spikes.to(weights.dtype), weights.transpose(-1, -2))
    if not is_sparse(spikes):
        return torch.matmul(spikes.to(weights.dtype), weights.transpose(-1, -2))
    rows_n = spikes.shape[-2]
    w_t = weights.transpose(1, 2)  # (I, in, out): one weight row per input
    out = torch.zeros((i_n, rows_n, n_out), dtype=weights.dtype, device=weights.device)
    if spikes.dim() == 2:
        rows, cols = torch.nonzero(spikes, as_tuple=True)
        return out.index_add_(1, rows, w_t[:, cols])  # (I, events, out) rows added
    inst, rows, cols = torch.nonzero(spikes, as_tuple=True)
    out.view(i_n * rows_n, n_out).index_add_(0, inst * rows_n + rows, w_t[inst, cols])
    return out


def weight_gradient(
    spikes: Tensor, grad_drive: Tensor, events: synapse_kernels.Events | None = None
) -> Tensor:
    """The gradient of ``synaptic_drive(spikes, W)`` wrt W, (I, out, in), given the gradient of
    the drive ``grad_drive`` (I, R, out): ``grad_drive^T @ spikes`` per instance. ``events``:
    ``spike_events(spikes, ...)`` if already found."""
    i_n, _, n_out = grad_drive.shape
    n_in = spikes.shape[-1]
    if events is None:
        events = spike_events(spikes, grad_drive)
    if events is not None:
        if events.n_events < SPARSE_BELOW * spikes.numel():
            return synapse_kernels.weight_gradient_from_events(events, spikes.shape, grad_drive)
        return torch.matmul(grad_drive.transpose(-1, -2), spikes.to(grad_drive.dtype))
    if not is_sparse(spikes):
        x = spikes.to(grad_drive.dtype)
        return torch.matmul(grad_drive.transpose(-1, -2), x)
    grad_t = torch.zeros((i_n, n_in, n_out), dtype=grad_drive.dtype, device=grad_drive.device)
    if spikes.dim() == 2:
        rows, cols = torch.nonzero(spikes, as_tuple=True)
        grad_t.index_add_(1, cols, grad_drive[:, rows])
    else:
        inst, rows, cols = torch.nonzero(spikes, as_tuple=True)
        grad_t.view(i_n * n_in, n_out).index_add_(0, inst * n_in + cols, grad_drive[inst, rows])
    return grad_t.transpose(1, 2)
