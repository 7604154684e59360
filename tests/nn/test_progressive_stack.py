"""Progressive gradient descent on a user's model: the float rule on ideal hardware, the chip
protocol, and learning on the embedded digits."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.data import load_dataset
from insitu.devices import get_device
from insitu.hardware import (
    IDEAL_PERIPHERY,
    Event,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
    inspection,
)
from insitu.nn import (
    AnalogLinear,
    AnalogSequence,
    InSituSGD,
    Progressive,
    analog_layers,
    convert,
    events,
    instance_loss,
)


def ideal_tiles() -> TileConfig:
    """Exact devices and converters, summed deterministic pulse counts: analog ~ float."""
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=10_000, sequential=False)
    return TileConfig(get_device("ideal"), IDEAL_PERIPHERY, update)


def batch(seed: int, n: int = 8, features: int = 5) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, features, generator=g), torch.randint(0, 3, (n,), generator=g)


def two_layers() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def float_loss(w: list[Tensor], x: Tensor, y: Tensor) -> float:
    """Cross-entropy of the float network with weights ``w`` (see :func:`float_step`)."""
    one = torch.ones(len(x), 1)
    hidden = torch.cat([(torch.cat([x, one], 1) @ w[0].T).tanh(), one], 1)
    return F.cross_entropy(hidden @ w[1].T, y).item()


def float_step(
    w: list[Tensor], x: Tensor, y: Tensor, lr: float, order: str, refresh: bool
) -> list[Tensor]:
    """The rule by hand on float weights [(4, 5+1), (3, 4+1)] (bias as the last column) of
    ``tanh`` then linear: per layer a forward pass (or the first one, refresh off), the
    softmax error at the output, carried down by the transposed weights as they are now times
    tanh', and that layer's update at once."""
    w = [m.clone() for m in w]
    one = torch.ones(len(x), 1)
    hot = F.one_hot(y, 3).float()
    x0 = torch.cat([x, one], 1)
    z1 = x1 = d2 = torch.empty(0)
    for step, layer in enumerate([1, 0] if order == "output-first" else [0, 1]):
        if step == 0 or refresh:
            z1 = x0 @ w[0].T
            x1 = torch.cat([z1.tanh(), one], 1)
            d2 = (torch.softmax(x1 @ w[1].T, 1) - hot) / len(x)  # cross-entropy, batch mean
        if layer == 1:
            w[1] -= lr * d2.T @ x1
        else:
            d1 = (d2 @ w[1][:, :-1]) * (1 - z1.tanh() ** 2)
            w[0] -= lr * d1.T @ x0
    return w


@pytest.mark.parametrize("order", ["output-first", "input-first"])
@pytest.mark.parametrize("refresh", [True, False])
def test_on_ideal_hardware_a_step_is_the_float_rule(order: str, refresh: bool) -> None:
    net = two_layers()
    model = convert(net, device=ideal_tiles())
    w = [inspection.true_weights(layer.tile)[0] for layer in analog_layers(model)]
    opt = Progressive(model, lr=0.5, order=order, refresh=refresh)  # type: ignore[arg-type]
    for step in range(3):
        x, y = batch(step)
        loss = opt.step(x, y, F.cross_entropy)
        assert loss.item() == pytest.approx(float_loss(w, x, y), abs=2e-3)
        w = float_step(w, x, y, 0.5, order, refresh)
        for layer, expected in zip(analog_layers(model), w, strict=True):
            torch.testing.assert_close(
                inspection.true_weights(layer.tile)[0], expected, rtol=0, atol=3e-3
            )
    # The refreshed and the stale rules differ: the test above sees which one ran.
    x, y = batch(0)
    w0 = [inspection.true_weights(layer.tile)[0] for layer in analog_layers(model)]
    fresh, stale = float_step(w0, x, y, 0.5, order, True), float_step(w0, x, y, 0.5, order, False)
    assert float((fresh[0] - stale[0]).abs().max() + (fresh[1] - stale[1]).abs().max()) > 1e-3


def float_progressive(net: nn.Module, x: Tensor, y: Tensor, lr: float) -> None:
    """The rule on a float network by autograd: output-first, a fresh pass per weight layer,
    only that layer's weights stepped."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer in reversed(layers):
        loss = F.cross_entropy(net(x), y)
        grads = torch.autograd.grad(loss, [layer.weight, layer.bias])
        with torch.no_grad():
            for p, g in zip((layer.weight, layer.bias), grads, strict=True):
                p -= lr * g


