"""The trainer interface every learning rule implements, and what they share."""

from __future__ import annotations

import dataclasses
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from insitu.algorithms import loss_kernels
from insitu.errors import OUTPUT_DIVERGED, ConfigError, DivergenceError, check_range
from insitu.hardware import ChipConfig, EventLog
from insitu.hardware.backend import Implementation, choose

# Offset between the chip's seed and the trainer's, so that one run seed fixes both streams.
TRAINER_SEED_OFFSET = 7919


def glorot_weights(
    layers: tuple[int, ...], instances: int, gen: torch.Generator, device: torch.device
) -> list[Tensor]:
    """Glorot-uniform weights (I, out, in+1) per layer, bias column (last) zero."""
    weights = []
    for n_in, n_out in itertools.pairwise(layers):
        bound = math.sqrt(6.0 / (n_in + n_out))
        w = torch.rand((instances, n_out, n_in + 1), generator=gen, device=device)
        w = (2 * w - 1) * bound
        w[..., -1] = 0.0
        weights.append(w)
    return weights


def softmax_error(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy loss per instance and its gradient w.r.t. the logits (mean over batch).

    ``logits``: (I, B, C); ``y``: (B,) class indices. Raises DivergenceError on NaN/inf.
    The torch reference; :func:`compiled_softmax_error` is the same in one compiled call.
    """
    logp = torch.log_softmax(logits, dim=-1)
    # Finite logits give finite log-probabilities; a NaN or infinite one shows in their sum.
    if not math.isfinite(float(logp.sum())):
        raise DivergenceError(OUTPUT_DIVERGED)
    onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).to(logp.dtype)
    loss = -(logp * onehot).sum(-1).mean(-1)
    return loss, (logp.exp() - onehot) / logits.shape[1]


def compiled_softmax_error(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`softmax_error` by the compiled kernel (:mod:`insitu.algorithms.loss_kernels`) for
    what it serves (float32 CPU logits outside autograd, integer labels), the reference
    otherwise. Labels outside the outputs raise ConfigError, of the wrong shape ValueError."""
    if loss_kernels.supported(logits, y):
        return loss_kernels.softmax_cross_entropy(logits, y)
    return softmax_error(logits, y)


ErrorFunction = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""(outputs, labels or targets) -> (loss per instance, gradient w.r.t. the outputs)."""


def softmax_backend(implementation: Implementation) -> ErrorFunction:
    """The softmax cross-entropy ``implementation`` (chosen when a trainer is built)."""
    if implementation is Implementation.KERNEL:
        return compiled_softmax_error
    return softmax_error


def squared_error(out: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Half squared error per instance (mean over batch) and its gradient w.r.t. ``out``.

    ``out``: (I, B, K); ``target``: (B, K) or (I, B, K). Raises DivergenceError on NaN/inf.
    """
    if not bool(torch.isfinite(out).all()):
        raise DivergenceError(OUTPUT_DIVERGED)
    diff = out - target
    loss = 0.5 * diff.pow(2).sum(-1).mean(-1)
    return loss, diff / out.shape[1]


def parse_options(cls: type[Trainer], values: Mapping[str, Any]) -> Any:
    """Build ``cls.Options`` from ``values``; unknown or invalid options raise ConfigError."""
    if cls.Options is None:
        if values:
            raise ConfigError(f"algorithm {cls.name!r} takes no options, got {', '.join(values)}")
        return None
    valid = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(values) - valid)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for algorithm {cls.name!r}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    try:
        return cls.Options(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"algorithm {cls.name!r} options: {err}") from None


class Trainer(ABC):
    """A learning rule bound to a network (and, for in-situ rules, a chip).

    Subclasses implement :meth:`train_batch` and :meth:`predict`. In-situ rules drive their chip
    only through its public protocol (read, read_transposed, update, pulse, program, measure).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    uses_chip: ClassVar[bool] = True
    # A frozen dataclass of the rule's own options (None: the rule takes none).
    Options: ClassVar[type[Any] | None] = None

    def __init__(
        self,
        config: ChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        lr: float = 0.1,
        device: torch.device | str = "cpu",
        options: Mapping[str, Any] | None = None,
        targets: Tensor | None = None,
    ) -> None:
        check_range("lr", lr, low=0.0, low_open=True)
        n_out = config.layers[-1]
        if targets is not None and (targets.dim() != 2 or targets.shape[1] != n_out):
            raise ConfigError(
                f"targets have shape {tuple(targets.shape)}; need (classes, {n_out}) to match "
                "the output layer"
            )
        self.options = parse_options(type(self), options or {})
        self.config = config
        self.instances = instances
        self.seed = seed
        self.lr = lr
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed + TRAINER_SEED_OFFSET)
        self._log = EventLog()
        # Output vector each class must produce; None: classification by softmax cross-entropy.
        self.targets = None if targets is None else targets.to(self.device, torch.float32)
        # Torch or the compiled kernel, chosen once (see insitu.hardware.backend.choose).
        self._softmax_error = softmax_backend(choose(self.device, torch.float32))

    def target_vectors(self, y: Tensor) -> Tensor:
        """What the output should be for labels ``y`` (B,): (B, outputs)."""
        if self.targets is None:
            eye = torch.eye(self.config.layers[-1], device=self.device)
            return eye[y.to(self.device)]
        return self.targets[y.to(self.device)]

    def output_error(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Loss per instance and its gradient at the output: softmax cross-entropy for
        classification, half squared error to the class's target vector otherwise."""
        if self.targets is None:
            return self._softmax_error(out, y)
        return squared_error(out, self.target_vectors(y))

    def classify(self, out: Tensor) -> Tensor:
        """Class decisions (I, B) from outputs (I, B, K): the largest output, or the nearest
        target vector (the same thing for one-hot targets)."""
        if self.targets is None:
            return out.argmax(-1)
        return torch.cdist(out, self.targets.expand(out.shape[0], -1, -1)).argmin(-1)

    def set_lr(self, lr: float) -> None:
        """Change the learning rate (schedules)."""
        check_range("lr", lr, low=0.0, low_open=True)
        self.lr = lr

    @abstractmethod
    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        """One training step on inputs (B, F) and labels (B,); returns the loss per instance."""

    @abstractmethod
    def predict(self, x: Tensor) -> Tensor:
        """Outputs (I, B, classes) for inputs (B, F)."""

    def finish(self) -> None:  # noqa: B027 - optional hook, most rules need nothing here
        """Called once after the last epoch (transfer programs its chip here)."""

    @property
    def log(self) -> EventLog:
        """Hardware events of this rule's chip (empty for software)."""
        return self._log

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.generator.set_state(state["generator"])
