"""The base of the analog layers: a tile, the generator of its random draws, and what the next
pulsed update needs.

Forward is the tile's ``read`` (DAC, devices with their read noise, ADC); backward is its
``read_transposed`` of the output gradient. The weights exist only as conductances on the tile:
the layer holds no float weight, and an optimizer changes them only by asking the tile for a
pulsed ``update`` from the input and output gradient captured here (:class:`InSituSGD`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

from insitu.errors import ConfigError
from insitu.hardware import Event, EventLog, ProgramResult, check_batch, make_tile
from insitu.nn.options import TileOptions, check_options


class TileParameter(nn.Parameter):
    """An empty parameter that stands for an analog layer's weights in ``parameters()``.

    It holds no values (shape (0,)), so no optimizer can write a weight through it; it lets
    ``InSituSGD(model.parameters(), lr)`` find the layer (``.layer``) and ask its tile for
    a pulsed update, and per-layer learning rates go in parameter groups as usual. It enters
    every read's autograd graph (so backward reaches the layer even when nothing before it
    needs a gradient); its own gradient stays None.
    """

    layer: AnalogLayer

    def __new__(cls, layer: AnalogLayer) -> TileParameter:
        handle = torch.Tensor._make_subclass(cls, torch.empty(0), True)
        handle.layer = layer
        return handle

    def __deepcopy__(self, memo: dict[int, Any]) -> TileParameter:
        if id(self) not in memo:  # a layer being copied is in memo already: the copy's handle
            memo[id(self)] = TileParameter(copy.deepcopy(self.layer, memo))
        copied: TileParameter = memo[id(self)]
        return copied

    def __reduce_ex__(self, proto: Any) -> Any:
        return (TileParameter, (self.layer,))


class _TileRead(torch.autograd.Function):
    """``y = tile.read(x)`` forward; ``dx = tile.read_transposed(dy)`` backward, where the
    layer also captures ``(x, dy)`` for its next pulsed update, or (``immediate_lr`` set, as
    :mod:`insitu.nn.progressive` does) is pulsed at once from them and carries nothing down."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, handle: TileParameter) -> Tensor:
        ctx.save_for_backward(x)
        ctx.layer = handle.layer  # type: ignore[attr-defined]
        return handle.layer.tile.read(x)

    @staticmethod
    def backward(ctx: Any, d: Tensor) -> tuple[Tensor | None, None]:
        (x,) = ctx.saved_tensors
        layer: AnalogLayer = ctx.layer
        if layer.immediate_lr is not None:
            # Progressive descent: the live input and error drive the pulses now; nothing is
            # held, and no error is carried below this layer.
            layer.tile.update(x, d, layer.immediate_lr)
            return None, None
        if layer.capturing:
            layer.capture(x, d)
        if not ctx.needs_input_grad[0]:
            return None, None  # the first layer: no transposed read is needed
        dx = layer.tile.read_transposed(d)
        return (dx.sum(0) if x.dim() == 2 else dx), None


