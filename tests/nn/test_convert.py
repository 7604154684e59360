"""convert: a user's torch model on analog tiles, digital layers kept, N chips at once."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.data import Dataset, load_dataset
from insitu.hardware import IDEAL_PERIPHERY, Event, inspection
from insitu.nn import (
    AnalogConv2d,
    AnalogLinear,
    InSituSGD,
    analog_layers,
    convert,
    events,
    instance_loss,
)


def mixed_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 10)
    )


class LeNet(nn.Module):
    """A user's own CNN for 8x8 images, with functional code in its forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3)
        )
        self.classifier = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.features(x)), 1)
        return self.classifier(torch.flatten(h, 1))


def test_a_mixed_mlp_keeps_its_digital_layers() -> None:
    net = mixed_mlp()
    model = convert(net, instances=2)
    kinds = [type(m) for m in model]
    assert kinds == [AnalogLinear, nn.ReLU, AnalogLinear, nn.Tanh, AnalogLinear]
    assert all(type(m) is nn.Linear for m in net[::2])  # the original is untouched
    x = torch.rand(20, 64)
    y = model(x)
    assert y.shape == (2, 20, 10)
    # Each tile holds its float layer's weights (write-verify to one weight step) ...
    for layer, lin in zip(analog_layers(model), net[::2], strict=True):
        assert isinstance(lin, nn.Linear)
        w = inspection.true_weights(layer.tile)
        want = torch.cat([lin.weight, lin.bias.unsqueeze(1)], dim=1).detach()
        step = layer.tile.config.weight_step
        assert float((w - want).abs().mean()) < step
        assert layer.program_result.converged > 0.9  # noisy steps: a few stop just outside
    # ... so with exact converters the chips compute what the float network does, up to the
    # devices' read noise and programming error.
    exact = convert(net, instances=2, periphery=IDEAL_PERIPHERY)
    with torch.no_grad():
        error = (exact(x) - net(x)).abs().max() / net(x).abs().max()
    assert float(error) < 0.05


@pytest.mark.parametrize("make", [LeNet, lambda: nn.Sequential(*LeNet().features, nn.Flatten())])
def test_a_lenet_like_cnn_converts_and_trains(make: type[nn.Module]) -> None:
    model = convert(make(), instances=2, seed=3)
    analog = [type(m) for m in model.modules() if isinstance(m, (AnalogConv2d, AnalogLinear))]
    assert AnalogConv2d in analog
    assert any(type(m) is nn.MaxPool2d for m in model.modules())
    assert not any(type(m) in (nn.Linear, nn.Conv2d) for m in model.modules())
    x = torch.rand(4, 1, 8, 8)
    y = model(x)
    assert y.shape[:2] == (2, 4)
    before = events(model)[Event.PULSE]
    opt = InSituSGD(model, lr=0.5)
    y.square().mean().backward()
    opt.step()
    assert all(layer.has_captured for layer in analog_layers(model))
    assert events(model)[Event.PULSE] > before


def test_three_chips_train_at_once_and_differ_by_their_device_draws() -> None:
    model = convert(mixed_mlp(), instances=3, seed=5)
    layer = analog_layers(model)[0]
    step_sizes = inspection.device_arrays(layer.tile)[0][0]  # first field, (I, out, in)
    assert not torch.equal(step_sizes[0], step_sizes[1])
    n0 = inspection.pulse_counts(layer.tile)
    x = torch.rand(16, 64)
    y = model(x)
    assert not torch.allclose(y[0], y[1])
    opt = InSituSGD(model, lr=0.5)
    instance_loss(F.cross_entropy, y, torch.arange(16) % 10).backward()
    opt.step()
    pulsed = (inspection.pulse_counts(layer.tile) - n0).sum((1, 2))
    assert bool((pulsed > 0).all())  # every chip was updated in the one step
    assert len(set(pulsed.tolist())) > 1  # by its own pulses


def test_one_seed_fixes_a_converted_model() -> None:
    x = torch.rand(4, 64)
    a, b, c = (convert(mixed_mlp(), seed=s) for s in (1, 1, 2))
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))


def test_instance_loss_sums_the_chips_losses() -> None:
    out = torch.randn(3, 5, 10)
    y = torch.randint(0, 10, (5,))
    want = sum(F.cross_entropy(o, y) for o in out)
    torch.testing.assert_close(instance_loss(F.cross_entropy, out, y), want)


def test_a_single_layer_model_becomes_that_analog_layer() -> None:
    layer = convert(nn.Conv2d(2, 3, 3), instances=2)
    assert isinstance(layer, AnalogConv2d) and not layer.stacked
    assert layer(torch.rand(4, 2, 5, 5)).shape == (2, 4, 3, 3, 3)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: convert(nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)))),
            r"0\.0: Conv2d with groups=2, .* AnalogConv2d takes groups=1",
        ),
        (lambda: convert(nn.Conv2d(1, 1, 3, padding="same")), "whole-number padding"),
        (lambda: convert("net"), "convert takes a torch.nn.Module; got str"),  # type: ignore[arg-type]
        (lambda: convert(convert(mixed_mlp())), "holds analog layers already"),
        (lambda: convert(mixed_mlp(), instances=0), "instances = 0"),
        (lambda: convert(mixed_mlp(), seed=-2), "seed = -2"),
        (lambda: convert(mixed_mlp(), device="ecram"), "unknown device preset 'ecram'"),
    ],
)
def test_bad_arguments_are_one_line_config_errors(
    make: Callable[[], object], words: str, one_line_config_error: Callable[..., None]
) -> None:
    one_line_config_error(make, words)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_a_converted_mlp_learns_digits_in_situ(digits: Dataset) -> None:
    model = convert(mixed_mlp(), instances=2, seed=0)
    opt = InSituSGD(model, lr=0.2)
    order = torch.Generator().manual_seed(0)
    for _ in range(3):
        perm = torch.randperm(len(digits.x_train), generator=order)
        for idx in perm.split(10):
            opt.zero_grad()
            out = model(digits.x_train[idx])
            instance_loss(F.cross_entropy, out, digits.y_train[idx]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (model(digits.x_test).argmax(-1) == digits.y_test).float().mean(1)
    assert bool((accuracy > 0.8).all()), accuracy  # chance is 0.1


def test_a_converted_model_saves_and_restores_its_chips() -> None:
    model = convert(mixed_mlp(), instances=2, seed=1)
    opt = InSituSGD(model, lr=0.5)
    instance_loss(F.cross_entropy, model(torch.rand(5, 64)), torch.arange(5)).backward()
    opt.step()
    restored = convert(mixed_mlp(), instances=2, seed=2)  # other device draws
    restored.load_state_dict(model.state_dict())
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    twin = copy.deepcopy(model)
    x = torch.rand(3, 64)
    y = model(x)
    assert y.shape == (2, 3, 10)
    for other in (restored, loaded, twin):
        assert torch.equal(other(x), y)  # the same chips, in the same generator state
        assert events(other) == events(model)
        assert [p.layer for p in InSituSGD(other, lr=0.1).param_groups[0]["params"]] == (
            analog_layers(other)
        )
