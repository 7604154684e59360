"""ChipSNN: a spiking chip's layers as an nn.Module behind a torch front-end, trained in the
loop: measured values forward, the model's gradient back into the front-end, weights reaching
the chip only as integers through write_weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from insitu.hardware import inspection
from insitu.hardware.spiking import WEIGHT_LIMIT, NeuronParams, Recording, SpikingChipConfig
from insitu.nn import LIF, ChipSNN, PerStep, events, nominal_params

STEPS = 10
NEURON = NeuronParams().with_mismatch(0.25)


def chip_layer(instances: int = 2, inputs: int = 2 * 6 * 6, seed: int = 0) -> ChipSNN:
    config = SpikingChipConfig.from_sizes((inputs, 12, 3), time_steps=STEPS, neuron=NEURON)
    options = {"init_scale": 6.0}
    # The torch reference: the compiled kernels are tested with the chip and the model.
    return ChipSNN(config, instances=instances, seed=seed, options=options, backend="torch")


def front_end() -> tuple[nn.Conv2d, nn.Module]:
    conv = nn.Conv2d(1, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.mul_(8.0)  # enough drive that the software LIF layer spikes
    return conv, nn.Sequential(PerStep(conv), PerStep(nn.Flatten()), LIF(nominal_params(NEURON)))


def images(batch: int = 4) -> Tensor:
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(batch, STEPS, 1, 8, 8, generator=gen) < 0.3).float()


def spy(chip: ChipSNN, name: str) -> list[tuple[Any, ...]]:
    """Record every call of the chip's ``name`` (arguments and result), still calling it."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(chip.chip, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        calls.append((*args, kwargs, out))
        return out

    setattr(chip.chip, name, recorded)
    return calls


