"""SpikingChip: LIF dynamics, 6-bit weights, mismatch, noise, ADC, readout, events, shapes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_NEURON,
    WEIGHT_LIMIT,
    Event,
    NeuronParams,
    Recording,
    SpikingChip,
    SpikingChipConfig,
    SpikingLayerConfig,
)
from insitu.hardware.inspection import neuron_parameters, recurrent_weights, spiking_weights


def one_neuron_chip(params: NeuronParams, steps: int, readout: bool = False) -> SpikingChip:
    layer = SpikingLayerConfig(1, spiking=not readout)
    return SpikingChip(SpikingChipConfig(1, (layer,), params, steps))


def spike_train(steps: int, times: list[int]) -> Tensor:
    x = torch.zeros(1, steps, 1)
    x[0, times, 0] = 1.0
    return x


def reference(
    p: NeuronParams, steps: int, times: list[int], w: float
) -> tuple[list[float], list[int]]:
    """Pre-reset membrane per step and the spike steps, from the closed-form solution.

    Between resets V[t] = leak + b**(t-s) (V[s] - leak) + sum_{s<=k<t} b**(t-1-k) I[k], with
    I[k] = sum over input spikes t_j <= k of gain * w * a**(k - t_j).
    """
    a, b = math.exp(-1 / p.tau_s), math.exp(-1 / p.tau_m)

    def current(k: int) -> float:
        return sum(p.synapse_gain * w * a ** (k - tj) for tj in times if tj <= k)

    start, v0, held_until = -1, p.leak, -1
    trace: list[float] = []
    spikes: list[int] = []
    for t in range(steps):
        if t <= held_until:
            trace.append(p.reset)
            continue
        v = p.leak + b ** (t - start) * (v0 - p.leak)
        v += sum(b ** (t - 1 - k) * current(k) for k in range(start, t))
        trace.append(v)
        if v >= p.threshold:
            spikes.append(t)
            held_until = t + p.refractory_steps
            start, v0 = held_until, p.reset
    return trace, spikes


def test_single_spike_follows_the_double_exponential() -> None:
    p = IDEAL_NEURON.replace(tau_m=4.0, tau_s=2.0, synapse_gain=0.01, leak=0.1)
    chip = one_neuron_chip(p, 20)
    chip.write_weights(0, torch.tensor([[30]]))
    rec = chip.run(spike_train(20, [3]))
    a, b = math.exp(-1 / p.tau_s), math.exp(-1 / p.tau_m)
    want = [
        p.leak + (0.3 * (b ** (t - 3) - a ** (t - 3)) / (b - a) if t > 3 else 0.0)
        for t in range(20)
    ]
    got = rec.membrane[0][0, 0, :, 0].double()
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), atol=1e-6)
    assert got[4] > p.leak  # the input moves the membrane one step later
    assert not rec.spikes[0].any()  # peak ~0.53 stays below threshold


@pytest.mark.parametrize("refractory", [0, 1, 3])
def test_spike_reset_and_refractory_period(refractory: int) -> None:
    p = IDEAL_NEURON.replace(
        tau_m=6.0, tau_s=5.0, synapse_gain=0.01, reset=-0.2, refractory_steps=refractory
    )
    steps, times = 40, [2, 3, 4, 5, 6, 20]
    chip = one_neuron_chip(p, steps)
    chip.write_weights(0, torch.tensor([[40]]))
    rec = chip.run(spike_train(steps, times))
    trace, spikes = reference(p, steps, times, 40.0)
    assert len(spikes) >= 2  # the train drives it over threshold more than once
    got_spikes = rec.spikes[0][0, 0, :, 0].nonzero().flatten().tolist()
    assert got_spikes == spikes
    got = rec.membrane[0][0, 0, :, 0].double()
    assert torch.allclose(got, torch.tensor(trace, dtype=torch.float64), atol=1e-5)
    first = spikes[0]
    assert got[first] >= p.threshold  # the spike's own sample shows the crossing
    held = rec.membrane[0][0, 0, first + 1 : first + 1 + refractory, 0]
    assert torch.equal(held, torch.full_like(held, p.reset))
    assert got[first + refractory + 1] != p.reset  # free again after refractory_steps


def test_adc_quantises_and_clips_the_membrane() -> None:
    fine = IDEAL_NEURON.replace(tau_m=4.0, tau_s=2.0, synapse_gain=0.005, adc_bits=12)
    steps = 30
    chip = one_neuron_chip(fine, steps, readout=True)
    chip.write_weights(0, torch.tensor([[50]]))
    rec = chip.run(spike_train(steps, [1, 2, 3, 4]))
    ideal = one_neuron_chip(fine.replace(adc_bits=None), steps, readout=True)
    ideal.write_weights(0, torch.tensor([[50]]))
    exact = ideal.run(spike_train(steps, [1, 2, 3, 4])).readout
    assert 0.5 < exact.max() < 2.0  # inside the ADC range (-1, 2)
    lsb = 3.0 / (2**12 - 1)
    assert (rec.readout - exact).abs().max() <= lsb / 2 + 1e-6

    coarse = fine.replace(adc_bits=3, adc_range=(-0.5, 0.5))
    chip = SpikingChip(SpikingChipConfig.from_sizes((2, 2), neuron=coarse, time_steps=steps))
    chip.write_weights(0, torch.tensor([[63, 0], [0, -63]]))
    x = torch.zeros(1, steps, 2)
    x[0, :5] = 1.0
    v = chip.run(x).readout
    assert v.min() == -0.5 and v.max() == 0.5  # driven past both ends: clipped
    levels = v.unique()
    assert len(levels) <= 2**3
    codes = (levels + 0.5) / (1.0 / 7)
    assert torch.allclose(codes, codes.round(), atol=1e-5)


def test_weights_outside_six_bits_are_refused() -> None:
    chip = SpikingChip(SpikingChipConfig.from_sizes((3, 2, 1), recurrent=True), instances=2)
    ok = torch.full((2, 3), WEIGHT_LIMIT)
    chip.write_weights(0, ok)
    for bad in (ok + 1, -ok - 1):
        with pytest.raises(ValueError, match=r"\[-63, 63\]"):
            chip.write_weights(0, bad)
    with pytest.raises(ValueError, match="integers"):
        chip.write_weights(0, torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="integers"):
        chip.write_weights(0, torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="dtype"):
        chip.write_weights(0, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        chip.write_weights(0, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="no recurrent"):
        chip.write_weights(1, torch.zeros(1, 1), recurrent=True)
    with pytest.raises(ValueError, match="layers 0 to 1"):
        chip.write_weights(2, torch.zeros(1, 2))
    # A refused write leaves the stored weights alone.
    assert (spiking_weights(chip)[0] == WEIGHT_LIMIT).all()


def test_integer_weights_of_any_dtype_are_stored_per_instance() -> None:
    chip = SpikingChip(SpikingChipConfig.from_sizes((3, 2, 1), recurrent=True), instances=2)
    w = torch.tensor([[[1, -2, 3], [63, -63, 0]], [[0, 0, 7], [5, 4, -1]]])
    chip.write_weights(0, w.to(torch.int8))
    chip.write_weights(1, torch.tensor([[2.0, -3.0]]))
    chip.write_weights(0, torch.tensor([[0, 9], [-9, 0]]), recurrent=True)
    stored = spiking_weights(chip)
    assert stored[0].dtype == torch.int8 and torch.equal(stored[0].long(), w)
    assert torch.equal(stored[1].long(), torch.tensor([[[2, -3]], [[2, -3]]]))
    rec = recurrent_weights(chip)
    assert rec[1] is None and rec[0] is not None
    assert torch.equal(rec[0][1].long(), torch.tensor([[0, 9], [-9, 0]]))
    assert chip.log[Event.HOST_BYTES_IN] == 2 * (6 + 2 + 4)  # one byte per synapse


def test_bad_inputs_are_refused() -> None:
    chip = SpikingChip(SpikingChipConfig.from_sizes((3, 2), time_steps=5), instances=2)
    with pytest.raises(ValueError, match="0 or 1"):
        chip.run(torch.full((1, 5, 3), 2.0))
    with pytest.raises(ValueError, match=r"\(batch, 5, 3\)"):
        chip.run(torch.zeros(1, 6, 3))
    with pytest.raises(ValueError, match="shape"):
        chip.run(torch.zeros(3, 1, 5, 3))  # 3 instances for a 2-instance chip


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tau_m": 0.0}, "tau_m"),
        ({"tau_s": -1.0}, "tau_s"),
        ({"reset": 1.0}, "threshold - reset"),
        ({"leak": 2.0}, "threshold - leak"),
        ({"threshold": float("inf")}, "threshold"),
        ({"refractory_steps": -1}, "refractory_steps"),
        ({"synapse_gain": 0.0}, "synapse_gain"),
        ({"sigma_gain": 2.5}, "sigma_gain"),
        ({"sigma_leak": -0.1}, "sigma_leak"),
        ({"membrane_noise": -1.0}, "membrane_noise"),
        ({"dead_fraction": 1.5}, "dead_fraction"),
        ({"adc_bits": 0}, "adc_bits"),
        ({"adc_range": (1.0, 0.0)}, "adc_range"),
        ({"dt_seconds": 0.0}, "dt_seconds"),
        ({"volts": 1.0}, "unknown neuron parameter"),
    ],
)
def test_neuron_params_are_validated(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        NeuronParams().replace(**changes)


def test_chip_config_validation_and_from_sizes() -> None:
    cfg = SpikingChipConfig.from_sizes((4, 5, 6, 2), recurrent=True)
    assert cfg.sizes == (4, 5, 6, 2)
    assert [lay.recurrent for lay in cfg.layers] == [True, True, False]
    assert [lay.spiking for lay in cfg.layers] == [True, True, False]
    spiking_out = SpikingChipConfig.from_sizes((4, 2), readout=False, recurrent=[True])
    assert spiking_out.layers[0].spiking and spiking_out.layers[0].recurrent
    as_dicts = SpikingChipConfig(4, ({"size": 3}, {"size": 2, "spiking": False}))  # type: ignore[arg-type]
    assert as_dicts.layers[1] == SpikingLayerConfig(2, spiking=False)
    with pytest.raises(ConfigError, match="only the last"):
        SpikingChipConfig(4, (SpikingLayerConfig(3, spiking=False), SpikingLayerConfig(2)))
    with pytest.raises(ConfigError, match="recur"):
        SpikingLayerConfig(2, recurrent=True, spiking=False)
    with pytest.raises(ConfigError, match="3 entries"):
        SpikingChipConfig.from_sizes((4, 2), recurrent=[True, False, True])
    with pytest.raises(ConfigError, match="time_steps"):
        SpikingChipConfig.from_sizes((4, 2), time_steps=0)
    with pytest.raises(ConfigError, match="instances"):
        SpikingChip(cfg, instances=0)


def test_with_mismatch_sets_every_fixed_pattern_sigma() -> None:
    p = NeuronParams(membrane_noise=0.03).with_mismatch(0.2)
    sigmas = (p.sigma_tau_m, p.sigma_tau_s, p.sigma_threshold, p.sigma_leak, p.sigma_gain)
    assert sigmas == (0.2,) * 5
    assert p.membrane_noise == 0.03


def driven_chip(
    params: NeuronParams, instances: int = 3, seed: int = 0, recurrent: bool = False
) -> tuple[SpikingChip, Tensor]:
    """A 20-30-4 chip with fixed random weights and a fixed random input batch."""
    cfg = SpikingChipConfig.from_sizes(
        (20, 30, 4), neuron=params, time_steps=25, recurrent=recurrent
    )
    chip = SpikingChip(cfg, instances=instances, seed=seed)
    g = torch.Generator().manual_seed(7)
    chip.write_weights(0, torch.randint(-10, 40, (30, 20), generator=g))
    chip.write_weights(1, torch.randint(-63, 64, (4, 30), generator=g))
    x = (torch.rand(8, 25, 20, generator=g) < 0.2).float()
    return chip, x


def assert_same(a: Recording, b: Recording) -> None:
    for ta, tb in zip(a.spikes + a.membrane, b.spikes + b.membrane, strict=True):
        assert torch.equal(ta, tb)


def test_without_mismatch_instances_are_identical() -> None:
    p = IDEAL_NEURON.replace(adc_bits=8, synapse_gain=0.02)
    chip, x = driven_chip(p)
    rec = chip.run(x)
    assert rec.spikes[0].sum() > 0
    for t in (*rec.spikes, *rec.membrane):
        assert torch.equal(t, t[:1].expand_as(t))
    for nrn in neuron_parameters(chip):
        assert (nrn.tau_m == p.tau_m).all() and (nrn.tau_s == p.tau_s).all()
        assert (nrn.threshold == 1.0).all() and (nrn.leak == 0.0).all()
        assert (nrn.gain == torch.tensor(p.synapse_gain)).all() and nrn.alive.all()


def test_with_mismatch_instances_differ() -> None:
    p = IDEAL_NEURON.replace(synapse_gain=0.02).with_mismatch(0.1)
    chip, x = driven_chip(p)
    rec = chip.run(x)
    for t in (rec.spikes[0], *rec.membrane):
        assert not torch.equal(t[0], t[1]) and not torch.equal(t[1], t[2])


def test_drawn_mismatch_has_the_requested_spread() -> None:
    sigma = 0.15
    p = NeuronParams(leak=0.2, threshold=1.2).with_mismatch(sigma)
    cfg = SpikingChipConfig(2, (SpikingLayerConfig(20_000),), p)
    (nrn,) = neuron_parameters(SpikingChip(cfg, instances=2, seed=3))
    relative = {
        "tau_m": nrn.tau_m / p.tau_m - 1,
        "tau_s": nrn.tau_s / p.tau_s - 1,
        "gain": nrn.gain / p.synapse_gain - 1,
        "threshold": (nrn.threshold - p.threshold) / (p.threshold - p.leak),
        "leak": (nrn.leak - p.leak) / (p.threshold - p.leak),
    }
    for name, r in relative.items():
        assert abs(r.std().item() - sigma) < 0.05 * sigma, name
        assert abs(r.mean().item()) < 0.01, name
        assert not torch.equal(r[0], r[1]), name  # every instance its own draw
    assert not torch.equal(relative["tau_m"], relative["tau_s"])


def test_temporal_noise_varies_runs_and_the_seed_fixes_it() -> None:
    p = IDEAL_NEURON.replace(membrane_noise=0.05, synapse_gain=0.02, adc_bits=8)
    chip, x = driven_chip(p, instances=2, seed=11)
    first, second = chip.run(x), chip.run(x)
    assert not torch.equal(first.membrane[0], second.membrane[0])
    twin, _ = driven_chip(p, instances=2, seed=11)
    assert_same(first, twin.run(x))
    assert_same(second, twin.run(x))
    other, _ = driven_chip(p, instances=2, seed=12)
    assert not torch.equal(other.run(x).membrane[0], first.membrane[0])


def test_state_dict_restores_weights_mismatch_and_generator() -> None:
    chip, x = driven_chip(NeuronParams(synapse_gain=0.02), seed=5)
    state = chip.state_dict()
    want = chip.run(x)
    other, _ = driven_chip(NeuronParams(synapse_gain=0.02), seed=99)
    other.write_weights(0, torch.zeros(30, 20))
    other.load_state_dict(state)
    assert_same(want, other.run(x))


def test_dead_neurons_never_spike() -> None:
    p = IDEAL_NEURON.replace(dead_fraction=0.5, synapse_gain=0.05)
    cfg = SpikingChipConfig.from_sizes((4, 400), readout=False, neuron=p, time_steps=20)
    chip = SpikingChip(cfg, instances=2)
    chip.write_weights(0, torch.full((400, 4), 63))
    spikes = chip.run(torch.ones(3, 20, 4)).spikes[0]
    alive = neuron_parameters(chip)[0].alive  # (I, N)
    assert 0.4 < alive.float().mean() < 0.6
    per_neuron = spikes.sum(dim=(1, 2))  # (I, N)
    assert (per_neuron[~alive] == 0).all()
    assert (per_neuron[alive] > 0).all()


def test_readout_never_spikes_and_integrates_hidden_spikes() -> None:
    p = IDEAL_NEURON.replace(tau_m=5.0, tau_s=3.0, synapse_gain=0.05)
    chip, x = driven_chip(p, instances=2)
    chip.write_weights(1, torch.full((4, 30), 63))  # drives the readout far past threshold
    rec = chip.run(x)
    assert not rec.spikes[1].any()
    assert rec.readout.max() > 5 * p.threshold
    assert rec.readout is rec.membrane[-1]
    # V[t] = sum over hidden spikes at s < t of gain * w * (b**(t-s) - a**(t-s)) / (b - a).
    a, b = math.exp(-1 / p.tau_s), math.exp(-1 / p.tau_m)
    lag = torch.arange(25, dtype=torch.float64)
    kernel = (b**lag - a**lag) / (b - a)  # zero at lag 0
    hidden = rec.spikes[0].double().sum(-1)  # (I, B, T): every weight is 63
    t_idx = torch.arange(25)
    lags = t_idx[:, None] - t_idx[None, :]  # (t, s)
    k = torch.where(lags >= 0, kernel[lags.clamp(min=0)], torch.zeros(()))
    want = p.synapse_gain * 63 * torch.einsum("ibs,ts->ibt", hidden, k).unsqueeze(-1)
    assert torch.allclose(rec.readout.double(), want.expand_as(rec.readout), atol=1e-4)


def test_recurrent_spikes_drive_the_layer_one_step_later() -> None:
    p = IDEAL_NEURON.replace(synapse_gain=0.05, refractory_steps=50)
    cfg = SpikingChipConfig.from_sizes((1, 2), recurrent=True, readout=False, neuron=p)
    chip = SpikingChip(cfg)
    chip.write_weights(0, torch.tensor([[63], [0]]))
    x = spike_train(30, [0])
    silent = chip.run(x)
    assert silent.spikes[0][0, 0, :, 1].sum() == 0
    assert (silent.membrane[0][0, 0, :, 1] == 0).all()
    first = int(silent.spikes[0][0, 0, :, 0].nonzero()[0])
    chip.write_weights(0, torch.tensor([[0, 0], [63, 0]]), recurrent=True)
    driven = chip.run(x).membrane[0][0, 0, :, 1]
    assert (driven[: first + 1] == 0).all()  # like a feed-forward spike: one step of latency
    assert driven[first + 1] > 0
    chip.write_weights(0, torch.tensor([[0, 0], [-63, 0]]), recurrent=True)
    assert chip.run(x).membrane[0][0, 0, first + 1, 1] < 0


def test_recurrent_excitation_adds_spikes() -> None:
    p = IDEAL_NEURON.replace(synapse_gain=0.02)
    chip, x = driven_chip(p, recurrent=True)
    before = chip.run(x).spikes[0].sum()
    chip.write_weights(0, torch.full((30, 30), 20), recurrent=True)
    assert chip.run(x).spikes[0].sum() > before


def test_event_counts_on_a_tiny_network() -> None:
    p = IDEAL_NEURON.replace(synapse_gain=0.1, refractory_steps=0)
    cfg = SpikingChipConfig.from_sizes((3, 2, 1), recurrent=True, neuron=p, time_steps=5)
    chip = SpikingChip(cfg, instances=2)
    chip.write_weights(0, torch.full((2, 3), 30))  # 2 instances x 6 synapses
    chip.write_weights(0, torch.zeros(2, 2), recurrent=True)  # 2 x 4
    chip.write_weights(1, torch.ones(1, 2))  # 2 x 2
    assert chip.log[Event.HOST_BYTES_IN] == 24
    x = torch.zeros(4, 5, 3)
    x[0, 0] = 1.0  # 3 spikes
    x[1, 2, 1] = 1.0  # 1 spike
    x[3, :, 2] = 1.0  # 5 spikes: 9 input spikes, sent to 2 instances
    rec = chip.run(x)
    hidden = rec.spikes[0].sum().item()
    assert hidden > 0 and rec.spikes[0][:, 2].sum() == 0  # sample 2 has no input
    counts = chip.log.counts()
    assert counts[Event.SYNAPTIC_EVENT] == 2 * 9 * 2 + hidden * 2 + hidden * 1
    assert counts[Event.NEURON_STEP] == 2 * 4 * 5 * (2 + 1)
    assert counts[Event.ADC_SAMPLE] == 2 * 4 * 5 * 3
    assert counts[Event.EMULATION_STEP] == 2 * 4 * 5
    assert counts[Event.HOST_BYTES_IN] == 24 + 4 * 2 * 9
    assert counts[Event.HOST_BYTES_OUT] == 120 + 4 * hidden


@pytest.mark.parametrize("instances", [1, 3])
def test_shared_and_per_instance_inputs(instances: int) -> None:
    p = IDEAL_NEURON.replace(synapse_gain=0.02)
    chip, x = driven_chip(p, instances=instances)
    shared = chip.run(x)
    assert [t.shape for t in shared.spikes] == [(instances, 8, 25, 30), (instances, 8, 25, 4)]
    assert shared.membrane[1].shape == shared.readout.shape == (instances, 8, 25, 4)
    assert shared.spikes[0].dtype == torch.float32
    own = x.expand(instances, -1, -1, -1).clone()
    assert_same(shared, chip.run(own))
    own[-1] = 0.0  # the last instance gets no input
    rec = chip.run(own)
    assert rec.spikes[0][-1].sum() == 0 and (rec.readout[-1] == 0).all()


def test_paper_sized_network_smoke() -> None:
    cfg = SpikingChipConfig.from_sizes((256, 246, 10), time_steps=30)
    chip = SpikingChip(cfg, instances=4)
    g = torch.Generator().manual_seed(0)
    chip.write_weights(0, torch.randint(-20, 40, (246, 256), generator=g))
    chip.write_weights(1, torch.randint(-63, 64, (10, 246), generator=g))
    x = torch.rand(256, 30, 256, generator=g) < 0.05
    rec = chip.run(x)
    assert rec.readout.shape == (4, 256, 30, 10)
    assert 0 < rec.spikes[0].mean() < 1
    assert chip.log[Event.NEURON_STEP] == 4 * 256 * 30 * (246 + 10)
    assert chip.sample_seconds == pytest.approx(30 * 1.7e-6)
