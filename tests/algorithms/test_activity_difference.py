"""Activity-difference (equilibrium propagation) training: the estimate, the costs, learning."""

from __future__ import annotations

import pytest
import torch

from insitu.algorithms import (
    ActivityDifferenceOptions,
    SoftwareMLP,
    make_trainer,
)
from insitu.algorithms.activity_difference import contrast_update, settle
from insitu.data import load_dataset
from insitu.devices import get_device
from insitu.errors import ConfigError, DivergenceError
from insitu.experiments.run import accuracy, train_epoch
from insitu.hardware import (
    IDEAL_PERIPHERY,
    Activation,
    ChipConfig,
    Event,
    TileConfig,
    UpdateParams,
)
from insitu.hardware.inspection import true_weights

ACT = Activation.HARD_SIGMOID


def _tiny() -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    shapes = [(5, 4 + 1), (3, 5 + 1)]
    ws = [torch.randn((1, *s), generator=gen, dtype=torch.float64) * 0.8 for s in shapes]
    x = torch.rand((3, 4), generator=gen, dtype=torch.float64)
    t = torch.rand((3, 3), generator=gen, dtype=torch.float64)
    return ws, x, t


def _loss(ws: list[torch.Tensor], x: torch.Tensor, t: torch.Tensor, output: bool) -> float:
    net = SoftwareMLP([w.clone() for w in ws], ACT)
    s, _ = settle(net, x, None, 400, output=ACT if output else None)
    return float(0.5 * (s[-1] - t).pow(2).sum(-1).mean())


def _true_gradient(ws: list[torch.Tensor], x: torch.Tensor, t: torch.Tensor, output: bool):
    """Central differences of the loss at the settled free state, weight by weight."""
    grads = []
    eps = 1e-6
    for layer, w in enumerate(ws):
        g = torch.zeros_like(w)
        for i in range(w.numel()):
            up = [v.clone() for v in ws]
            down = [v.clone() for v in ws]
            up[layer].view(-1)[i] += eps
            down[layer].view(-1)[i] -= eps
            g.view(-1)[i] = (_loss(up, x, t, output) - _loss(down, x, t, output)) / (2 * eps)
        grads.append(g)
    return grads


def _estimate(ws, x, t, beta: float, symmetric: bool, output: bool) -> list[torch.Tensor]:
    """Minus the weight change of one activity-difference step with lr 1 (a gradient estimate)."""
    out = ACT if output else None
    net = SoftwareMLP([w.clone() for w in ws], ACT)
    free, _ = settle(net, x, None, 400, output=out)
    plus, _ = settle(net, x, free, 400, target=t, beta=beta, output=out)
    if symmetric:
        minus, _ = settle(net, x, free, 400, target=t, beta=-beta, output=out)
        scale = 1 / (2 * beta * len(x))
    else:
        minus, scale = free, 1 / (beta * len(x))
    contrast_update(net, x, plus, minus, scale)
    return [w - n for w, n in zip(ws, net.weights, strict=True)]


def _error(est: list[torch.Tensor], grad: list[torch.Tensor]) -> float:
    num = sum(float((e - g).pow(2).sum()) for e, g in zip(est, grad, strict=True))
    den = sum(float(g.pow(2).sum()) for g in grad)
    return (num / den) ** 0.5


@pytest.mark.parametrize("output", [False, True], ids=["linear-output", "hard-sigmoid-output"])
def test_symmetric_nudging_approaches_the_true_gradient(output: bool) -> None:
    ws, x, t = _tiny()
    grad = _true_gradient(ws, x, t, output)
    errors = [_error(_estimate(ws, x, t, b, True, output), grad) for b in (0.2, 0.02, 0.002)]
    assert errors[-1] < 1e-3
    assert errors[0] > errors[1] > errors[2]
    # The symmetric estimate's bias is second order in beta; the one-sided one's first order.
    one_sided = _error(_estimate(ws, x, t, 0.02, False, output), grad)
    assert one_sided > 5 * errors[1]


