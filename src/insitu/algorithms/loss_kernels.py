"""Compiled CPU kernel for the softmax cross-entropy at a chip's output.

:func:`insitu.algorithms.base.softmax_error` is the reference (and what runs on a GPU or in
float64); :func:`insitu.algorithms.base.compiled_softmax_error` calls the kernel. An in-situ
trainer forms its output error digitally once per mini-batch; in torch that is a dozen small
operations, about 30 us for a mini-batch of 10 on the benchmark machine, as much as the
compiled read of the output layer. Here it is one loop, in float64 inside, float32 out.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from insitu.errors import OUTPUT_DIVERGED, ConfigError, DivergenceError
from insitu.hardware.kernel_switch import as_numpy, jit

# Outcomes of the kernel besides success.
_NOT_FINITE, _BAD_LABEL = 1, 2


@jit()
def _softmax_cross_entropy(
    logits: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    loss: npt.NDArray[np.float32],
    grad: npt.NDArray[np.float32],
) -> int:
    """Mean cross-entropy per instance into ``loss`` (I,) and its gradient w.r.t. ``logits``
    (I, B, C) into ``grad``; returns 0, or why it stopped (a logit not finite, a bad label)."""
    inst, batch, classes = logits.shape
    for b in range(batch):
        if labels[b] < 0 or labels[b] >= classes:
            return _BAD_LABEL
    for i in range(inst):
        total = 0.0
        for b in range(batch):
            top = -math.inf
            for k in range(classes):
                v = float(logits[i, b, k])
                if not math.isfinite(v):
                    return _NOT_FINITE
                top = max(top, v)
            norm = 0.0
            for k in range(classes):
                norm += math.exp(float(logits[i, b, k]) - top)
            log_z = top + math.log(norm)
            c = labels[b]
            for k in range(classes):
                p = math.exp(float(logits[i, b, k]) - log_z)
                grad[i, b, k] = ((p - 1.0) if k == c else p) / batch
            total += log_z - float(logits[i, b, c])
        loss[i] = total / batch
    return 0


def supported(logits: Tensor, y: Tensor) -> bool:
    """Whether the kernel serves this call: float32 (I, B, C) logits of a non-empty batch outside
    autograd and integer labels on the CPU (anything else takes the torch path, which raises its
    own errors). Whether the kernel is used at all is chosen when a trainer is built
    (:func:`insitu.algorithms.base.softmax_backend`)."""
    return (
        logits.dtype == torch.float32
        and logits.dim() == 3
        and logits.shape[1] > 0
        and not logits.requires_grad
        and not torch.is_floating_point(y)
        and y.device == logits.device
        and logits.device.type == "cpu"
    )


def softmax_cross_entropy(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`insitu.algorithms.base.softmax_error` in one compiled call (see :func:`supported`)."""
    inst, batch, classes = logits.shape
    if y.shape != (batch,):
        raise ValueError(f"labels have shape {tuple(y.shape)}; need ({batch},)")
    loss = np.empty(inst, dtype=np.float32)
    grad = np.empty((inst, batch, classes), dtype=np.float32)
    labels = as_numpy(y.to(torch.int64).contiguous())
    outcome = _softmax_cross_entropy(as_numpy(logits.contiguous()), labels, loss, grad)
    if outcome == _NOT_FINITE:
        raise DivergenceError(OUTPUT_DIVERGED)
    if outcome == _BAD_LABEL:
        raise ConfigError(
            f"labels run from {int(y.min())} to {int(y.max())}; need 0 to {classes - 1} "
            f"for {classes} outputs"
        )
    return torch.from_numpy(loss), torch.from_numpy(grad)
