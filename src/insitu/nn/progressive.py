"""Progressive gradient descent on any model's analog layers (van Doremaele et al., Science
Advances 10, eado8999, 2024; the chip-level rule is :mod:`insitu.algorithms.progressive`).

The layer-sequence protocol, :class:`AnalogSequence`: a model's analog layers
(:class:`AnalogLinear`, :class:`AnalogConv2d`, in module order, taken as the order the signal
flows through them) with digital parts (any activations, pooling, flatten) between them. It
offers what progressive descent needs and nothing more:

- ``forward(x)``: one pass with live signals: every analog layer is a tile ``read``;
- ``carry_and_update(loss, k, lr)``: the output error (the gradient of the loss at the output,
  formed digitally in the periphery) carried down to layer ``k``: through each analog layer
  above ``k`` by its tile's ``read_transposed``, through each digital part by autograd at its
  live activations (the derivative circuits: any activation works), and layer ``k`` updated at
  once by ``tile.update(x_k, d_k, lr)`` from its live input and error; no transposed read is
  done below ``k`` and nothing is captured for later.

What is held: while one layer is being updated, the signals of the current pass (each analog
layer's input, the digital parts' activations, where autograd keeps them) stand for the
voltages and currents that exist while the input is applied. With ``refresh=True`` they are
dropped before the next layer's pass, so nothing outlives a layer's update (the paper's rule).
With ``refresh=False`` the first pass is kept for every layer: every analog layer's input and
output is then counted as held (``Event.STORED_VALUE`` on the first layer's tile), as in
:mod:`insitu.algorithms.progressive`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from insitu.errors import ConfigError, check_range
from insitu.hardware import Event
from insitu.nn.convert import instance_loss
from insitu.nn.layer import AnalogLayer, analog_layers

Order = Literal["output-first", "input-first"]


class AnalogSequence:
    """A model seen as a sequence of analog layers with digital parts between them (see the
    module docstring). ``model``: a converted model (:func:`insitu.nn.convert`) or any module
    built from analog layers; its output is (instances, batch, ...). Each analog layer is used
    once per pass (a layer read twice would be pulsed once per use)."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"AnalogSequence takes a torch.nn.Module; got {type(model).__name__}")
        layers = analog_layers(model)
        if not layers:
            raise ConfigError(
                "this model has no analog layers; convert it first (insitu.nn.convert)"
            )
        self.model = model
        self.layers: list[AnalogLayer] = layers

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        """Outputs (instances, batch, ...) of inputs ``x``: one pass with live reads, its
        signals kept by autograd for :meth:`carry_and_update`."""
        with torch.enable_grad():
            out: Tensor = self.model(x)
        return out

    @contextmanager
    def carrying(self, update: int | None = None, lr: float = 0.0) -> Iterator[None]:
        """Within the block a backward pass only carries errors (transposed reads, nothing
        captured); layer ``update`` (if given) is pulsed at once with ``lr`` instead."""
        saved = [(layer.capturing, layer.immediate_lr) for layer in self.layers]
        try:
            for layer in self.layers:
                layer.capturing, layer.immediate_lr = False, None
            if update is not None:
                self.layers[update].immediate_lr = lr
            yield
        finally:
            for layer, (capturing, immediate) in zip(self.layers, saved, strict=True):
                layer.capturing, layer.immediate_lr = capturing, immediate

    def carry_and_update(self, loss: Tensor, layer: int, lr: float, keep: bool = False) -> None:
        """Carry the error of ``loss`` down to analog layer ``layer`` and pulse it at once:
        ``W_k -= lr * sum_b d_b x_b^T`` by the tile's update periphery. ``keep``: keep the
        pass's signals for another layer (``refresh=False``)."""
        if not 0 <= layer < len(self.layers):
            raise ConfigError(f"layer {layer}; this model has {len(self.layers)} analog layers")
        with self.carrying(layer, lr):
            torch.autograd.grad(
                loss, [self.layers[layer].analog_tile], retain_graph=keep, allow_unused=True
            )


class Progressive:
    """Progressive gradient descent on a model's analog layers: for each analog layer in turn,
    a fresh pass with live signals, the output error carried down to it, an immediate pulsed
    update (:class:`AnalogSequence`). Digital parameters are not trained.

    Args:
        model: a converted model (:func:`insitu.nn.convert`) or a module of analog layers.
        lr: learning rate, in weight units per unit of gradient, as for ``InSituSGD`` (> 0).
        order: ``output-first`` (the layer nearest the output first) or ``input-first``.
        refresh: re-apply the input before every layer (True, the paper's rule) or reuse the
            first pass for every layer (stale errors; its signals counted as held).
        layer_lr: a factor on ``lr`` per analog layer, inputs first (a pulse gain per tile).
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        *,
        order: Order = "output-first",
        refresh: bool = True,
        layer_lr: Sequence[float] | None = None,
    ) -> None:
        self.sequence = AnalogSequence(model)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise ConfigError(f"lr = {lr!r}; need a number > 0")
        check_range("lr", lr, low=0.0, low_open=True)
        if order not in ("output-first", "input-first"):
            raise ConfigError(f"order = {order!r}; valid: output-first, input-first")
        if not isinstance(refresh, bool):
            raise ConfigError(f"refresh = {refresh!r}; expected True or False")
        n = len(self.sequence)
        if layer_lr is not None:
            factors = tuple(layer_lr)
            if len(factors) != n or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors
            ):
                raise ConfigError(
                    f"layer_lr = {layer_lr!r}; need {n} positive numbers (one per analog layer)"
                )
        self.lr = float(lr)
        self.order: Order = order
        self.refresh = refresh
        self.layer_lr = None if layer_lr is None else tuple(float(f) for f in layer_lr)

    def layer_order(self) -> list[int]:
        """Analog layers in the order they are updated."""
        layers = list(range(len(self.sequence)))
        return layers[::-1] if self.order == "output-first" else layers

    @torch.enable_grad()
    def step(self, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """One progressive step on inputs ``x`` and targets ``y`` (the same for every chip).

        ``loss_fn(output, target)`` averages over its batch (e.g. ``F.cross_entropy``); it is
        summed over chip instances (:func:`instance_loss`). Returns the loss of the first pass,
        averaged over instances.
        """
        seq = self.sequence
        first: Tensor | None = None
        loss = torch.zeros(())
        order = self.layer_order()
        for step, layer in enumerate(order):
            if step == 0 or self.refresh:
                held = _HeldSignals(seq.layers) if not self.refresh else None
                out = seq.forward(x)  # the input applied (again): live signals
                loss = instance_loss(loss_fn, out, y)
                if first is None:
                    first = loss.detach() / out.shape[0]
                if held is not None:
                    if len(order) > 1:
                        seq.layers[0].tile.log.add(Event.STORED_VALUE, held.count)
                    held.remove()
            lr = self.lr * (self.layer_lr[layer] if self.layer_lr else 1.0)
            seq.carry_and_update(loss, layer, lr, keep=step < len(order) - 1 and not self.refresh)
        assert first is not None
        return first


class _HeldSignals:
    """Counts every analog layer's input and output values of one pass (forward hooks)."""

    def __init__(self, layers: Sequence[AnalogLayer]) -> None:
        self.count = 0
        self.handles = [layer.register_forward_hook(self._add) for layer in layers]

    def _add(self, module: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
        self.count += sum(a.numel() for a in args if isinstance(a, Tensor)) + output.numel()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
