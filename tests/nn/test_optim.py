"""InSituSGD: pulsed updates on the tiles through the chip protocol, SGD on digital weights."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_PERIPHERY,
    Event,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
    inspection,
)
from insitu.nn import AnalogLinear, InSituSGD, analog_layers, convert, events, instance_loss


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def batch(seed: int, n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_the_optimizer_never_reads_a_true_conductance(
    monkeypatch: pytest.MonkeyPatch, seal_chip: Callable[[], None]
) -> None:
    model = convert(mlp(), instances=2, seed=1)
    tiles = [layer.tile for layer in analog_layers(model)]
    g_of, pulses_of = inspection.conductances, inspection.pulse_counts  # the test's own window
    g_start = [torch.stack(g_of(t)) for t in tiles]
    n_start = [pulses_of(t) for t in tiles]
    logged_start = events(model)[Event.PULSE]

    seal_chip()
    updates: list[tuple[Tile, float]] = []
    real_update = Tile.update

    def spy(tile: Tile, x: Tensor, d: Tensor, lr: float) -> None:
        updates.append((tile, lr))
        real_update(tile, x, d, lr)

    monkeypatch.setattr(Tile, "update", spy)
    opt = InSituSGD(model.parameters(), lr=0.5)
    for step in range(3):
        opt.zero_grad()
        x, y = batch(step)
        instance_loss(F.cross_entropy, model(x), y).backward()
        if step == 0:  # reads and transposed reads write nothing
            for t, g in zip(tiles, g_start, strict=True):
                assert torch.equal(torch.stack(g_of(t)), g)
        opt.step()
    assert updates == [(t, 0.5) for _ in range(3) for t in tiles]
    logged = 0.0
    for t, g0, n0 in zip(tiles, g_start, n_start, strict=True):
        moved = (torch.stack(g_of(t)) != g0).any(0)  # (I, out, in): either device of a pair
        pulsed = pulses_of(t) > n0
        assert bool(moved.any())
        assert bool((moved <= pulsed).all())  # a conductance changed only where pulses landed
        logged += 2 * float((pulses_of(t) - n0).sum())  # a pulse reaches both devices of a pair
    assert events(model)[Event.PULSE] - logged_start == pytest.approx(logged)


def ideal_tiles() -> TileConfig:
    """Exact devices and converters, summed deterministic pulse counts: analog ~ float SGD."""
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=10_000, sequential=False)
    return TileConfig(get_device("ideal"), IDEAL_PERIPHERY, update)


def test_on_ideal_hardware_it_tracks_float_sgd() -> None:
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3), nn.PReLU())
    model = convert(net, device=ideal_tiles())
    opt, float_opt = InSituSGD(model, lr=0.5), torch.optim.SGD(net.parameters(), lr=0.5)
    for step in range(20):
        x, y = batch(step)
        for o in (opt, float_opt):
            o.zero_grad()
        loss = F.cross_entropy(model(x)[0], y)
        loss.backward()
        float_loss = F.cross_entropy(net(x), y)
        float_loss.backward()
        opt.step()
        float_opt.step()
        assert loss.item() == pytest.approx(float_loss.item(), abs=5e-3)
    for layer, lin in zip(analog_layers(model), (net[0], net[2]), strict=True):
        w = inspection.true_weights(layer.tile)[0]
        torch.testing.assert_close(w[:, :-1], lin.weight.detach(), rtol=0, atol=5e-3)
        torch.testing.assert_close(w[:, -1], lin.bias.detach(), rtol=0, atol=5e-3)
    # The PReLU stayed digital and took the same plain SGD steps.
    torch.testing.assert_close(model[3].weight, net[3].weight, rtol=0, atol=5e-3)
    assert float((model[3].weight.detach() - 0.25).abs()) > 1e-3


@pytest.mark.parametrize("mode", list(UpdateMode))
def test_each_update_scheme_of_the_tile_is_applied(mode: UpdateMode) -> None:
    model = convert(mlp(), update=UpdateParams(mode=mode))
    opt = InSituSGD(model, lr=0.5)
    before = events(model)
    x, y = batch(0)
    instance_loss(F.cross_entropy, model(x), y).backward()
    opt.step()
    after = events(model)
    assert after[Event.PULSE] > before[Event.PULSE]
    sequential = 8  # one rank-1 update per sample, per layer
    assert after[Event.UPDATE] - before[Event.UPDATE] == 2 * sequential


def test_gradients_of_several_backward_passes_make_one_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = AnalogLinear(6, 3, instances=2)
    seen: list[tuple[int, ...]] = []
    real_update = Tile.update

    def spy(tile: Tile, x: Tensor, d: Tensor, lr: float) -> None:
        seen.append((*x.shape, *d.shape))
        real_update(tile, x, d, lr)

    monkeypatch.setattr(Tile, "update", spy)
    opt = InSituSGD(layer, lr=0.1)
    layer(torch.rand(4, 6)).sum().backward()
    layer(torch.rand(2, 3, 6)).sum().backward()
    opt.step()
    assert seen == [(2, 7, 7, 2, 7, 3)]  # inputs with the bias column, errors per chip
    opt.zero_grad()
    assert not layer.has_captured
    opt.step()  # nothing captured: no update, no pulse
    assert len(seen) == 1


def test_parameter_groups_set_a_pulse_gain_per_layer() -> None:
    model = convert(mlp())
    first, second = analog_layers(model)
    opt = InSituSGD(
        [{"params": [first.analog_tile], "lr": 0.0}, {"params": [second.analog_tile]}], lr=0.5
    )
    assert opt.analog_layers() == [first, second]
    before = [inspection.conductances(layer.tile)[0] for layer in (first, second)]
    x, y = batch(0)
    instance_loss(F.cross_entropy, model(x), y).backward()
    opt.step()
    after = [inspection.conductances(layer.tile)[0] for layer in (first, second)]
    assert torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), "0.1"])
def test_a_bad_learning_rate_is_a_config_error(lr: object) -> None:
    with pytest.raises(ConfigError, match="lr ="):
        InSituSGD(AnalogLinear(2, 2), lr=lr)  # type: ignore[arg-type]
