"""Synaptic drive of spike trains through weight matrices, dense or event-driven.

Spike trains are sparse (a latency-coded pixel fires once in 30 steps; hidden neurons fire a few
times per sample), so summing only the weight rows of inputs that spiked, as the chip's event
routing does, costs (spikes x outputs) instead of (steps x inputs x outputs). Below
``SPARSE_BELOW`` density the event-driven path is used; the result is the same sum.

Two implementations side by side behind :class:`SynapticDrive`: the torch reference
(:func:`synaptic_drive` and :func:`weight_gradient`, what runs on a GPU) and the compiled CPU
event sums (:mod:`insitu.hardware.synapse_kernels`). :func:`insitu.hardware.backend.choose`
picks one when a chip or software model is built; :func:`synaptic_backend` makes it.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from insitu.hardware import synapse_kernels
from insitu.hardware.backend import Implementation
from insitu.hardware.synapse_kernels import Events

SPARSE_BELOW = 0.05
"""Spike density (fraction of nonzero entries) under which the drive is summed event by event."""

_KERNEL_DTYPES = (torch.float32, torch.float64)


def is_sparse(spikes: Tensor) -> bool:
    """True when ``spikes`` is sparse enough for the event-driven sum."""
    return int(torch.count_nonzero(spikes)) < SPARSE_BELOW * spikes.numel()


class SynapticDrive(Protocol):
    """Drive and weight gradient of spikes through weights; the spikes' events, found once,
    serve both (None where an implementation keeps none)."""

    def events(self, spikes: Tensor, weights: Tensor) -> Events | None:
        """The events of ``spikes`` (R, in) or (I, R, in) as this implementation sums them."""
        ...

    def drive(self, spikes: Tensor, weights: Tensor, events: Events | None = None) -> Tensor:
        """:func:`synaptic_drive`; ``events``: ``self.events(spikes, weights)`` if found."""
        ...

    def weight_gradient(
        self, spikes: Tensor, grad_drive: Tensor, events: Events | None = None
    ) -> Tensor:
        """:func:`weight_gradient`; ``events``: ``self.events(spikes, ...)`` if found."""
        ...


class TorchSynapses:
    """The reference: :func:`synaptic_drive` and :func:`weight_gradient`, any device."""

    def events(self, spikes: Tensor, weights: Tensor) -> Events | None:
        return None

    def drive(self, spikes: Tensor, weights: Tensor, events: Events | None = None) -> Tensor:
        return synaptic_drive(spikes, weights)

    def weight_gradient(
        self, spikes: Tensor, grad_drive: Tensor, events: Events | None = None
    ) -> Tensor:
        return weight_gradient(spikes, grad_drive)


class KernelSynapses:
    """The compiled event sums (CSR rows for the drive, CSC columns for the gradient) where the
    spikes are sparse, torch's matrix product where they are not. Weights or gradients that
    are not float32/float64 on the spikes' device take the reference."""

    def events(self, spikes: Tensor, weights: Tensor) -> Events | None:
        if weights.device != spikes.device or weights.dtype not in _KERNEL_DTYPES:
            return None
        return synapse_kernels.events(spikes)

    def drive(self, spikes: Tensor, weights: Tensor, events: Events | None = None) -> Tensor:
        if events is None:
            events = self.events(spikes, weights)
            if events is None:
                return synaptic_drive(spikes, weights)
        if events.n_events < SPARSE_BELOW * spikes.numel():
            return synapse_kernels.drive_from_events(events, spikes.shape, weights)
        return torch.matmul(spikes.to(weights.dtype), weights.transpose(-1, -2))

    def weight_gradient(
        self, spikes: Tensor, grad_drive: Tensor, events: Events | None = None
    ) -> Tensor:
        if events is None:
            events = self.events(spikes, grad_drive)
            if events is None:
                return weight_gradient(spikes, grad_drive)
        if events.n_events < SPARSE_BELOW * spikes.numel():
            return synapse_kernels.weight_gradient_from_events(events, spikes.shape, grad_drive)
        return torch.matmul(grad_drive.transpose(-1, -2), spikes.to(grad_drive.dtype))


def synaptic_backend(implementation: Implementation) -> SynapticDrive:
    """The synaptic drive ``implementation``."""
    if implementation is Implementation.KERNEL:
        return KernelSynapses()
    return TorchSynapses()


def synaptic_drive(spikes: Tensor, weights: Tensor) -> Tensor:
    """``spikes @ weights^T`` per instance (the torch reference).

    Args:
        spikes: (R, in) rows shared by every instance, or (I, R, in); values 0 or 1 only (any
            dtype): the event-driven path adds a weight row per nonzero entry.
        weights: (I, out, in) float.

    Returns:
        (I, R, out) float, the summed weights of the inputs that spiked in each row.
    """
    i_n, n_out, _ = weights.shape
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


def weight_gradient(spikes: Tensor, grad_drive: Tensor) -> Tensor:
    """The gradient of ``synaptic_drive(spikes, W)`` wrt W, (I, out, in), given the gradient of
    the drive ``grad_drive`` (I, R, out): ``grad_drive^T @ spikes`` per instance (the torch
    reference)."""
    i_n, _, n_out = grad_drive.shape
    n_in = spikes.shape[-1]
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
