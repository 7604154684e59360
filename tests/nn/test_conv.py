"""AnalogConv2d: the convolution unfolded onto one tile, read patch by patch."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from insitu.hardware import IDEAL_PERIPHERY, inspection
from insitu.nn import AnalogConv2d

GEOMETRY = {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1, "dilation": (1, 2)}


def ideal_conv(instances: int = 1) -> tuple[AnalogConv2d, torch.Tensor, torch.Tensor]:
    """An analog convolution on ideal hardware and the float kernel and bias it holds."""
    ref = nn.Conv2d(3, 4, **GEOMETRY)  # type: ignore[arg-type]
    layer = AnalogConv2d(
        3,
        4,
        **GEOMETRY,  # type: ignore[arg-type]
        device="ideal",
        periphery=IDEAL_PERIPHERY,
        instances=instances,
        init_weight=ref.weight,
        init_bias=ref.bias,
    )
    w = inspection.true_weights(layer.tile)[0]
    return layer, w[:, :-1].reshape(ref.weight.shape), w[:, -1]


def test_on_ideal_hardware_it_computes_what_conv2d_does() -> None:
    layer, kernel, bias = ideal_conv(instances=2)
    x = torch.randn(5, 3, 9, 7, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 5, 4, 5, 7)
    want = F.conv2d(x.detach(), kernel, bias, stride=(2, 1), padding=1, dilation=(1, 2))
    torch.testing.assert_close(y[0], want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y[1], want, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    x_ref = x.detach().requires_grad_(True)
    out = F.conv2d(x_ref, kernel, bias, stride=(2, 1), padding=1, dilation=(1, 2))
    out.backward(g.sum(0))  # both chips read the same input: their gradients add
    assert x.grad is not None and x_ref.grad is not None
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)


def test_forward_reads_every_patch_through_the_tile() -> None:
    layer = AnalogConv2d(2, 3, 3, padding=1, instances=2, seed=3)
    twin = AnalogConv2d(2, 3, 3, padding=1, instances=2, seed=3)
    x = torch.rand(2, 4, 2, 5, 6)  # (instances, batch, C, H, W)
    y = layer(x)
    patches = F.unfold(x.flatten(0, 1), 3, padding=1).transpose(1, 2)  # (8, 30, 18)
    rows = F.pad(patches.reshape(2, 4 * 30, 18), (0, 1), value=1.0)
    want = twin.tile.read(rows).reshape(2, 4, 30, 3).transpose(2, 3).reshape(2, 4, 3, 5, 6)
    torch.testing.assert_close(y, want, rtol=0, atol=0)


def test_backward_folds_the_transposed_reads() -> None:
    layer = AnalogConv2d(2, 3, 3, instances=2, seed=3)
    twin = AnalogConv2d(2, 3, 3, instances=2, seed=3)
    x = torch.rand(4, 2, 5, 6, requires_grad=True)
    y = layer(x)
    g = torch.randn_like(y)
    y.backward(g)
    twin(x.detach())
    d = g.flatten(3).transpose(2, 3).reshape(2, 4 * 12, 3)  # (I, patches, out)
    back = twin.tile.read_transposed(d)[..., :-1].sum(0)  # (patches, in)
    want = F.fold(back.reshape(4, 12, 18).transpose(1, 2), (5, 6), 3)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: AnalogConv2d(0, 2, 3), "in_channels = 0"),
        (lambda: AnalogConv2d(1, 2, 0), "kernel_size = 0; need whole numbers >= 1"),
        (lambda: AnalogConv2d(1, 2, (3, 3, 3)), r"kernel_size = \(3, 3, 3\); need an int or"),
        (lambda: AnalogConv2d(1, 2, 3, stride=0), "stride = 0"),
        (lambda: AnalogConv2d(1, 2, 3, padding=-1), "padding = -1; need whole numbers >= 0"),
        (
            lambda: AnalogConv2d(2, 3, 3, instances=2)(torch.rand(4, 3, 8, 8)),
            r"has shape \(4, 3, 8, 8\); expected \(batch, 2, H, W\)",
        ),
        (
            lambda: AnalogConv2d(2, 3, 3, instances=2)(torch.rand(3, 4, 2, 8, 8)),
            "for 3 chip instances; this layer has 2",
        ),
        (
            lambda: AnalogConv2d(2, 3, 3)(torch.rand(4, 2, 2, 8)),
            "input of 2x8 pixels is smaller than its kernel",
        ),
    ],
)
def test_bad_arguments_are_one_line_config_errors(
    make: Callable[[], object], words: str, one_line_config_error: Callable[..., None]
) -> None:
    one_line_config_error(make, words)
