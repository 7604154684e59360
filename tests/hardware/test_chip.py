"""CrossbarChip: layer stacking, bias columns, activation circuits and their derivatives."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_PERIPHERY,
    Activation,
    ChipConfig,
    CrossbarChip,
    Event,
    Periphery,
    TileConfig,
    UpdateMode,
    UpdateParams,
)
from insitu.hardware.inspection import true_weights

LAYERS = (4, 6, 5, 3)


def ideal_chip(
    layers: tuple[int, ...] = LAYERS,
    activation: Activation = Activation.SIGMOID,
    instances: int = 3,
    seed: int = 0,
    **update: object,
) -> CrossbarChip:
    tile = TileConfig(
        device=get_device("ideal"),
        periphery=IDEAL_PERIPHERY,
        update=UpdateParams(**update),  # type: ignore[arg-type]
    )
    return CrossbarChip(
        ChipConfig(layers=layers, tile=tile, activation=activation),
        instances=instances,
        seed=seed,
    )


def random_weights(chip: CrossbarChip, seed: int = 1) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        0.8 * torch.rand((chip.instances, t.out_features, t.in_features), generator=g) - 0.4
        for t in chip.tiles
    ]


def programmed(chip: CrossbarChip) -> list[Tensor]:
    results = chip.program(random_weights(chip))
    assert all(r.converged == 1.0 for r in results)
    return [true_weights(t) for t in chip.tiles]


def test_tiles_have_a_bias_column() -> None:
    chip = ideal_chip()
    assert chip.n_layers == 3
    for tile, n_in, n_out in zip(chip.tiles, LAYERS[:-1], LAYERS[1:], strict=True):
        assert tile.shape == (3, n_out, n_in + 1)
        assert tile.log is chip.log


@pytest.mark.parametrize("instances", [1, 4])
def test_forward_shapes(instances: int) -> None:
    chip = ideal_chip(instances=instances)
    x = torch.rand(7, LAYERS[0])
    acts = chip.forward(x)
    assert len(acts) == len(LAYERS)
    assert acts[0] is x
    for a, n in zip(acts[1:], LAYERS[1:], strict=True):
        assert a.shape == (instances, 7, n)
    assert torch.equal(chip.infer(x), chip.forward(x)[-1])


def test_read_drives_the_bias_column_at_one() -> None:
    chip = ideal_chip()
    weights = programmed(chip)
    x = torch.rand(5, LAYERS[0])
    pre = chip.read(0, x)
    w = weights[0]
    expected = torch.matmul(x, w[:, :, :-1].transpose(1, 2)) + w[:, :, -1].unsqueeze(1)
    assert torch.allclose(pre, expected, atol=1e-5)
    # With zero input only the bias column contributes.
    assert torch.allclose(
        chip.read(0, torch.zeros(2, LAYERS[0])),
        w[:, :, -1].unsqueeze(1).expand(3, 2, -1),
        atol=1e-6,
    )
    assert chip.log[Event.DAC] == 3 * 5 * (LAYERS[0] + 1) + 3 * 2 * (LAYERS[0] + 1)


def test_with_bias_appends_ones() -> None:
    chip = ideal_chip()
    x = torch.rand(2, 3, 4)
    xb = chip.with_bias(x)
    assert xb.shape == (2, 3, 5)
    assert torch.equal(xb[..., :-1], x) and torch.equal(xb[..., -1], torch.ones(2, 3))


def test_read_transposed_drops_the_bias_row() -> None:
    chip = ideal_chip()
    weights = programmed(chip)
    d = torch.randn(3, 5, LAYERS[2])
    back = chip.read_transposed(1, d)
    assert back.shape == (3, 5, LAYERS[1])
    assert torch.allclose(back, torch.matmul(d, weights[1][:, :, :-1]), atol=1e-5)


@pytest.mark.parametrize("activation", list(Activation))
def test_activation_on_hidden_layers_only(activation: Activation) -> None:
    chip = ideal_chip(activation=activation)
    weights = programmed(chip)
    x = torch.rand(6, LAYERS[0]) * 4 - 2
    acts = chip.forward(x)
    h = x.expand(3, -1, -1)
    for layer, w in enumerate(weights):
        pre = torch.matmul(chip.with_bias(h), w.transpose(1, 2))
        h = activation(pre) if layer < len(weights) - 1 else pre
        assert torch.allclose(acts[layer + 1], h, atol=1e-5), layer
    # The output is read out linearly: it leaves the activation's range.
    if activation in (Activation.SIGMOID, Activation.HARD_SIGMOID):
        assert (acts[1] >= 0).all() and (acts[1] <= 1).all()
    hidden_units = 6 * 3 * (LAYERS[1] + LAYERS[2])
    assert chip.log[Event.ACTIVATION] == hidden_units


def test_output_layer_is_linear() -> None:
    chip = ideal_chip(activation=Activation.SIGMOID)
    y = torch.linspace(-5, 5, 11)
    last = chip.n_layers - 1
    assert torch.equal(chip.activate(last, y), y)
    assert torch.equal(chip.derivative(last, y), torch.ones_like(y))
    assert torch.equal(chip.activate(0, y), torch.sigmoid(y))
    assert chip.log[Event.ACTIVATION] == 11


# Pre-activations away from the kinks of relu (0) and hard-sigmoid (-2, 2).
PRE = torch.cat([torch.linspace(-6, -2.05, 40), torch.linspace(-1.95, -0.05, 40)])
PRE = torch.cat([PRE, -PRE, torch.tensor([-0.01, 0.01, 1.0, -1.0])]).to(torch.float64)


@pytest.mark.parametrize("activation", list(Activation))
def test_derivative_from_the_output_matches_autograd(activation: Activation) -> None:
    y = PRE.clone().requires_grad_(True)
    a = activation(y)
    (grad,) = torch.autograd.grad(a.sum(), y)
    from_output = activation.derivative(a.detach())
    assert torch.allclose(from_output, grad, atol=1e-12), activation
    chip = ideal_chip(activation=activation)
    assert torch.allclose(chip.derivative(0, a.detach()), grad, atol=1e-12)


def test_activation_names() -> None:
    assert {a.value for a in Activation} >= {"sigmoid", "tanh", "relu", "hard-sigmoid"}
    assert Activation("hard-sigmoid")(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0, 0.5, 1]


def test_update_includes_the_bias_column() -> None:
    chip = ideal_chip(mode=UpdateMode.COUNT, max_pulses=100, sequential=False)
    before = true_weights(chip.tiles[0])
    x = torch.rand(4, LAYERS[0])
    d = torch.rand(3, 4, LAYERS[1]) - 0.5
    lr = 0.01
    chip.update(0, x, d, lr)
    change = true_weights(chip.tiles[0]) - before
    step = chip.tiles[0].config.weight_step
    want = -lr * torch.matmul(d.transpose(1, 2), chip.with_bias(x).expand(3, -1, -1))
    assert ((change - want).abs() <= step + 1e-5).all()
    assert (want[:, :, -1].abs() > 5 * step).any()  # the bias moved


@pytest.mark.parametrize("device", ["ideal", "ecram-liwo3"])
@pytest.mark.parametrize("all_layers", [False, True])
def test_update_sees_inputs_changed_in_place_after_the_read(device: str, all_layers: bool) -> None:
    # The chip reuses the padded input of a layer's last read for its update, but only while
    # that tensor is unchanged: two chips with one seed, one of them given the changed values
    # in a new tensor, must end the same.
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=100, sequential=False)
    tile = TileConfig(get_device(device), periphery=IDEAL_PERIPHERY)
    if device == "ideal":
        tile = TileConfig(get_device(device), periphery=IDEAL_PERIPHERY, update=update)
    chips = [CrossbarChip(ChipConfig(LAYERS, tile), instances=2, seed=4) for _ in range(2)]
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(3, LAYERS[0], generator=gen)
    ds = [torch.rand(2, 3, n, generator=gen) - 0.5 for n in LAYERS[1:]]
    weights = []
    for k, chip in enumerate(chips):
        acts = chip.forward(x.clone())
        if k == 0:
            acts[0].mul_(-1.0)  # in place, after the read
        else:
            acts[0] = -x  # the same values, a new tensor
        if all_layers:
            chip.update_layers(acts[:-1], ds, lr=0.5)
        else:
            chip.update(0, acts[0], ds[0], lr=0.5)
        weights.append(true_weights(chip.tiles[0]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_program_needs_one_matrix_per_layer() -> None:
    chip = ideal_chip()
    with pytest.raises(ValueError, match="3 layers"):
        chip.program(random_weights(chip)[:2])


def test_program_accepts_shared_targets() -> None:
    chip = ideal_chip()
    shared = [w[0] for w in random_weights(chip)]
    chip.program(shared)
    for tile, w in zip(chip.tiles, shared, strict=True):
        tw = true_weights(tile)
        assert ((tw - w).abs() <= tile.config.weight_step + 1e-6).all()


def test_relax_reaches_every_tile() -> None:
    tile = TileConfig(device=get_device("pcm"))
    chip = CrossbarChip(ChipConfig(layers=(3, 4, 2), tile=tile), instances=2)
    for t in chip.tiles:
        t.pulse(torch.full(t.shape, 3.0))
    before = [true_weights(t) for t in chip.tiles]
    chip.relax(1e6)
    for t, w in zip(chip.tiles, before, strict=True):
        assert not torch.equal(true_weights(t), w)
    with pytest.raises(ValueError):
        chip.relax(-1.0)


@pytest.mark.parametrize("layers", [(3,), (), (3, 0, 2), (0, 2)])
def test_bad_layers_raise_config_error(layers: tuple[int, ...]) -> None:
    tile = TileConfig(device=get_device("ideal"))
    with pytest.raises(ConfigError, match="layers"):
        ChipConfig(layers=layers, tile=tile)


def test_activation_from_string() -> None:
    tile = TileConfig(device=get_device("ideal"))
    assert ChipConfig(layers=(2, 2), tile=tile, activation="tanh").activation is Activation.TANH  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChipConfig(layers=(2, 2), tile=tile, activation="swish")  # type: ignore[arg-type]


@pytest.mark.parametrize("noise_management", [True, False])
def test_over_range_flags_exactly_the_clipped_outputs(noise_management: bool) -> None:
    periphery = Periphery(
        dac_bits=None, adc_bits=8, output_bound=2.0, output_noise=0.0,
        noise_management=noise_management,
    )  # fmt: skip
    tile = TileConfig(device=get_device("ideal"), periphery=periphery)
    chip = CrossbarChip(ChipConfig(layers=(3, 4), tile=tile), instances=2)
    w = torch.tensor([[0.9, 0.9, 0.9, 0.0], [0.1, 0.0, 0.0, 0.0], [-0.9, -0.9, -0.9, 0.0],
                      [0.3, 0.3, 0.0, 0.0]])  # fmt: skip
    chip.program([w])
    x = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]])
    y = chip.read(0, x)
    over = chip.over_range(0, x, y)
    # Rows 0 and 2 of the first sample reach about +-2.7, beyond the 2.0 full scale.
    true = x @ true_weights(chip.tiles[0])[:, :, :3].transpose(1, 2)
    assert torch.equal(over, true.abs() > 2.0)
    assert over[:, 0].tolist() == [[True, False, True, False]] * 2
    assert not bool(over[:, 1].any())
    assert bool((y[over].abs() - 2.0).abs().max() < 1e-5)
