"""Activation circuits in the periphery, with their derivative circuits.

Derivatives are computed from the activation's *output* (what the periphery has at hand):
sigmoid ``a(1-a)``, tanh ``1-a^2``, ReLU a gate, hard-sigmoid a window.
"""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import Tensor


class Activation(StrEnum):
    """Nonlinearities a periphery circuit can apply."""

    SIGMOID = "sigmoid"
    TANH = "tanh"
    RELU = "relu"
    HARD_SIGMOID = "hard-sigmoid"
    IDENTITY = "identity"

    def __call__(self, y: Tensor) -> Tensor:
        if self is Activation.SIGMOID:
            return torch.sigmoid(y)
        if self is Activation.TANH:
            return torch.tanh(y)
        if self is Activation.RELU:
            return torch.relu(y)
        if self is Activation.HARD_SIGMOID:
            return (0.25 * y + 0.5).clamp(0.0, 1.0)
        return y

    def derivative(self, a: Tensor) -> Tensor:
        """d activation / d input, as a function of the activation ``a``."""
        if self is Activation.SIGMOID:
            return a * (1 - a)
        if self is Activation.TANH:
            return 1 - a * a
        if self is Activation.RELU:
            return (a > 0).to(a.dtype)
        if self is Activation.HARD_SIGMOID:
            return ((a > 0) & (a < 1)).to(a.dtype) * 0.25
        return torch.ones_like(a)