def test_gradients_reach_the_front_end_and_adam_trains_both() -> None:
    torch.manual_seed(0)
    conv, front = front_end()
    chip = chip_layer()
    spikes = front(images())
    assert set(spikes.unique().tolist()) == {0.0, 1.0}
    readout = chip(spikes)
    assert readout.shape == (2, 4, STEPS, 3)
    readout.amax(2).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in chip.parameters())
    before = [p.detach().clone() for p in (conv.weight, *chip.parameters())]
    torch.optim.Adam([conv.weight, *chip.parameters()], lr=1e-3).step()
    after = (conv.weight, *chip.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def test_forward_values_are_the_chips_measurement_not_the_models() -> None:
    chip = chip_layer()
    runs = spy(chip, "run")
    x = (torch.rand(3, STEPS, 72, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    readout, hidden = chip.run(x)
    (recording,) = (call[-1] for call in runs)
    assert isinstance(recording, Recording)
    assert torch.equal(readout, recording.readout)
    assert torch.equal(hidden[0], recording.spikes[0])
    chip.in_the_loop = False  # the software model alone: nominal neurons, float weights
    model_readout = chip(x)
    assert len(runs) == 1  # the model ran without the chip
    assert (model_readout - readout).abs().max() > 0.05  # mismatch and noise show


def test_weights_reach_the_chip_only_as_integers_through_write_weights() -> None:
    chip = chip_layer()
    writes = spy(chip, "write_weights")
    x = (torch.rand(2, STEPS, 72, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    chip(x).sum().backward()
    assert [call[0] for call in writes] == [0, 1]  # one write per layer
    stored = inspection.spiking_weights(chip.chip)
    for (_, ints, _, _), w, scale, held in zip(
        writes, chip.weights, chip.scale, stored, strict=True
    ):
        assert ints.dtype == torch.int8 and int(ints.abs().max()) <= WEIGHT_LIMIT
        expected = (w.detach() / scale).round().clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT)
        assert torch.equal(ints.float(), expected)
        assert torch.equal(held, ints)
    chip(x)
    assert len(writes) == 2  # unchanged weights are not written again
    torch.optim.Adam(chip.parameters(), lr=0.05).step()
    chip(x)
    assert len(writes) == 4
    assert chip.log.counts()["host_bytes_in"] > 0


def test_recurrent_layers_train_and_are_written() -> None:
    config = SpikingChipConfig.from_sizes((72, 12, 3), recurrent=True, time_steps=STEPS)
    chip = ChipSNN(config, instances=2, options={"init_scale": 6.0}, backend="torch")
    assert sorted(name for name, _ in chip.named_parameters()) == [
        "recurrent.0",
        "weights.0",
        "weights.1",
    ]
    writes = spy(chip, "write_weights")
    x = (torch.rand(2, STEPS, 72, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    chip(x).sum().backward()
    assert [(call[0], call[2]["recurrent"]) for call in writes] == [
        (0, False),
        (0, True),
        (1, False),
    ]
    (held,) = (w for w in inspection.recurrent_weights(chip.chip) if w is not None)
    assert torch.equal(held, writes[1][1])
    assert chip.recurrent["0"].grad is not None and chip.recurrent["0"].grad.abs().sum() > 0


def test_weights_beyond_the_synapses_are_clipped_before_writing() -> None:
    chip = chip_layer(instances=1)
    with torch.no_grad():
        chip.weights[0].mul_(1000.0)
    chip(torch.zeros(1, STEPS, 72))
    limit = WEIGHT_LIMIT * chip.scale[0]
    assert float(chip.weights[0].detach().abs().max()) == pytest.approx(limit)
    assert int(inspection.spiking_weights(chip.chip)[0].abs().max()) == WEIGHT_LIMIT


class ProtocolOnly:
    """A spiking chip seen only through its protocol: anything else raises."""

    def __init__(self, chip: Any) -> None:
        self._chip = chip

    def __getattr__(self, name: str) -> Any:
        if name not in ("write_weights", "run", "log", "instances"):
            raise AssertionError(f"the chip layer reached past the chip protocol: {name}")
        return getattr(self._chip, name)


def test_the_layer_uses_only_the_chip_protocol() -> None:
    chip = chip_layer()
    chip.chip = ProtocolOnly(chip.chip)  # type: ignore[assignment]
    x = (torch.rand(2, STEPS, 72, generator=torch.Generator().manual_seed(4)) < 0.4).float()
    chip(x).sum().backward()
    assert events(chip)["emulation_step"] == 2 * 2 * STEPS


def test_instances_each_run_their_own_chip() -> None:
    chip = chip_layer(instances=3)
    with torch.no_grad():  # the same weights on every chip: only mismatch and noise differ
        for w in chip.weights:
            w.copy_(w[:1].expand_as(w))
    x = (torch.rand(2, STEPS, 72, generator=torch.Generator().manual_seed(5)) < 0.4).float()
    shared = chip(x)
    assert shared.shape == (3, 2, STEPS, 3)
    assert (shared[0] - shared[1]).abs().max() > 0 and (shared[1] - shared[2]).abs().max() > 0
    own = chip(x.unsqueeze(0).expand(3, -1, -1, -1).contiguous())
    assert own.shape == (3, 2, STEPS, 3)


def test_events_reach_the_chips_log() -> None:
    _, front = front_end()
    chip = chip_layer()
    model = nn.Sequential(front, chip)
    model(images(2))
    assert events(model) == dict(sorted(chip.log.counts().items()))
    assert events(model)["emulation_step"] == 2 * 2 * STEPS


def test_state_dict_carries_the_chip() -> None:
    chip = chip_layer(seed=0)
    chip(torch.zeros(1, STEPS, 72))
    other = chip_layer(seed=7)
    other.load_state_dict(chip.state_dict())
    for a, b in zip(other.parameters(), chip.parameters(), strict=True):
        assert torch.equal(a, b)
    mine, theirs = (inspection.neuron_parameters(c.chip)[0] for c in (chip, other))
    assert torch.equal(mine.threshold, theirs.threshold)
    assert other.log.counts() == chip.log.counts()


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ((2, STEPS, 70), "chip input has shape"),
        ((2, STEPS + 1, 72), "chip input has shape"),
        ((5, 2, STEPS, 72), "chip input has shape"),
        ((STEPS, 72), "chip input has shape"),
    ],
)
def test_bad_input_shapes_are_named(
    shape: tuple[int, ...],
    words: str,
    one_line_config_error: Callable[[Callable[[], object], str], None],
) -> None:
    chip = chip_layer()
    one_line_config_error(lambda: chip(torch.zeros(shape)), words)


def test_currents_instead_of_spikes_are_refused(
    one_line_config_error: Callable[[Callable[[], object], str], None],
) -> None:
    chip = chip_layer()
    one_line_config_error(lambda: chip(torch.full((2, STEPS, 72), 0.5)), "must be spikes")
    one_line_config_error(lambda: chip_layer(instances=0), "instances")
