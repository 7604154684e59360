"""Hardware-in-the-loop injection: the measured value forward, the model's gradient backward.

After Cramer et al., PNAS 119, e2109194119 (2022) (and hxtorch's autograd identity): the forward
pass runs on the chip; each observed signal (:class:`insitu.hardware.observables.Observables`)
replaces the software model's value of the same signal in the graph, through an identity whose
backward pass hands the gradient to the model's value unchanged. What the model differentiates
(and at which point its local derivatives are evaluated) is the model's business; this module
only swaps values.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from insitu.hardware.observables import Observables
from insitu.hardware.spiking import Recording

__all__ = ["inject", "measured_forward_model_backward", "measured_layer"]


class _MeasuredForwardModelBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, model_value: Tensor, measured_value: Tensor) -> Tensor:
        # A contiguous copy: the result never aliases the measurement, and its layout does not
        # depend on how the chip laid the recording out.
        return measured_value.detach().clone(memory_format=torch.contiguous_format)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def measured_forward_model_backward(model_value: Tensor, measured_value: Tensor) -> Tensor:
    """``measured_value`` in the forward pass; in the backward pass the gradient goes to
    ``model_value`` unchanged (none to the measurement). Shapes must match."""
    if model_value.shape != measured_value.shape:
        raise ValueError(
            f"measured value has shape {tuple(measured_value.shape)}; the model's "
            f"{tuple(model_value.shape)}"
        )
    out: Tensor = _MeasuredForwardModelBackward.apply(model_value, measured_value)
    return out


def inject(model: Observables, measured: Observables) -> Observables:
    """Every observable of ``model`` replaced by its measurement (membrane, spikes, and each
    extra signal both carry), each through :func:`measured_forward_model_backward`; model
    extras that were not measured stay the model's."""
    extra = {
        name: (
            measured_forward_model_backward(value, measured.extra[name])
            if name in measured.extra
            else value
        )
        for name, value in model.extra.items()
    }
    return Observables(
        measured_forward_model_backward(model.membrane, measured.membrane),
        measured_forward_model_backward(model.spikes, measured.spikes),
        extra if extra else model.extra,
    )


def measured_layer(recording: Recording, layer: int) -> Observables:
    """Layer ``layer``'s observables in a recording, time-major (T, I, B, N) like the model's
    (a view; the chip records (I, B, T, N))."""
    return Observables(
        membrane=recording.membrane[layer].permute(2, 0, 1, 3),
        spikes=recording.spikes[layer].permute(2, 0, 1, 3),
    )