def test_a_converted_cnn_follows_the_float_rule_on_ideal_hardware() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 6),
        nn.Sigmoid(), nn.Linear(6, 3),
    )  # fmt: skip
    model = convert(net, device=ideal_tiles())
    opt = Progressive(model, lr=0.5)
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        x, y = torch.rand(4, 1, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g)
        opt.step(x, y, F.cross_entropy)
        float_progressive(net, x, y, 0.5)
    digital = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer, twin in zip(analog_layers(model), digital, strict=True):
        w = inspection.true_weights(layer.tile)[0]
        torch.testing.assert_close(w[:, :-1], twin.weight.detach().flatten(1), rtol=0, atol=3e-3)
        torch.testing.assert_close(w[:, -1], twin.bias.detach(), rtol=0, atol=3e-3)


def test_it_drives_the_tiles_only_through_the_chip_protocol(
    monkeypatch: pytest.MonkeyPatch, seal_chip: Callable[[], None]
) -> None:
    model = convert(two_layers(), instances=2, seed=3)
    tiles = [layer.tile for layer in analog_layers(model)]
    before = events(model)

    seal_chip()
    calls: list[tuple[str, int]] = []

    def spy(name: str) -> Callable[..., Any]:
        real = getattr(Tile, name)

        def call(tile: Tile, *args: Any) -> Any:
            calls.append((name, tiles.index(tile)))
            return real(tile, *args)

        return call

    for name in ("read", "read_transposed", "update"):
        monkeypatch.setattr(Tile, name, spy(name))
    opt = Progressive(model, lr=0.2, layer_lr=(2.0, 1.0))
    x, y = batch(0)
    opt.step(x, y, F.cross_entropy)
    # Output-first: a pass, the top layer pulsed; a fresh pass, the error carried down through
    # the top layer's transposed read, the bottom layer pulsed. No transposed read below.
    assert calls == [
        ("read", 0), ("read", 1), ("update", 1),
        ("read", 0), ("read", 1), ("read_transposed", 1), ("update", 0),
    ]  # fmt: skip
    after = events(model)
    assert after[Event.PULSE] > before[Event.PULSE]
    assert after.get(Event.STORED_VALUE, 0.0) == before.get(Event.STORED_VALUE, 0.0)  # none held
    assert all(layer.capturing and not layer.has_captured for layer in analog_layers(model))
    # Reusing the first pass holds its signals: counted.
    Progressive(model, lr=0.2, refresh=False).step(x, y, F.cross_entropy)
    held = 2 * 8 * (5 + 4 + 4 + 3)  # instances x batch x (inputs + outputs of both layers)
    assert events(model)[Event.STORED_VALUE] - after.get(Event.STORED_VALUE, 0.0) == held


def test_a_stack_built_from_analog_layers_trains_without_convert() -> None:
    stack = nn.Sequential(
        AnalogLinear(5, 4, instances=2, device=ideal_tiles()),
        nn.Tanh(),
        AnalogLinear(4, 3, instances=2, device=ideal_tiles()),
    )
    opt = Progressive(stack, lr=0.5)
    x, y = batch(0)
    with torch.no_grad():  # step builds the graphs it needs
        losses = [opt.step(x, y, F.cross_entropy).item() for _ in range(10)]
    assert losses[-1] < losses[0] - 0.05