def test_difference_form_equals_two_phase_form_including_bias() -> None:
    gen = torch.Generator().manual_seed(0)
    ws = [torch.zeros(2, 5, 5), torch.zeros(2, 3, 6)]
    x = torch.rand((4, 4), generator=gen)
    plus = [torch.rand((2, 4, 5), generator=gen), torch.rand((2, 4, 3), generator=gen)]
    minus = [torch.rand((2, 4, 5), generator=gen), torch.rand((2, 4, 3), generator=gen)]
    a = SoftwareMLP([w.clone() for w in ws], ACT)
    b = SoftwareMLP([w.clone() for w in ws], ACT)
    contrast_update(a, x, plus, minus, 0.3, (1.0, 2.0), form="difference")
    contrast_update(b, x, plus, minus, 0.3, (1.0, 2.0), form="two-phase")
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert torch.allclose(wa, wb, atol=1e-6)
        assert wa.abs().max() > 0.05
    # And both equal the products written out: layer 1, instance 0, bias column.
    want_bias = 0.3 * 2.0 * (plus[1][0] - minus[1][0]).sum(0)
    assert torch.allclose(a.weights[1][0, :, -1], want_bias, atol=1e-6)


def test_float_trainer_step_is_minus_lr_times_the_gradient() -> None:
    config = ChipConfig((4, 5, 3), TileConfig(get_device("ideal")), ACT)
    opts = {"beta": 0.01, "free_steps": 300, "nudged_steps": 300, "output": "linear"}
    trainer = make_trainer(
        "activity-difference-float", config, instances=1, seed=1, lr=0.1, options=opts
    )
    model = trainer.model  # type: ignore[attr-defined]
    ws = [w.clone().to(torch.float64) for w in model.weights]
    x = torch.rand((3, 4), generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 2, 1])
    t = torch.eye(3, dtype=torch.float64)[y]
    grad = _true_gradient(ws, x.double(), t, output=False)
    trainer.train_batch(x, y)
    step = [(n.double() - w) / -0.1 for n, w in zip(model.weights, ws, strict=True)]
    assert _error(step, grad) < 0.02


def _chip_config(device: str = "ideal", hidden: int = 6) -> ChipConfig:
    tile = TileConfig(
        get_device(device),
        periphery=IDEAL_PERIPHERY,
        update=UpdateParams(mode="count", max_pulses=10_000, sequential=False),
    )
    return ChipConfig((4, hidden, 3), tile, ACT)


def test_chip_step_matches_the_float_rule_within_weight_steps() -> None:
    # Same start, same phases: the chip's pulses realise the float update up to rounding.
    config = _chip_config()
    opts = {"beta": 0.3, "free_steps": 50, "nudged_steps": 50}
    chip_trainer = make_trainer(
        "activity-difference", config, instances=1, seed=5, lr=0.5, options=opts
    )
    chip = chip_trainer.chip  # type: ignore[attr-defined]
    start = [true_weights(t).clone() for t in chip.tiles]
    ref = SoftwareMLP([w.clone() for w in start], ACT)
    x = torch.rand((4, 4), generator=torch.Generator().manual_seed(6))
    y = torch.tensor([0, 1, 2, 1])
    t = torch.eye(3)[y]
    free, _ = settle(ref, x, None, 50, output=ACT)
    plus, _ = settle(ref, x, free, 50, target=t, beta=0.3, output=ACT)
    minus, _ = settle(ref, x, free, 50, target=t, beta=-0.3, output=ACT)
    contrast_update(ref, x, plus, minus, 0.5 / (2 * 0.3 * 4))
    chip_trainer.train_batch(x, y)
    step = config.tile.weight_step
    for tile, w, w0 in zip(chip.tiles, ref.weights, start, strict=True):
        assert (true_weights(tile) - w).abs().max() <= 1.01 * step
        assert (w - w0).abs().max() > 5 * step  # the update itself is many steps


