"""``software``: float backprop on a plain torch MLP of the chip's shape (the reference)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from insitu.algorithms.base import Trainer, glorot_weights, softmax_error
from insitu.hardware import Activation, ChipConfig, EventLog

ErrorPair = tuple[Tensor, Tensor]


class SoftwareMLP:
    """I independent float MLPs (I, out, in+1) with the chip's activation; manual backprop."""

    def __init__(self, weights: list[Tensor], activation: Activation) -> None:
        self.weights = weights
        self.activation = activation

    # The chip's read protocol in float, so rules written for a chip also run exactly.
    @property
    def n_layers(self) -> int:
        """Number of weight layers."""
        return len(self.weights)

    def _instances(self, v: Tensor) -> Tensor:
        return v.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1) if v.dim() == 2 else v

    def read(self, layer: int, x: Tensor) -> Tensor:
        """Pre-activation ``W x + b`` of ``layer``: (B, in) or (I, B, in) -> (I, B, out)."""
        w = self.weights[layer]
        return torch.baddbmm(w[..., -1].unsqueeze(1), self._instances(x), w[..., :-1].mT)

    def read_transposed(self, layer: int, d: Tensor) -> Tensor:
        """``W^T d`` through ``layer`` (bias row dropped): (I, B, out) -> (I, B, in)."""
        return torch.bmm(d, self.weights[layer][..., :-1])

    def activate(self, layer: int, y: Tensor) -> Tensor:
        """The hidden activation (identity for the output layer)."""
        return y if layer == self.n_layers - 1 else self.activation(y)

    def update(
        self, layer: int, x: Tensor, d: Tensor, lr: float, bias: Tensor | None = None
    ) -> None:
        """Exact step ``W -= lr * sum_b d_b [x_b, bias_b]^T`` (``bias`` default 1)."""
        w = self.weights[layer]
        w[..., :-1] -= lr * torch.bmm(d.mT, self._instances(x))
        if bias is None:
            w[..., -1] -= lr * d.sum(1)
        else:
            w[..., -1] -= lr * (d * bias.to(d.dtype).unsqueeze(-1)).sum(-2)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Inputs of every layer, then the output."""
        acts = [x.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1) if x.dim() == 2 else x]
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            h = acts[-1]
            y = torch.baddbmm(w[..., -1].unsqueeze(1), h, w[..., :-1].transpose(1, 2))
            acts.append(y if i == last else self.activation(y))
        return acts

    def sgd_step(
        self,
        x: Tensor,
        y: Tensor,
        lr: float,
        error: Callable[[Tensor, Tensor], ErrorPair] = softmax_error,
    ) -> Tensor:
        """One SGD step on the loss ``error`` measures (cross-entropy by default); returns the
        loss per instance."""
        acts = self.forward(x)
        loss, d = error(acts[-1], y)
        for i in reversed(range(len(self.weights))):
            h = acts[i]
            grad_w = torch.bmm(d.transpose(1, 2), h)
            grad_b = d.sum(1)
            if i > 0:
                d = torch.bmm(d, self.weights[i][..., :-1]) * self.activation.derivative(h)
            self.weights[i][..., :-1] -= lr * grad_w
            self.weights[i][..., -1] -= lr * grad_b
        return loss


class Software(Trainer):
    """Floating-point backpropagation and SGD: what the chip is measured against."""

    name = "software"
    description = "float backprop on a torch MLP of the same shape (reference)"
    uses_chip = False

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        w = glorot_weights(config.layers, self.instances, self.generator, self.device)
        self.model = SoftwareMLP(w, config.activation)
        self._log = EventLog()

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self.model.sgd_step(x, y, self.lr, self.output_error)

    def predict(self, x: Tensor) -> Tensor:
        return self.model.forward(x)[-1]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weights": [w.clone() for w in self.model.weights]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.weights = [w.clone() for w in state["weights"]]
