"""Put any torch model on analog tiles: its linear and convolution layers become analog layers,
everything else stays digital."""

from __future__ import annotations

import copy
from typing import Any, Unpack

import torch
from torch import Tensor, nn

from insitu.errors import ConfigError
from insitu.nn.conv import AnalogConv2d
from insitu.nn.layer import AnalogLayer, analog_layers
from insitu.nn.linear import AnalogLinear
from insitu.nn.options import TileOptions, check_options


class StackInstances:
    """The forward hooks of a converted model.

    On the way in, the input batch (B, ...) is given to every chip instance: I copies stacked
    along the batch dimension (I * B, ...), so every digital layer and the model's own forward
    code see an ordinary batch; on the way out, outputs (I * B, ...) are split into
    (I, B, ...).
    """

    def __init__(self, instances: int) -> None:
        self.instances = instances

    def stack(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Forward pre-hook: the first argument stacked once per instance."""
        if not args or not isinstance(args[0], Tensor):
            return args
        x = args[0]
        return (x.unsqueeze(0).expand(self.instances, *x.shape).flatten(0, 1), *args[1:])

    def unstack(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        """Forward hook: every output tensor (I * B, ...) as (I, B, ...)."""
        if isinstance(output, Tensor):
            return output.unflatten(0, (self.instances, -1))
        if isinstance(output, (tuple, list)):
            return type(output)(self.unstack(module, args, o) for o in output)
        return output


def _analog_twin(name: str, layer: nn.Module, options: TileOptions) -> AnalogLayer | None:
    """The analog layer for a digital ``layer`` (its float weights programmed), or None."""
    if type(layer) is nn.Linear:
        return AnalogLinear(
            layer.in_features,
            layer.out_features,
            layer.bias is not None,
            init_weight=layer.weight,
            init_bias=layer.bias,
            **options,
        )
    if type(layer) is not nn.Conv2d:
        return None
    if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ConfigError(
            f"{name}: Conv2d with groups={layer.groups}, padding={layer.padding!r}, "
            f"padding_mode={layer.padding_mode!r}; AnalogConv2d takes groups=1, whole-number "
            "padding and padding_mode='zeros'"
        )
    return AnalogConv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,  # type: ignore[arg-type]  # Conv2d keeps pairs
        layer.stride,  # type: ignore[arg-type]
        layer.padding,  # type: ignore[arg-type]
        layer.bias is not None,
        layer.dilation,  # type: ignore[arg-type]
        init_weight=layer.weight,
        init_bias=layer.bias,
        **options,
    )


def convert(module: nn.Module, **options: Unpack[TileOptions]) -> nn.Module:
    """A copy of ``module`` with every ``nn.Linear`` and ``nn.Conv2d`` on an analog tile.

    Each becomes an :class:`AnalogLinear` / :class:`AnalogConv2d` whose tile is written to the
    layer's float weights and bias by write-verify (``Tile.program``; the outcome is each
    layer's ``program_result``). Every other layer (activations, pooling, normalisation,
    flatten, dropout, subclasses of Linear used by their parent's own code) stays digital and
    trains by :class:`InSituSGD`'s plain SGD. ``module`` itself is left unchanged.

    The copy takes the original's input and returns (instances, batch, ...): ``instances``
    chips, each with its own device draws, run the same batch. Inside, their batches are
    stacked along the batch dimension (see :class:`StackInstances`), so digital layers see
    instances * batch samples (batch-norm statistics pool the chips). Options
    (``device="ecram-organic"``, ``instances=1``, ``seed=0``, periphery, update, pair,
    weight_scale) as for every analog layer (:class:`insitu.nn.options.TileOptions`); each
    layer's generator is seeded from ``seed``.
    """
    if not isinstance(module, nn.Module):
        raise ConfigError(f"convert takes a torch.nn.Module; got {type(module).__name__}")
    if analog_layers(module):
        raise ConfigError("this model holds analog layers already; convert the digital model")
    config = check_options(options, "convert")
    instances = options.get("instances", 1)
    seeds = torch.Generator().manual_seed(options.get("seed", 0))

    def layer_options() -> TileOptions:
        seed = int(torch.randint(0, 2**62, (1,), generator=seeds))
        return {"device": config, "instances": instances, "seed": seed}

    root = _analog_twin("the model", module, layer_options())
    if root is not None:
        return root
    model = copy.deepcopy(module)
    for name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            path = f"{name}.{child_name}" if name else child_name
            twin = _analog_twin(path, child, layer_options())
            if twin is not None:
                twin.stacked = True
                setattr(parent, child_name, twin)
    hooks = StackInstances(instances)
    model.register_forward_pre_hook(hooks.stack)
    model.register_forward_hook(hooks.unstack)
    return model


def instance_loss(loss_fn: Any, output: Tensor, target: Tensor) -> Tensor:
    """``loss_fn`` summed over chip instances, for outputs (I, B, ...) and targets (B, ...)
    shared by every chip: each chip's layers get the gradient they would get if trained
    alone. ``loss_fn`` must average over its batch (torch's default ``reduction='mean'``).
    """
    n = output.shape[0]
    stacked = target.unsqueeze(0).expand(n, *target.shape).flatten(0, 1)
    loss: Tensor = loss_fn(output.flatten(0, 1), stacked) * n
    return loss