def test_every_read_of_both_phases_is_logged() -> None:
    instances, batch, free_steps, nudged_steps = 2, 5, 7, 4
    opts = {"free_steps": free_steps, "nudged_steps": nudged_steps}
    trainer = make_trainer(
        "activity-difference", _chip_config(), instances=instances, seed=0, lr=0.1, options=opts
    )
    log = trainer.log
    before = log.counts().get(Event.ARRAY_READ, 0.0)
    trainer.train_batch(torch.rand(batch, 4), torch.arange(batch) % 3)
    reads = log.counts()[Event.ARRAY_READ] - before
    # One held-input read per phase. Free phase from rest: the first step has no feedback.
    free = 1 + 2 * free_steps - 1
    nudged = 1 + 2 * nudged_steps
    assert reads == instances * batch * (free + 2 * nudged)
    # Three phases of activities held per neuron until the update.
    assert log.counts()[Event.STORED_VALUE] == instances * batch * (6 + 3) * 3
    # The input read once for all three phases: two reads fewer, the 6 hidden currents held.
    opts["input_read"] = "once"
    trainer = make_trainer(
        "activity-difference", _chip_config(), instances=instances, seed=0, lr=0.1, options=opts
    )
    before = trainer.log.counts().get(Event.ARRAY_READ, 0.0)
    trainer.train_batch(torch.rand(batch, 4), torch.arange(batch) % 3)
    counts = trainer.log.counts()
    assert counts[Event.ARRAY_READ] - before == instances * batch * (free + 2 * nudged - 2)
    assert counts[Event.STORED_VALUE] == instances * batch * ((6 + 3) * 3 + 6)


def test_tolerance_stops_settling_early() -> None:
    gen = torch.Generator().manual_seed(0)
    net = SoftwareMLP([torch.randn(1, 5, 5, generator=gen) * 0.3, torch.randn(1, 3, 6) * 0.3], ACT)
    x = torch.rand(2, 4, generator=gen)
    _, loose = settle(net, x, None, 500, tolerance=1e-3)
    _, tight = settle(net, x, None, 500, tolerance=1e-7)
    assert 1 < loose < tight < 500


