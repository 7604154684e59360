"""The spiking model's graph, the in-the-loop injection, and the spiking trainers."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from insitu.algorithms import make_spiking_trainer
from insitu.algorithms.lif_graph import LIFModelParams
from insitu.algorithms.spiking import readout_scores, spiking_loss
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.errors import ConfigError, UnknownNameError
from insitu.hardware.spiking import (
    IDEAL_NEURON,
    WEIGHT_LIMIT,
    NeuronParams,
    SpikingChipConfig,
)


class _Spike(torch.autograd.Function):
    """Heaviside forward, SuperSpike derivative backward (the reference's own)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, threshold: float, beta: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.threshold, ctx.beta = threshold, beta
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:
        (v,) = ctx.saved_tensors
        return grad / (ctx.beta * (v - ctx.threshold).abs() + 1.0) ** 2, None, None


def _inject(model: Tensor, measured: Tensor) -> Tensor:
    """Forward value = measurement, gradient = the model's."""
    return model + (measured - model).detach()


def reference_layer(
    drive: Tensor,
    w_rec: Tensor | None,
    p: LIFModelParams,
    measured: tuple[Tensor, Tensor] | None,
) -> tuple[Tensor, Tensor]:
    """Step by step, recorded by autograd, with the measured values injected at every step."""
    v = torch.full(drive.shape[1:], p.leak)
    cur = torch.zeros(drive.shape[1:])
    held_for = torch.zeros(drive.shape[1:], dtype=torch.int32)
    vs, zs = [], []
    for t in range(drive.shape[0]):
        u = p.decay_m * v + p.leak * (1 - p.decay_m) + cur
        cur = p.decay_s * cur + drive[t]
        if not p.spiking:
            if measured is not None:
                u = _inject(u, measured[0][t])
            vs.append(u)
            zs.append(torch.zeros_like(u))
            v = u
            continue
        held = held_for > 0
        u = torch.where(held, torch.full_like(u, p.reset), u)
        if measured is not None:
            u = _inject(u, measured[0][t])
        z = _Spike.apply(u, p.threshold, p.surrogate_beta) * (~held).to(u.dtype)
        if measured is not None:
            z = _inject(z, measured[1][t])
        zd = z.detach() > 0
        if p.refractory_steps:
            held_for = torch.where(zd, p.refractory_steps, held_for - held.to(torch.int32))
        if w_rec is not None:
            cur = cur + torch.matmul(z, w_rec.transpose(-1, -2))
        vs.append(u)
        zs.append(z)
        v = torch.where(zd, torch.full_like(u, p.reset), u)
    return torch.stack(vs), torch.stack(zs)


def _reference_forward(trainer: Any, x: Tensor, rec: Any) -> Tensor:
    model = trainer.model
    inp = x.transpose(0, 1)  # (T, B, F)
    v = inp
    for k, w in enumerate(model.weights):
        drive = torch.einsum("tbi,koi->tkbo", inp, w) if inp.dim() == 3 else None
        if drive is None:
            drive = torch.einsum("tkbi,koi->tkbo", inp, w)
        measured = None
        if rec is not None:
            measured = (rec.membrane[k].permute(2, 0, 1, 3), rec.spikes[k].permute(2, 0, 1, 3))
        v, inp = reference_layer(drive, model.recurrent[k], model.params[k], measured)
    return v


def _config(neuron: NeuronParams, recurrent: bool = False) -> SpikingChipConfig:
    return SpikingChipConfig.from_sizes(
        (12, 10, 4), recurrent=recurrent, neuron=neuron, time_steps=16
    )


def _inputs(seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((6, 16, 12), generator=g) < 0.25).float()
    y = torch.randint(0, 4, (6,), generator=g)
    return x, y


def _grads(trainer: Any, v_out: Tensor, hidden: list[Tensor], y: Tensor) -> list[Tensor]:
    loss, _ = spiking_loss(v_out, hidden, y, trainer.options)
    params = trainer.model.parameters()
    return list(torch.autograd.grad(loss, params))


@pytest.mark.parametrize("recurrent", [False, True])
def test_injection_forward_is_measurement_gradient_is_model(recurrent: bool) -> None:
    neuron = NeuronParams(synapse_gain=0.02, membrane_noise=0.05, refractory_steps=2)
    trainer = make_spiking_trainer("in-the-loop", _config(neuron, recurrent), instances=2, seed=3)
    x, y = _inputs()
    trainer.write_chip()
    rec = trainer.chip.run(x)
    assert rec.spikes[0].sum() > 5, "the test needs hidden spikes"

    v_out, hidden = trainer.model.forward(x, rec)
    # Forward values are exactly the chip's measurements.
    assert torch.equal(v_out, rec.readout.permute(2, 0, 1, 3))
    assert torch.equal(hidden[0], rec.spikes[0].permute(2, 0, 1, 3))

    ours = _grads(trainer, v_out, hidden, y)
    ref_out = _reference_forward(trainer, x, rec)
    torch.testing.assert_close(ref_out, v_out)
    # The reference's hidden spikes carry their own graph (for the rate penalty).
    theirs = _grads(trainer, ref_out, _reference_hidden(trainer, x, rec), y)
    assert any(g.abs().sum() > 0 for g in ours)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _reference_hidden(trainer: Any, x: Tensor, rec: Any) -> list[Tensor]:
    model = trainer.model
    inp = x.transpose(0, 1)
    drive = torch.einsum("tbi,koi->tkbo", inp, model.weights[0])
    measured = (rec.membrane[0].permute(2, 0, 1, 3), rec.spikes[0].permute(2, 0, 1, 3))
    _, z = reference_layer(drive, model.recurrent[0], model.params[0], measured)
    return [z]


def test_injected_gradient_differs_from_simulated_on_mismatched_chip() -> None:
    """The measured values matter: on a mismatched, noisy chip the injected gradient is not
    the pure-software one."""
    neuron = NeuronParams(synapse_gain=0.02, membrane_noise=0.05).with_mismatch(0.3)
    trainer = make_spiking_trainer("in-the-loop", _config(neuron), instances=1, seed=1)
    x, y = _inputs(1)
    trainer.write_chip()
    rec = trainer.chip.run(x)
    injected = _grads(trainer, *trainer.model.forward(x, rec), y)
    simulated = _grads(trainer, *trainer.model.forward(x), y)
    assert (injected[0] - simulated[0]).abs().max() > 1e-3 * simulated[0].abs().max()


def test_software_gradient_equals_autograd_reference() -> None:
    neuron = IDEAL_NEURON.replace(synapse_gain=0.02, refractory_steps=1)
    trainer = make_spiking_trainer("snn-software", _config(neuron, True), instances=2, seed=0)
    x, y = _inputs(2)
    v_out, hidden = trainer.model.forward(x)
    ours = _grads(trainer, v_out, hidden, y)
    model = trainer.model
    drive = torch.einsum("tbi,koi->tkbo", x.transpose(0, 1), model.weights[0])
    _, z1 = reference_layer(drive, model.recurrent[0], model.params[0], None)
    drive2 = torch.einsum("tkbi,koi->tkbo", z1, model.weights[1])
    v2, _ = reference_layer(drive2, None, model.params[1], None)
    torch.testing.assert_close(v2, v_out)
    theirs = _grads(trainer, v2, [z1], y)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_ideal_chip_matches_model_with_written_weights() -> None:
    """With nominal neurons, no noise and an ideal ADC, the chip runs the model exactly."""
    neuron = IDEAL_NEURON.replace(synapse_gain=0.02, refractory_steps=2)
    trainer = make_spiking_trainer("deploy", _config(neuron, True), instances=2, seed=4)
    scale = trainer.model.scale
    with torch.no_grad():  # put the model on the chip's integer grid
        for w, s in zip(trainer.model.parameters(), [scale[0], scale[1], scale[0]], strict=True):
            w.copy_((w / s).round() * s)
    x, _ = _inputs(3)
    torch.testing.assert_close(trainer.predict(x), trainer.model.simulate(x).amax(0))
    assert trainer.chip.log["neuron_step"] > 0


def test_weights_written_are_6bit_integers_under_training() -> None:
    neuron = NeuronParams(synapse_gain=0.02)
    trainer = make_spiking_trainer(
        "in-the-loop", _config(neuron, True), instances=2, seed=0, options={"lr": 0.5}
    )
    written: list[Tensor] = []
    original = trainer.chip.write_weights

    def spy(layer: int, weights: Tensor, recurrent: bool = False) -> None:
        written.append(weights.clone())
        original(layer, weights, recurrent)

    trainer.chip.write_weights = spy  # type: ignore[method-assign]
    x, y = _inputs(4)
    for _ in range(5):
        trainer.train_batch(x, y)
    assert len(written) == 5 * 3
    saturated = 0
    for w in written:
        assert not w.is_floating_point()
        assert int(w.min()) >= -WEIGHT_LIMIT and int(w.max()) <= WEIGHT_LIMIT
        saturated += int((w.abs() == WEIGHT_LIMIT).sum())
    assert saturated > 0, "a large learning rate must drive some weights to the limit"


@pytest.mark.parametrize("name", ["snn-software", "in-the-loop", "deploy"])
def test_trainers_learn_a_separable_task(name: str) -> None:
    """Two classes told apart by which half of the inputs fires: loss falls, accuracy high."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    x = torch.zeros(64, 16, 12)
    for b in range(64):
        chans = torch.arange(6) + 6 * int(y[b])
        times = torch.randint(0, 6, (6,), generator=g)
        x[b, times, chans] = 1.0
    cfg = SpikingChipConfig.from_sizes((12, 10, 2), neuron=NeuronParams(), time_steps=16)
    trainer = make_spiking_trainer(name, cfg, instances=2, seed=0, options={"lr": 5e-3})
    first = trainer.train_batch(x, y)
    for _ in range(60):
        last = trainer.train_batch(x, y)
    assert bool((last < 0.7 * first).all())
    acc = (trainer.predict(x).argmax(-1) == y).float().mean(1)
    assert bool((acc >= 0.9).all()), acc


def test_readout_sum_and_options_validation() -> None:
    v = torch.ones(5, 1, 2, 3)
    assert torch.equal(readout_scores(v, SpikingOptions(readout="sum", sum_scale=5.0)), v[0])
    with pytest.raises(ConfigError, match="readout"):
        SpikingOptions(readout="mean")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown spiking option"):
        SpikingOptions.parse({"learning_rate": 1.0})
    with pytest.raises(ConfigError, match="lr"):
        SpikingOptions(lr=-1.0)
    with pytest.raises(UnknownNameError):
        make_spiking_trainer("loop", _config(NeuronParams()))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("nan", "out of range"),  # YAML reads nan as text
        (float("nan"), "out of range"),
        ("1e9", "out of range"),  # and 1e9 too
        (1e9, "out of range"),
        ("inf", "out of range"),
        (0, "out of range"),
        ("abc", "not a number"),
        (True, "not a number"),
        ([0.1], "not a number"),
    ],
)
def test_bad_option_values_name_the_field_and_range(value: object, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"^algorithm_options\.lr = .*{why}.*\(0, 1\]$"):
        SpikingOptions.parse({"lr": value})


def test_numeric_text_is_read_as_a_number_and_range_checked() -> None:
    opts = SpikingOptions.parse({"lr": "1e-3", "rate_limit": 3, "logit_scale": "10"})
    assert opts.lr == 1e-3 and isinstance(opts.lr, float)
    assert opts.rate_limit == 3.0 and isinstance(opts.rate_limit, float)
    assert opts.logit_scale == 10.0
    with pytest.raises(ConfigError, match=r"rate_penalty = -1\.0 is out of range.*\[0, 1000\]"):
        SpikingOptions.parse({"rate_penalty": "-1"})
