"""The compiled twin of AGAD's digital demodulation of a transfer's reads
(:meth:`insitu.hardware.agad_cell.AGADCell._demodulate`): the same float32 arithmetic as the
torch reference, in one loop instead of about twenty small tensor operations per transfer
(about 10 % of an AGAD training step on the CPU; benchmarks/RESULTS.md)."""

from __future__ import annotations

import numpy as np

from insitu.hardware.kernel_switch import jit


@jit()
def demodulate(
    v: np.ndarray,
    columns: np.ndarray,
    chopper: np.ndarray,
    reference: np.ndarray,
    tail_mean: np.ndarray,
    reads: np.ndarray,
    period: int,
    beta: np.float32,
    signal: np.ndarray,
) -> int:
    """For the reads ``v`` (I, k, out) of ``columns`` (k,): ``signal`` (I, k, out) = c (a - p);
    the leaky means ``tail_mean`` (I, out, in) move by ``beta`` toward the reads; each column's
    read count (``reads``, (in,)) grows, and where it reaches ``period`` it restarts, the
    column's ``chopper`` (I, in) sign flips and its ``reference`` (I, out, in) takes the mean.
    Returns the number of columns switched."""
    instances, k, out = v.shape
    switched = 0
    for c in range(k):
        col = columns[c]
        count = reads[col] + 1
        switch = count >= period
        reads[col] = 0 if switch else count
        switched += switch
        for i in range(instances):
            sign = chopper[i, col]
            for o in range(out):
                a = v[i, c, o]
                p = reference[i, o, col]
                signal[i, c, o] = sign * (a - p)
                m = tail_mean[i, o, col]
                m = m + beta * (a - m)
                tail_mean[i, o, col] = m
                if switch:
                    reference[i, o, col] = m
            if switch:
                chopper[i, col] = -sign
    return switched
