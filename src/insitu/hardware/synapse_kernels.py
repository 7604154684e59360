"""Compiled CPU kernels for the event-driven synaptic drive and its weight gradient.

:mod:`insitu.hardware.synapses` sums the weight rows of the inputs that spiked. In torch that is
``nonzero``, a gather of one weight row per event and ``index_add_``: a few large temporaries
and several passes over memory for a sum that is tiny (about 1 % of a latency-coded MNIST
picture's inputs spike per step). Here the events are listed once, row by row (CSR), and each
output row adds its events' weight rows in place; the weight gradient walks the same events
column by column (CSC) so every thread owns the gradient rows it writes. The sums run in the
order of the events, as ``index_add_`` does; results equal the torch path's to rounding.
:class:`insitu.hardware.synapses.KernelSynapses` is their face; the reference stands beside it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from numba import prange
from torch import Tensor

from insitu.hardware.kernel_switch import jit, sync_threads

Index = npt.NDArray[np.int64]
Floats = npt.NDArray[np.floating]


@jit(parallel=True)
def _row_events(spikes: npt.NDArray[np.generic]) -> tuple[Index, Index]:
    """Events of ``spikes`` (rows, inputs) as CSR: ``cols[indptr[r]:indptr[r + 1]]`` are the
    inputs that spiked in row r, in increasing order."""
    rows, n_in = spikes.shape
    counts = np.zeros(rows, dtype=np.int64)
    for r in prange(rows):
        c = 0
        for j in range(n_in):
            c += spikes[r, j] != 0  # branch-free: the compiler vectorises the count
        counts[r] = c
    indptr = np.zeros(rows + 1, dtype=np.int64)
    for r in range(rows):
        indptr[r + 1] = indptr[r] + counts[r]
    cols = np.empty(indptr[rows], dtype=np.int64)
    for r in prange(rows):
        k = indptr[r]
        for j in range(n_in):
            if spikes[r, j] != 0:
                cols[k] = j
                k += 1
    return indptr, cols


@jit(parallel=True)
def _drive(
    indptr: Index, cols: Index, rows_per_group: int, shared: bool, w_t: Floats, out: Floats
) -> None:
    """``out[i, r] = sum of w_t[i, c]`` over the events (r, c); ``w_t`` (I, in, out) holds one
    weight row per input. Shared events (one group of rows) serve every instance; otherwise
    event row ``g * rows_per_group + r`` belongs to instance g."""
    i_n, rows, n_out = out.shape
    for rr in prange(i_n * rows):
        i = rr // rows
        r = rr % rows
        e = r if shared else i * rows_per_group + r
        acc = out[i, r]
        acc[:] = 0.0
        for k in range(indptr[e], indptr[e + 1]):
            src = w_t[i, cols[k]]
            for o in range(n_out):
                acc[o] += src[o]


@jit(parallel=True)
def _weight_gradient(
    indptr: Index,
    cols: Index,
    rows_per_group: int,
    shared: bool,
    grad_drive: Floats,
    grad_t: Floats,
) -> None:
    """``grad_t[i, c] = sum of grad_drive[i, r]`` over the events (r, c)."""
    i_n, n_in, n_out = grad_t.shape
    groups = 1 if shared else i_n
    event_rows = indptr.shape[0] - 1
    # CSC by counting sort: for each (group, input) column, its event rows in increasing order.
    col_ptr = np.zeros(groups * n_in + 1, dtype=np.int64)
    for e in range(event_rows):
        g = e // rows_per_group
        for k in range(indptr[e], indptr[e + 1]):
            col_ptr[g * n_in + cols[k] + 1] += 1
    for q in range(groups * n_in):
        col_ptr[q + 1] += col_ptr[q]
    fill = col_ptr[:-1].copy()
    row_of = np.empty(cols.shape[0], dtype=np.int64)
    for e in range(event_rows):
        g = e // rows_per_group
        for k in range(indptr[e], indptr[e + 1]):
            q = g * n_in + cols[k]
            row_of[fill[q]] = e - g * rows_per_group
            fill[q] += 1
    for ic in prange(i_n * n_in):
        i = ic // n_in
        c = ic % n_in
        q = c if shared else i * n_in + c
        acc = grad_t[i, c]
        acc[:] = 0.0
        for k in range(col_ptr[q], col_ptr[q + 1]):
            src = grad_drive[i, row_of[k]]
            for o in range(n_out):
                acc[o] += src[o]


class Events(NamedTuple):
    """The spikes of a (rows, inputs) array row by row (CSR): ``cols[indptr[r]:indptr[r+1]]``
    are the inputs that spiked in row r."""

    indptr: Index
    cols: Index

    @property
    def n_events(self) -> int:
        """Number of events (nonzero entries)."""
        return int(self.cols.shape[0])


def events(spikes: Tensor) -> Events:
    """Events of ``spikes`` (R, in) or (I, R, in) (rows of every instance stacked)."""
    flat = spikes.detach().reshape(-1, spikes.shape[-1]).contiguous().numpy()
    sync_threads()
    return Events(*_row_events(flat))


def drive_from_events(events: Events, spikes_shape: torch.Size, weights: Tensor) -> Tensor:
    """``spikes @ weights^T`` per instance, (I, R, out), from the events of ``spikes``."""
    i_n, n_out, _ = weights.shape
    rows = spikes_shape[-2]
    w_t = weights.detach().transpose(1, 2).contiguous().numpy()
    out = np.empty((i_n, rows, n_out), dtype=w_t.dtype)
    _drive(*events, rows, len(spikes_shape) == 2, w_t, out)
    return torch.from_numpy(out)


def weight_gradient_from_events(
    events: Events, spikes_shape: torch.Size, grad_drive: Tensor
) -> Tensor:
    """``grad_drive^T @ spikes`` per instance, (I, out, in), from the events of ``spikes``."""
    i_n, rows, n_out = grad_drive.shape
    g = grad_drive.detach().contiguous().numpy()
    grad_t = np.empty((i_n, spikes_shape[-1], n_out), dtype=g.dtype)
    _weight_gradient(*events, rows, len(spikes_shape) == 2, g, grad_t)
    return torch.from_numpy(grad_t).transpose(1, 2)