class AnalogLayer(nn.Module):
    """One tile of ``out_features`` x ``in_features`` (+ 1 bias column) weights, times
    ``instances`` chips.

    Args:
        in_features: inputs per output (a convolution: channels x kernel positions).
        out_features: outputs.
        bias: drive one more tile column at 1, whose devices hold the bias.
        init_weight, init_bias: the initial weights (out, in) and biases (out,), written by
            write-verify; None: drawn like torch's default initialisation, uniform in
            +-1/sqrt(in), one draw for all instances (they differ by their devices only).
        options: the tile design and the chips (:class:`insitu.nn.options.TileOptions`).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        init_weight: Tensor | None,
        init_bias: Tensor | None,
        options: TileOptions,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        config = check_options(options, where)
        if init_bias is not None and not bias:
            raise ConfigError(f"{where}: init_bias given for a layer without bias; set bias=True")
        self.in_features = in_features
        self.out_features = out_features
        self.has_bias = bool(bias)
        self.instances = options.get("instances", 1)
        self.generator = torch.Generator().manual_seed(options.get("seed", 0))
        self.tile = make_tile(
            in_features + self.has_bias,
            out_features,
            config,
            instances=self.instances,
            generator=self.generator,
        )
        self.analog_tile = TileParameter(self)
        # True in a converted model: the chips' batches arrive stacked along the batch dim.
        self.stacked = False
        self._captured: list[tuple[Tensor, Tensor]] = []
        # What backward does besides the transposed read (set by insitu.nn.progressive):
        # capture (x, d) for InSituSGD, or (immediate_lr not None) update the tile at once.
        self.capturing = True
        self.immediate_lr: float | None = None
        self.program_result: ProgramResult = self._program_initial(init_weight, init_bias)

    # -- initial state ----------------------------------------------------------------------
    def _program_initial(self, weight: Tensor | None, bias: Tensor | None) -> ProgramResult:
        """Write-verify the tile to the initial weights (see the class docstring)."""
        out, n_in = self.out_features, self.in_features
        if weight is None:
            bound = 1.0 / math.sqrt(n_in)
            draw = torch.rand((out, n_in + self.has_bias), generator=self.generator)
            target = (2 * draw - 1) * bound
        else:
            target = self._initial_matrix(weight, bias)
        return self.tile.program(target)

    def _initial_matrix(self, weight: Tensor, bias: Tensor | None) -> Tensor:
        """``weight`` flattened to (out, in), with ``bias`` (or 0) as the last column."""
        out, n_in = self.out_features, self.in_features
        if weight.numel() != out * n_in or weight.shape[0] != out:
            raise ConfigError(
                f"init_weight has shape {tuple(weight.shape)}; this layer needs {out} rows of "
                f"{n_in} weights"
            )
        target = weight.detach().to("cpu", torch.float32).reshape(out, n_in)
        if not self.has_bias:
            return target
        if bias is None:
            bias = torch.zeros(out)
        if bias.shape != (out,):
            raise ConfigError(f"init_bias has shape {tuple(bias.shape)}; need ({out},)")
        return torch.cat([target, bias.detach().to("cpu", torch.float32).unsqueeze(1)], dim=1)

    # -- reads --------------------------------------------------------------------------------
    def read(self, x: Tensor, what: str | None = None) -> Tensor:
        """Outputs (I, B, out) of inputs ``x`` (B, in), the same for every chip, or
        (I, B, in): one read through the tile, the bias column driven at 1 (``what`` names
        the input in errors)."""
        check_batch(x, self.in_features, self.instances, what or f"{type(self).__name__} input")
        x = x.to(torch.float32)
        if self.has_bias:
            x = nn.functional.pad(x, (0, 1), value=1.0)
        y: Tensor = _TileRead.apply(x, self.analog_tile)
        return y

    def unstack(self, x: Tensor) -> Tensor:
        """A stacked batch (I*B, ...) as (I, B, ...) (a converted model stacks its chips'
        batches along the batch dimension)."""
        if x.dim() < 1 or x.shape[0] % self.instances:
            raise ConfigError(
                f"{type(self).__name__} input has shape {tuple(x.shape)}; in a converted model "
                f"the batch holds {self.instances} chip instances' batches, a multiple of "
                f"{self.instances}"
            )
        return x.reshape(self.instances, -1, *x.shape[1:])

    # -- the update ---------------------------------------------------------------------------
    def capture(self, x: Tensor, d: Tensor) -> None:
        """Keep a driven input ``x`` (bias column included) and its output gradient ``d``
        for the next pulsed update; both wait in the periphery's memory (logged)."""
        self._captured.append((x.detach(), d.detach()))
        stored = d.numel() + x.numel() - (x[..., 0].numel() if self.has_bias else 0)
        self.tile.log.add(Event.STORED_VALUE, stored)

    def clear_captured(self) -> None:
        """Forget the captured inputs and gradients (``InSituSGD.zero_grad`` calls this)."""
        self._captured.clear()

    @property
    def has_captured(self) -> bool:
        """Whether a backward pass left inputs and gradients for an update."""
        return bool(self._captured)

    def pulse_update(self, lr: float) -> None:
        """The SGD step ``W -= lr * sum_b d_b x_b^T`` on the captured inputs and gradients,
        done by pulses: the tile's update periphery (stochastic, count or manhattan).

        ``lr`` is in weight units per unit of gradient, as in ``torch.optim.SGD``.
        """
        if not self._captured:
            return
        if len(self._captured) == 1:
            x, d = self._captured[0]
        else:  # several backward passes since zero_grad (gradient accumulation): one update
            x = torch.cat([self._per_instance(x) for x, _ in self._captured], dim=1)
            d = torch.cat([d for _, d in self._captured], dim=1)
        self.tile.update(x, d, lr)

    def _per_instance(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0).expand(self.instances, -1, -1) if x.dim() == 2 else x

    # -- checkpoints --------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        """The tile's state, its event counts and the generator (in ``state_dict()``)."""
        return {
            "tile": self.tile.state_dict(),
            "log": self.tile.log.state_dict(),
            "generator": self.generator.get_state(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        self.tile.load_state_dict(state["tile"])
        self.tile.log.load_state_dict(state["log"])
        self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.has_bias}, device={self.tile.config.device.name}, "
            f"instances={self.instances}"
        )


def analog_layers(model: nn.Module) -> list[AnalogLayer]:
    """Every analog layer of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, AnalogLayer)]


def events(model: nn.Module) -> dict[str, float]:
    """The event counts of every analog layer of ``model`` and of every module that carries a
    chip's event log as ``log`` (a spiking chip layer), summed per kind (totals over all chip
    instances; the initial write-verify included), as :meth:`EventLog.counts` gives them.
    """
    total: dict[str, float] = {}
    logs = {id(layer.tile.log): layer.tile.log for layer in analog_layers(model)}
    for module in model.modules():
        log = getattr(module, "log", None)
        if isinstance(log, EventLog):
            logs[id(log)] = log
    for log in logs.values():
        for kind, count in log.counts().items():
            total[kind] = total.get(kind, 0.0) + count
    return dict(sorted(total.items()))
