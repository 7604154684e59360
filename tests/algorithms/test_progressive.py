"""Progressive gradient descent: one step checked by hand, options, and what it costs."""

from __future__ import annotations

import pytest
import torch

from insitu.algorithms import make_trainer
from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_PERIPHERY,
    ChipConfig,
    Event,
    Periphery,
    TileConfig,
    UpdateParams,
)
from insitu.hardware.inspection import true_weights

LAYERS = (3, 4, 3, 2)


def _ideal_config() -> ChipConfig:
    tile = TileConfig(
        get_device("ideal"),
        periphery=IDEAL_PERIPHERY,
        update=UpdateParams(mode="count", max_pulses=10_000, sequential=False),
    )
    return ChipConfig(LAYERS, tile, "sigmoid")


def _gradient_step(
    weights: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, layer: int, lr: float
) -> torch.Tensor:
    """``layer``'s weights after one SGD step computed with ``weights`` as they are now."""
    acts = [x]
    for i, w in enumerate(weights):
        z = torch.cat([acts[-1], torch.ones(len(x), 1)], 1) @ w.T
        acts.append(z if i == len(weights) - 1 else torch.sigmoid(z))
    d = (torch.softmax(acts[-1], 1) - torch.nn.functional.one_hot(y, 2)) / len(x)
    for above in range(len(weights) - 1, layer, -1):
        a = acts[above]
        d = (d @ weights[above][:, :-1]) * a * (1 - a)
    grad = d.T @ torch.cat([acts[layer], torch.ones(len(x), 1)], 1)
    return weights[layer] - lr * grad


@pytest.mark.parametrize(
    ("order", "factors"),
    [("output-first", None), ("input-first", None), ("output-first", (0.5, 1.5, 1.0))],
)
def test_one_step_equals_gradients_with_already_updated_layers(
    order: str, factors: tuple[float, ...] | None
) -> None:
    lr = 2.0
    trainer = make_trainer(
        "progressive",
        _ideal_config(),
        instances=1,
        seed=4,
        lr=lr,
        options={"order": order, "layer_lr": factors},
    )
    chip = trainer.chip  # type: ignore[attr-defined]
    x = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3]])
    y = torch.tensor([1, 0])
    weights = [true_weights(t)[0].clone() for t in chip.tiles]
    stale = [w.clone() for w in weights]
    trainer.train_batch(x, y)
    layers = range(len(weights) - 1, -1, -1) if order == "output-first" else range(len(weights))
    for layer in layers:
        rate = lr * (factors[layer] if factors else 1.0)  # layer_lr: a pulse gain per tile
        weights[layer] = _gradient_step(weights, x, y, layer, rate)
    step = chip.config.tile.weight_step
    for tile, w in zip(chip.tiles, weights, strict=True):
        assert (true_weights(tile)[0] - w).abs().max() <= 2 * step
    # Plain backprop (every gradient from the old weights) differs by far more than that.
    backprop = [_gradient_step(stale, x, y, k, lr) for k in range(len(stale))]
    first_updated = 0 if order == "input-first" else len(weights) - 1
    others = [k for k in range(len(weights)) if k != first_updated]
    assert max((backprop[k] - weights[k]).abs().max() for k in others) > 20 * step


def test_forward_passes_and_storage_per_sample() -> None:
    n_layers = len(LAYERS) - 1
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 0, 1, 1])
    reads = {}
    for refresh in (True, False):
        trainer = make_trainer(
            "progressive", _ideal_config(), instances=2, lr=0.1, options={"refresh": refresh}
        )
        log = trainer.log
        log.reset()
        trainer.train_batch(x, y)
        reads[refresh] = log[Event.ARRAY_READ]
        transposed = sum(range(n_layers))  # layer l needs L-1-l transposed reads
        passes = n_layers if refresh else 1
        assert reads[refresh] == 2 * 5 * (passes * n_layers + transposed)
        assert (log[Event.STORED_VALUE] == 0) is refresh
    sgd = make_trainer("analog-sgd", _ideal_config(), instances=2, lr=0.1)
    sgd.log.reset()
    sgd.train_batch(x, y)
    assert sgd.log[Event.STORED_VALUE] > 0
    assert sgd.log[Event.ARRAY_READ] == 2 * 5 * (n_layers + n_layers - 1)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="valid: layer_lr, order, refresh, saturation_gate"):
        make_trainer("progressive", _ideal_config(), options={"ordr": "input-first"})
    with pytest.raises(ConfigError, match="output-first, input-first"):
        make_trainer("progressive", _ideal_config(), options={"order": "sideways"})
    with pytest.raises(ConfigError, match="takes no options"):
        make_trainer("analog-sgd", _ideal_config(), options={"order": "input-first"})
    with pytest.raises(ConfigError, match="need a list of positive numbers"):
        make_trainer("progressive", _ideal_config(), options={"layer_lr": [1.0, 0.0, 1.0]})
    with pytest.raises(ConfigError, match=r"2 factor.*3 weight layer"):
        make_trainer("progressive", _ideal_config(), options={"layer_lr": [1.2, 1.0]})


def test_progressive_learns_digits_subset() -> None:
    from insitu.data import load_dataset
    from insitu.experiments.run import accuracy

    ds = load_dataset("digits", limit_train=400)
    cfg = ChipConfig((64, 16, 10), TileConfig(get_device("ecram-organic")), "sigmoid")
    trainer = make_trainer("progressive", cfg, instances=2, seed=0, lr=0.2)
    before = accuracy(trainer, ds.x_test, ds.y_test).mean()
    for _ in range(8):
        for i in range(0, 400, 10):
            trainer.train_batch(ds.x_train[i : i + 10], ds.y_train[i : i + 10])
    after = accuracy(trainer, ds.x_test, ds.y_test).mean()
    assert after > 0.75 > 0.3 > before


@pytest.mark.parametrize("gate", [False, True])
def test_saturation_gate_drops_only_the_push_beyond_full_scale(gate: bool) -> None:
    # Both logits of a 3-4-2 network read beyond the ADC's full scale (1.5); the label is 0.
    periphery = Periphery(dac_bits=None, adc_bits=None, output_bound=1.5, output_noise=0.0)
    tile = TileConfig(
        get_device("ideal"),
        periphery=periphery,
        update=UpdateParams(mode="count", max_pulses=10_000, sequential=False),
    )
    trainer = make_trainer(
        "progressive",
        ChipConfig((3, 4, 2), tile, "sigmoid"),
        instances=1,
        lr=1.0,
        options={"saturation_gate": gate},
    )
    chip = trainer.chip  # type: ignore[attr-defined]
    chip.program([torch.full((4, 4), 0.1), torch.full((2, 5), 0.8)])
    before = true_weights(chip.tiles[1])[0].clone()
    x = torch.tensor([[0.5, 0.2, 0.9]])
    assert bool(chip.over_range(1, chip.forward(x)[-2], chip.forward(x)[-1]).all())
    trainer.train_batch(x, torch.tensor([0]))
    change = true_weights(chip.tiles[1])[0] - before
    step = tile.weight_step
    # The wrong class is pulled back into range either way.
    assert float(change[1].max()) < -10 * step
    if gate:  # the label's logit is already at full scale: no push to grow it further
        assert float(change[0].abs().max()) <= step
    else:  # without the gate its weights grow, though the ADC can not show the effect
        assert float(change[0].min()) > 10 * step