class _NoisyReads(SoftwareMLP):
    """A float network whose forward reads carry Gaussian noise, as a chip's ADC lines do."""

    def __init__(self, weights: list[torch.Tensor], sigma: float) -> None:
        super().__init__(weights, ACT)
        self.sigma = sigma
        self.gen = torch.Generator().manual_seed(11)

    def read(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        y = super().read(layer, x)
        return y + self.sigma * torch.randn(y.shape, generator=self.gen, dtype=y.dtype)


def test_averaging_settled_steps_shrinks_read_noise_and_keeps_the_mean() -> None:
    ws, x, _ = _tiny()
    clean, _ = settle(SoftwareMLP(ws, ACT), x, None, 100, output=ACT)
    many = x[:1].expand(400, -1)  # one input, 400 independent settlings
    spread = {}
    for average in (1, 8):
        s, taken = settle(_NoisyReads(ws, 0.05), many, None, 30, average=average, output=ACT)
        assert taken == 30
        spread[average] = float(s[-1].std(1).mean())
        assert (s[-1].mean(1) - clean[-1][:, 0]).abs().max() < 0.02
    assert spread[8] < 0.6 * spread[1]


def test_holding_the_input_read_across_phases_cancels_its_noise_in_the_contrast() -> None:
    ws, x, t = _tiny()
    many, target = x[:1].expand(400, -1), t[:1].expand(400, -1)
    spread = {}
    for held in (False, True):
        net = _NoisyReads(ws, 0.05)
        drive = net.read(0, many) if held else None
        kw = {"output": ACT, "drive": drive}
        free, _ = settle(net, many, None, 30, **kw)
        plus, _ = settle(net, many, free, 10, target=target, beta=0.2, **kw)
        minus, _ = settle(net, many, free, 10, target=target, beta=-0.2, **kw)
        spread[held] = float((plus[0] - minus[0]).std(1).mean())
    assert spread[True] < 0.5 * spread[False]


def test_averaging_a_settled_noise_free_network_changes_nothing() -> None:
    ws, x, _ = _tiny()
    net = SoftwareMLP(ws, ACT)
    last, _ = settle(net, x, None, 200)
    mean, _ = settle(net, x, None, 200, average=5)
    for a, b in zip(last, mean, strict=True):
        assert torch.allclose(a, b, atol=1e-9)


def test_diverging_settling_raises() -> None:
    net = SoftwareMLP([torch.full((1, 3, 3), float("nan")), torch.ones(1, 2, 4)], ACT)
    with pytest.raises(DivergenceError, match="settling diverged"):
        settle(net, torch.rand(2, 2), None, 5)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"phase": "frozen"}, "phase"),
        ({"nudging": "sideways"}, "nudging"),
        ({"phase": "clamped", "nudging": "symmetric"}, "clamped"),
        ({"beta": 0}, "beta"),
        ({"beta": -0.5}, "beta"),
        ({"free_steps": 0}, "free_steps"),
        ({"nudged_steps": 2.5}, "nudged_steps"),
        ({"tolerance": -1}, "tolerance"),
        ({"average_steps": 0}, "average_steps"),
        ({"average_steps": 9, "nudged_steps": 8}, "average_steps"),
        ({"input_read": "twice"}, "input_read"),
        ({"layer_lr": [1, -2]}, "layer_lr"),
        ({"layer_lr": [1, 2, 3]}, "2 weight layer"),
        ({"output": "softmax"}, "output"),
        ({"update_form": "exact"}, "update_form"),
        ({"gamma": 1}, "unknown option"),
    ],
)
def test_bad_options_raise_config_errors(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_trainer("activity-difference-float", _chip_config(), options=options)


def test_scheme_defaults() -> None:
    assert ActivityDifferenceOptions().scheme == "symmetric"
    assert ActivityDifferenceOptions(phase="clamped").scheme == "clamped"
    assert ActivityDifferenceOptions(nudging="one-sided").scheme == "one-sided"


def _digits_run(name: str, device: str, options: dict[str, object], epochs: int) -> float:
    ds = load_dataset("digits")
    tile = TileConfig(get_device(device))
    config = ChipConfig((64, 32, 10), tile, Activation.SIGMOID)
    trainer = make_trainer(name, config, instances=2, seed=0, lr=0.5, options=options)
    order = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        train_epoch(trainer, ds, 10, order)
    return float(accuracy(trainer, ds.x_test, ds.y_test).mean())


@pytest.mark.parametrize("scheme", ["symmetric", "one-sided", "random-sign", "clamped"])
def test_float_rule_learns_digits_with_every_scheme(scheme: str) -> None:
    options: dict[str, object] = (
        {"phase": "clamped"} if scheme == "clamped" else {"nudging": scheme}
    )
    # The clamped contrast is not divided by beta, so it takes smaller factors.
    options["layer_lr"] = [0.4, 0.1] if scheme == "clamped" else [4, 1]
    assert _digits_run("activity-difference-float", "ideal", options, 3) > 0.8


def test_chip_rule_learns_digits_on_ecram() -> None:
    # Five epochs: after three the chips' mean sat at 0.81 +- 0.02 over 8 seeds, too close to
    # the bar for one seed; after five it is 0.93 +- 0.006 (both with the same code).
    assert _digits_run("activity-difference", "ecram-organic", {"layer_lr": [4, 1]}, 5) > 0.8


def test_reconstruction_targets_train_a_braille_network() -> None:
    ds = load_dataset("braille", options={"train_per_class": 100, "test_per_class": 20})
    assert ds.targets is not None
    config = ChipConfig((60, 30, 60), TileConfig(get_device("ideal")), Activation.SIGMOID)
    trainer = make_trainer(
        "activity-difference-float",
        config,
        instances=1,
        lr=0.5,
        options={"layer_lr": [2, 1]},
        targets=ds.targets,
    )
    order = torch.Generator().manual_seed(0)
    for _ in range(5):
        train_epoch(trainer, ds, 10, order)
    assert float(accuracy(trainer, ds.x_test, ds.y_test)[0]) > 0.8
