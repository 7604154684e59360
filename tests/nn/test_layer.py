"""What every analog layer shares: its parameter handle, checkpoints, copies, event counts."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from insitu.errors import ConfigError
from insitu.hardware import Event, inspection
from insitu.nn import AnalogLinear, InSituSGD, TileParameter, analog_layers, events


def train_step(layer: AnalogLinear, lr: float = 0.5) -> None:
    opt = InSituSGD(layer, lr=lr)
    opt.zero_grad()
    layer(torch.rand(8, 6)).square().sum().backward()
    opt.step()


def test_the_weights_are_not_a_float_parameter() -> None:
    layer = AnalogLinear(6, 4)
    (handle,) = layer.parameters()
    assert isinstance(handle, TileParameter) and handle.layer is layer
    assert handle.numel() == 0
    before = inspection.conductances(layer.tile)
    layer(torch.rand(3, 6)).sum().backward()
    assert handle.grad is None
    torch.optim.SGD(layer.parameters(), lr=1.0).step()  # a float optimizer has nothing to move
    for g0, g1 in zip(before, inspection.conductances(layer.tile), strict=True):
        assert torch.equal(g0, g1)


def test_state_dict_restores_the_chip_and_its_generator() -> None:
    layer = AnalogLinear(6, 4, instances=2, seed=1)
    train_step(layer)
    other = AnalogLinear(6, 4, instances=2, seed=9)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=False))
    assert events(other) == events(layer)
    for g0, g1 in zip(
        inspection.conductances(layer.tile), inspection.conductances(other.tile), strict=True
    ):
        assert torch.equal(g0, g1)
    x = torch.rand(5, 6)
    assert torch.equal(layer(x), other(x))  # the same noise draws follow


def test_a_deep_copy_is_an_independent_chip() -> None:
    layer = AnalogLinear(6, 4, seed=2)
    train_step(layer)  # the compiled update keeps views of the tile's tensors
    twin = copy.deepcopy(layer)
    (handle,) = twin.parameters()
    assert isinstance(handle, TileParameter) and handle.layer is twin
    x = torch.rand(5, 6)
    assert torch.equal(layer(x), twin(x))
    before = inspection.conductances(layer.tile)[0]
    train_step(twin)
    assert torch.equal(inspection.conductances(layer.tile)[0], before)
    assert not torch.equal(inspection.conductances(twin.tile)[0], before)
    assert events(twin)[Event.PULSE] > events(layer)[Event.PULSE]


def test_events_sum_every_analog_layer() -> None:
    model = nn.Sequential(AnalogLinear(6, 5), nn.ReLU(), AnalogLinear(5, 3, seed=1))
    assert [type(m) for m in analog_layers(model)] == [AnalogLinear, AnalogLinear]
    model(torch.rand(4, 6))
    a, b = (layer.tile.log.counts() for layer in analog_layers(model))
    total = events(model)
    for kind in (Event.ARRAY_READ, Event.MAC, Event.PULSE, Event.DEVICE_READ):
        assert total[kind] == a[kind] + b[kind]
    assert total[Event.ARRAY_READ] == 2 * 4  # four input vectors through each tile
    assert total[Event.PROGRAM_ITERATION] > 0  # the initial write-verify counts too


def test_a_stacked_batch_must_hold_every_chip() -> None:
    layer = AnalogLinear(6, 4, instances=3)
    layer.stacked = True
    assert layer(torch.rand(6, 6)).shape == (6, 4)
    with pytest.raises(ConfigError, match="batches, a multiple of 3"):
        layer(torch.rand(5, 6))
