"""AnalogLinear: forward is the tile's read, backward its transposed read, shapes and errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from insitu.hardware import IDEAL_PERIPHERY, Event, inspection
from insitu.nn import AnalogLinear


def pair(**kwargs: object) -> tuple[AnalogLinear, AnalogLinear]:
    """Two layers built alike: the same device draws, initial state and generator state."""
    return AnalogLinear(6, 4, **kwargs), AnalogLinear(6, 4, **kwargs)  # type: ignore[arg-type]


def with_bias(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(*x.shape[:-1], 1)], dim=-1)


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6)])
def test_forward_is_the_tiles_read(shape: tuple[int, ...]) -> None:
    layer, twin = pair(instances=3, seed=4)
    x = torch.randn(shape)
    y = layer(x)
    assert y.shape == (3, 5, 4)
    torch.testing.assert_close(y, twin.tile.read(with_bias(x)), rtol=0, atol=0)
    # The read is noisy (read noise, output noise, ADC): a second read differs.
    assert not torch.equal(layer(x), y)


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6)])
def test_input_gradient_is_the_tiles_transposed_read(shape: tuple[int, ...]) -> None:
    layer, twin = pair(instances=3, seed=4)
    x = torch.randn(shape, requires_grad=True)
    g = torch.randn(3, 5, 4)
    layer(x).backward(g)
    twin(x.detach())  # the same draws as the layer's forward read
    want = twin.tile.read_transposed(g)[..., :-1]
    if len(shape) == 2:  # one input fed to every chip: its gradient sums theirs
        want = want.sum(0)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, want, rtol=0, atol=0)


def test_backward_captures_what_the_update_needs_without_needless_reads() -> None:
    layer = AnalogLinear(6, 4, instances=2)
    x = torch.randn(5, 6)  # the network's input: no gradient wanted
    reads = layer.tile.log[Event.ARRAY_READ]
    g = torch.randn(2, 5, 4)
    layer(x).backward(g)
    assert layer.tile.log[Event.ARRAY_READ] == reads + 2 * 5  # forward only: per chip, per vector
    assert layer.has_captured
    (got_x, got_d) = layer._captured[0]
    torch.testing.assert_close(got_x, with_bias(x))
    torch.testing.assert_close(got_d, g)
    assert layer.tile.log[Event.STORED_VALUE] == 5 * 6 + g.numel()


def test_no_capture_without_backward() -> None:
    layer = AnalogLinear(6, 4)
    with torch.no_grad():
        layer(torch.randn(5, 6))
    layer(torch.randn(5, 6))
    assert not layer.has_captured


def test_on_ideal_hardware_it_computes_what_nn_linear_does() -> None:
    lin = nn.Linear(6, 4)
    layer = AnalogLinear(
        6, 4, device="ideal", periphery=IDEAL_PERIPHERY, init_weight=lin.weight, init_bias=lin.bias
    )
    w = inspection.true_weights(layer.tile)[0]
    lin.requires_grad_(False)
    step = layer.tile.config.weight_step
    assert layer.program_result.converged == 1.0
    assert float((w[:, :-1] - lin.weight).abs().max()) <= step
    assert float((w[:, -1] - lin.bias).abs().max()) <= step
    x = torch.randn(5, 6, requires_grad=True)
    y = layer(x)
    torch.testing.assert_close(y[0], x @ w[:, :-1].T + w[:, -1], rtol=1e-5, atol=1e-6)
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, w[:, :-1].sum(0).expand(5, 6), rtol=1e-5, atol=1e-6)


def test_the_default_initial_weights_are_torchs_draw_shared_by_the_chips() -> None:
    layer = AnalogLinear(16, 8, bias=False, instances=2, device="ideal")
    w = inspection.true_weights(layer.tile)
    assert w.shape == (2, 8, 16)
    step = layer.tile.config.weight_step
    assert float(w.abs().max()) <= 0.25 + step  # uniform in +-1/sqrt(16)
    assert float(w.std()) > 0.1
    torch.testing.assert_close(w[0], w[1], rtol=0, atol=step)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: AnalogLinear(0, 4), "in_features = 0; need a whole number >= 1"),
        (lambda: AnalogLinear(4, 2.5), "out_features = 2.5"),  # type: ignore[arg-type]
        (lambda: AnalogLinear(4, 2, instances=0), "instances = 0; need a whole number >= 1"),
        (lambda: AnalogLinear(4, 2, seed=-1), "seed = -1"),
        (lambda: AnalogLinear(4, 2, device="nope"), "unknown device preset 'nope'"),
        (
            lambda: AnalogLinear(4, 2, bias=False, init_bias=torch.zeros(2)),
            "init_bias given for a layer without bias",
        ),
        (
            lambda: AnalogLinear(4, 2, init_weight=torch.zeros(4, 2)),
            r"init_weight has shape \(4, 2\); this layer needs 2 rows of 4 weights",
        ),
        (
            lambda: AnalogLinear(4, 2, init_weight=torch.zeros(2, 4), init_bias=torch.zeros(3)),
            r"init_bias has shape \(3,\); need \(2,\)",
        ),
        (
            lambda: AnalogLinear(6, 4, instances=3)(torch.randn(5, 7)),
            "AnalogLinear input has 7 features; this layer takes 6",
        ),
        (
            lambda: AnalogLinear(6, 4, instances=3)(torch.randn(2, 5, 6)),
            r"input has shape \(2, 5, 6\), for 2 chip instances; this chip has 3",
        ),
        (
            lambda: AnalogLinear(6, 4, instances=3)(torch.randn(6)),
            r"input has shape \(6,\); expected shape \(batch, 6\)",
        ),
    ],
)
def test_bad_arguments_are_one_line_config_errors(
    make: Callable[[], object], words: str, one_line_config_error: Callable[..., None]
) -> None:
    one_line_config_error(make, words)