def test_insitu_sgd_still_captures_after_a_progressive_step() -> None:
    model = convert(two_layers(), device=ideal_tiles())
    Progressive(model, lr=0.1).step(*batch(0), F.cross_entropy)
    opt = InSituSGD(model, lr=0.1)
    x, y = batch(1)
    instance_loss(F.cross_entropy, model(x), y).backward()
    assert all(layer.has_captured for layer in analog_layers(model))
    opt.step()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda m: Progressive(m, lr=0.0), "lr"),
        (lambda m: Progressive(m, lr=0.1, order="sideways"), "order"),
        (lambda m: Progressive(m, lr=0.1, refresh="yes"), "refresh"),
        (lambda m: Progressive(m, lr=0.1, layer_lr=(1.0,)), "layer_lr"),
        (lambda m: Progressive(nn.Linear(2, 2), lr=0.1), "no analog layers"),
        (lambda m: AnalogSequence(m).carry_and_update(torch.zeros(()), 2, 0.1), "layer 2"),
    ],
)
def test_bad_options_are_config_errors(
    make: Callable[[nn.Module], object],
    words: str,
    one_line_config_error: Callable[[Callable[[], object], str], None],
) -> None:
    model = convert(two_layers())
    one_line_config_error(lambda: make(model), words)


def test_a_users_mlp_with_mixed_activations_learns_digits_progressively() -> None:
    data = load_dataset("digits")
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(data.n_features, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(),
        nn.Linear(16, data.n_classes),
    )  # fmt: skip
    model = convert(net, device="ecram-organic", instances=2, seed=0)
    opt = Progressive(model, lr=0.2)
    order = torch.Generator().manual_seed(0)
    for _ in range(4):
        for idx in torch.randperm(len(data.x_train), generator=order).split(10):
            opt.step(data.x_train[idx], data.y_train[idx], F.cross_entropy)
    with torch.no_grad():
        accuracy = (model(data.x_test).argmax(-1) == data.y_test).float().mean(1)
    assert accuracy.shape == (2,)
    assert float(accuracy.min()) > 0.85, accuracy  # chance: 0.1


@pytest.mark.parametrize("refresh", [False, True])
def test_input_first_pulses_the_tiles_as_insitu_sgd_does(refresh: bool) -> None:
    """Before any layer above it moves, a layer's progressive update is InSituSGD's, pulse for
    pulse, on a converted CNN with asymmetric noisy devices and capped pulse counts: the same
    loss scale over batch and chips, lr units, patch sums and transposed reads. Input-first
    with one pass for all layers (refresh off) is then backprop's step on every layer; with
    a fresh pass per layer only the first layer's update is the same."""
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3),
        nn.ReLU(), nn.Flatten(), nn.Linear(16, 3),
    )  # fmt: skip
    update = UpdateParams(mode=UpdateMode.COUNT, sequential=False)
    tiles = TileConfig(get_device("ecram-liwo3"), IDEAL_PERIPHERY, update)
    model = convert(net, device=tiles, instances=2, seed=4)
    twin = copy.deepcopy(model)
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(6, 1, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)
    before = [inspection.true_weights(layer.tile) for layer in analog_layers(model)]
    sgd = InSituSGD(twin, lr=0.3)
    instance_loss(F.cross_entropy, twin(x), y).backward()
    sgd.step()
    Progressive(model, lr=0.3, order="input-first", refresh=refresh).step(x, y, F.cross_entropy)
    after = [inspection.true_weights(layer.tile) for layer in analog_layers(model)]
    assert all(not torch.equal(a, b) for a, b in zip(after, before, strict=True))  # all pulsed
    same = [
        torch.equal(a, inspection.true_weights(b.tile))
        for a, b in zip(after, analog_layers(twin), strict=True)
    ]
    assert same == ([True, False, False] if refresh else [True, True, True])
