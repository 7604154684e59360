"""The in-situ optimizer: analog weights change only by the tiles' pulsed updates."""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

import torch
from torch import nn
from torch.optim.optimizer import ParamsT

from insitu.errors import ConfigError, check_range
from insitu.nn.layer import AnalogLayer, TileParameter


class InSituSGD(torch.optim.Optimizer):
    """Stochastic gradient descent done in situ.

    For every analog layer, :meth:`step` asks its tile for one parallel pulsed update from the
    input and output gradient captured in the backward pass (``tile.update(x, d, lr)``: the
    stochastic, count or manhattan scheme of the tile's ``UpdateParams``); no conductance is
    read or written otherwise. Ordinary (digital) parameters take a plain SGD step,
    ``p -= lr * p.grad``.

    Args:
        params: a model, or its ``parameters()`` / parameter groups as for ``torch.optim.SGD``
            (an analog layer appears there as its :class:`TileParameter`).
        lr: learning rate, in weight units per unit of gradient (> 0).
    """

    def __init__(self, params: nn.Module | ParamsT, lr: float) -> None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise ConfigError(f"lr = {lr!r}; need a number > 0")
        check_range("lr", lr, low=0.0, low_open=True)
        if isinstance(params, nn.Module):
            params = params.parameters()
        super().__init__(params, {"lr": float(lr)})

    def analog_layers(self) -> list[AnalogLayer]:
        """The analog layers this optimizer updates."""
        return [
            p.layer
            for group in self.param_groups
            for p in group["params"]
            if isinstance(p, TileParameter)
        ]

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter: pulses on the tiles, SGD on digital parameters."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            check_range("lr", lr, low=0.0)
            for p in group["params"]:
                if isinstance(p, TileParameter):
                    p.layer.pulse_update(lr)
                elif p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear digital gradients and the analog layers' captured inputs and gradients."""
        super().zero_grad(set_to_none)
        for layer in self.analog_layers():
            layer.clear_captured()
