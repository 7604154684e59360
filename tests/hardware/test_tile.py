"""Crossbar tiles and the chip protocol: reads through the periphery, pulsed updates,
write-verify, the event log, instances, checkpoints and bad input."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import pytest
import torch
from torch import Tensor

from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_PERIPHERY,
    ChipConfig,
    CrossbarChip,
    Event,
    PairMode,
    Periphery,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
)
from insitu.hardware.inspection import conductances, device_arrays, pulse_counts, true_weights

IDEAL = get_device("ideal")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_tile(
    in_features: int = 5,
    out_features: int = 3,
    *,
    device: str = "ideal",
    periphery: Periphery = IDEAL_PERIPHERY,
    update: UpdateParams | None = None,
    pair: str = "differential",
    instances: int = 2,
    seed: int = 0,
    **config: Any,
) -> Tile:
    cfg = TileConfig(
        device=get_device(device),
        periphery=periphery,
        update=update or UpdateParams(),
        pair=PairMode(pair),
        **config,
    )
    return Tile(in_features, out_features, cfg, instances=instances, generator=gen(seed))


def set_weights(tile: Tile, weights: Tensor) -> None:
    """Pulse an ideal-device tile (at its initial state) to ``weights`` (I, out, in)."""
    assert torch.equal(true_weights(tile), torch.zeros(tile.shape))
    tile.pulse(torch.round(weights / tile.config.weight_step))


def random_weights(tile: Tile, scale: float, seed: int = 1) -> Tensor:
    return scale * (2 * torch.rand(tile.shape, generator=gen(seed)) - 1)


# -- reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["differential", "reference"])
def test_ideal_read_is_the_matrix_vector_product(pair: str) -> None:
    tile = make_tile(6, 4, pair=pair, instances=3)
    set_weights(tile, random_weights(tile, 0.5))
    w = true_weights(tile)
    assert w.abs().max() > 0.3
    x = torch.randn(7, 6, generator=gen(2))
    y = tile.read(x)
    assert y.shape == (3, 7, 4)
    assert torch.allclose(y, x @ w.transpose(1, 2), atol=1e-5)
    # Per-instance inputs (I, B, in) are accepted too.
    xi = torch.randn(3, 7, 6, generator=gen(3))
    assert torch.allclose(tile.read(xi), torch.matmul(xi, w.transpose(1, 2)), atol=1e-5)


def test_ideal_read_transposed_is_the_transposed_product() -> None:
    tile = make_tile(6, 4, instances=3)
    set_weights(tile, random_weights(tile, 0.5))
    w = true_weights(tile)
    d = torch.randn(3, 7, 4, generator=gen(4))
    z = tile.read_transposed(d)
    assert z.shape == (3, 7, 6)
    assert torch.allclose(z, torch.matmul(d, w), atol=1e-5)
    d2 = torch.randn(7, 4, generator=gen(5))
    assert torch.allclose(tile.read_transposed(d2), d2 @ w, atol=1e-5)


def test_default_periphery_error_is_bounded_by_quantisation_and_noise() -> None:
    p = Periphery()  # 7-bit DAC, 9-bit ADC, noise 0.06, noise management on
    tile = make_tile(8, 4, periphery=p, instances=2)
    set_weights(tile, random_weights(tile, 0.6))
    w = true_weights(tile)
    x = 3.0 * torch.randn(300, 8, generator=gen(6))
    exact = x @ w.transpose(1, 2)
    err = tile.read(x) - exact
    scale = x.abs().amax(-1, keepdim=True) / p.input_bound  # noise management
    assert p.dac_bits is not None and p.adc_bits is not None
    dac = p.input_bound / (2**p.dac_bits - 2)  # half a DAC level
    adc = p.output_bound / (2**p.adc_bits - 2)  # half an ADC level
    bound = scale * (w.abs().sum(-1).unsqueeze(1) * dac + adc + 5 * p.output_noise)
    assert (err.abs() <= bound).all()
    # The error is mostly the output noise: unbiased, with about its spread.
    rel = err / scale
    assert abs(float(rel.mean())) < 0.01
    assert 0.8 * p.output_noise < float(rel.std()) < 1.5 * p.output_noise


def test_dac_and_adc_quantise_without_noise() -> None:
    p = Periphery(output_noise=0.0, noise_management=False)
    tile = make_tile(8, 4, periphery=p)
    set_weights(tile, random_weights(tile, 0.6))
    y = tile.read(torch.rand(50, 8, generator=gen(7)) * 2 - 1)
    assert p.adc_bits is not None
    level = 2 * p.output_bound / (2**p.adc_bits - 2)
    k = y / level
    assert torch.allclose(k, k.round(), atol=1e-3)


def test_adc_saturates_at_the_output_bound() -> None:
    p = Periphery(noise_management=False)  # output bound 12, inputs clip at 1
    tile = make_tile(10, 2, periphery=p)
    set_weights(tile, torch.full(tile.shape, 1.5))  # one full row sums to 15 > 12
    assert torch.allclose(true_weights(tile), torch.full(tile.shape, 1.5), atol=1e-3)
    x = torch.stack([torch.ones(10), -torch.ones(10), 3 * torch.ones(10), 0.5 * torch.ones(10)])
    y = tile.read(x)
    assert p.adc_bits is not None
    level = 2 * p.output_bound / (2**p.adc_bits - 2)
    assert torch.allclose(y[:, 0], torch.full((2, 2), p.output_bound), atol=1e-4)
    assert torch.allclose(y[:, 1], torch.full((2, 2), -p.output_bound), atol=1e-4)
    # Inputs beyond the DAC range clip to it before the array: same saturated output.
    assert torch.allclose(y[:, 2], torch.full((2, 2), p.output_bound), atol=1e-4)
    # Below saturation the output is unclipped (7.5 within noise and an ADC level).
    assert (y[:, 3] - 7.5).abs().max() < 5 * p.output_noise + level


def test_noise_management_rescales_small_inputs() -> None:
    quiet = Periphery(output_noise=0.0)
    tile = make_tile(6, 3, periphery=quiet)
    set_weights(tile, random_weights(tile, 0.5))
    w = true_weights(tile)
    x = 1e-3 * torch.randn(20, 6, generator=gen(8))
    rel = (tile.read(x) - x @ w.transpose(1, 2)).abs().max() / x.abs().max()
    # Without noise management these inputs would sit in the DAC's lowest levels.
    assert float(rel) < 0.03


def test_device_read_noise_reaches_the_outputs() -> None:
    dev = get_device("reram-taox")
    x = torch.ones(4000, 16)
    # 2 devices per weight, 16 inputs of 1: std = read_noise * range * sqrt(32).
    device_noise = dev.read_noise * dev.g_range * math.sqrt(32)
    ideal = make_tile(16, 4, device="reram-taox", instances=1)
    assert float(ideal.read(x).std(dim=1).mean()) == pytest.approx(device_noise, rel=0.05)
    # With the default periphery its output noise (noise management scale 1) adds to it.
    real = make_tile(16, 4, device="reram-taox", instances=1, periphery=Periphery())
    expected = math.hypot(device_noise, Periphery().output_noise)
    assert float(real.read(x).std(dim=1).mean()) == pytest.approx(expected, rel=0.05)


# -- updates ----------------------------------------------------------------------------------


def count_mode(sequential: bool = True, max_pulses: int = 100) -> UpdateParams:
    return UpdateParams(mode=UpdateMode.COUNT, sequential=sequential, max_pulses=max_pulses)


@pytest.mark.parametrize("pair", ["differential", "reference"])
def test_count_update_is_sgd_within_one_weight_step(pair: str) -> None:
    tile = make_tile(5, 3, update=count_mode(), pair=pair, instances=4)
    step = tile.config.weight_step
    x = torch.rand(1, 5, generator=gen(9)) * 2 - 1
    d = torch.rand(4, 1, 3, generator=gen(10)) * 2 - 1
    lr = 0.01
    for _ in range(3):
        before = true_weights(tile)
        tile.update(x, d, lr)
        change = true_weights(tile) - before
        want = -lr * torch.matmul(d.transpose(1, 2), x.expand(4, 1, 5))
        assert (want.abs() / step).max() > 10  # many pulses per weight
        assert ((change - want).abs() <= step + 1e-5).all()


def test_aggregated_count_update_is_one_rounding_of_the_batch_sum() -> None:
    tile = make_tile(5, 3, update=count_mode(sequential=False), instances=2)
    step = tile.config.weight_step
    x = torch.rand(8, 5, generator=gen(11)) * 2 - 1
    d = torch.rand(2, 8, 3, generator=gen(12)) * 2 - 1
    lr = 0.002
    before = true_weights(tile)
    tile.update(x, d, lr)
    want = -lr * torch.matmul(d.transpose(1, 2), x.expand(2, 8, 5))
    assert ((true_weights(tile) - before - want).abs() <= step + 1e-5).all()


def test_sequential_count_update_rounds_each_sample() -> None:
    tile = make_tile(5, 3, update=count_mode(sequential=True), instances=2)
    step = tile.config.weight_step
    x = torch.rand(8, 5, generator=gen(11)) * 2 - 1
    d = torch.rand(2, 8, 3, generator=gen(12)) * 2 - 1
    lr = 0.002
    tile.update(x, d, lr)
    want = -lr * torch.matmul(d.transpose(1, 2), x.expand(2, 8, 5))
    assert ((true_weights(tile) - want).abs() <= 8 * step + 1e-5).all()
    assert tile.log[Event.UPDATE] == 2 * 8


def test_count_update_clips_at_max_pulses() -> None:
    tile = make_tile(2, 1, update=count_mode(max_pulses=7), instances=1)
    tile.update(torch.ones(1, 2), torch.full((1, 1), -1.0), lr=1.0)
    assert torch.equal(pulse_counts(tile), torch.full((1, 1, 2), 7.0))
    assert torch.allclose(true_weights(tile), torch.full((1, 1, 2), 7 * tile.config.weight_step))


def _mean_change(tile: Tile, x: Tensor, d: Tensor, lr: float) -> tuple[Tensor, Tensor]:
    before = true_weights(tile)
    tile.update(x, d, lr)
    change = true_weights(tile) - before
    return change.mean(0), change.std(0) / math.sqrt(tile.instances)


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "fixed-length"])
@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "aggregated"])
def test_stochastic_update_is_unbiased(sequential: bool, dynamic: bool) -> None:
    update = UpdateParams(mode=UpdateMode.STOCHASTIC, sequential=sequential, dynamic_length=dynamic)
    tile = make_tile(3, 2, update=update, instances=2000, seed=13)
    step = tile.config.weight_step
    x = torch.tensor([[0.5, -0.8, 0.2], [-0.3, 0.1, 0.9], [0.05, 0.0, -0.4]])
    d = torch.tensor([[0.3, -0.6], [0.7, 0.2], [-0.1, 0.5]])
    lr = 6 * step / (0.8 * 0.6)  # about six coincidences for the largest product
    mean, se = _mean_change(tile, x, d, lr)
    want = -lr * d.T @ x
    assert (se > 0).sum() >= 5  # stochastic: instances differ
    assert ((mean - want).abs() <= 4 * se + 1e-6).all(), (mean, want, se)
    assert tile.log[Event.LINE_PULSE] > 0


def test_stochastic_update_with_zero_error_does_nothing() -> None:
    tile = make_tile(3, 2, instances=4)
    before = conductances(tile)
    tile.update(torch.ones(2, 3), torch.zeros(4, 2, 2), lr=0.1)
    for a, b in zip(before, conductances(tile), strict=True):
        assert torch.equal(a, b)
    assert tile.log[Event.PULSE] == 0


def test_pulse_applies_signed_counts_per_weight() -> None:
    tile = make_tile(4, 3, instances=2)
    counts = torch.randint(-50, 51, tile.shape, generator=gen(14))
    tile.pulse(counts)
    assert torch.allclose(true_weights(tile), counts * tile.config.weight_step, atol=1e-5)
    assert torch.equal(pulse_counts(tile), counts.abs().float())
    g_plus, g_minus = conductances(tile)
    assert torch.allclose(g_plus - IDEAL.g_ref, counts * IDEAL.dw_min, atol=1e-5)
    assert torch.allclose(g_minus - IDEAL.g_ref, -counts * IDEAL.dw_min, atol=1e-5)


# -- write-verify -----------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["differential", "reference"])
def test_program_reaches_the_target_on_ecram(pair: str) -> None:
    tile = make_tile(8, 6, device="ecram-liwo3", pair=pair, instances=4, seed=15)
    target = 0.4 * torch.rand(6, 8, generator=gen(16)) - 0.2
    result = tile.program(target)
    tol = tile.config.weight_step
    assert result.converged == pytest.approx(1.0)
    assert 1 <= result.iterations < 20
    assert result.rms_error <= tol
    # No read noise on this device: the true weights are where the verify saw them.
    assert ((true_weights(tile) - target).abs() <= tol + 1e-6).all()
    assert tile.log[Event.PROGRAM_ITERATION] == result.iterations * 4
    assert tile.log[Event.DEVICE_READ] > 0


def test_program_with_per_instance_targets_and_tolerance() -> None:
    tile = make_tile(4, 3, device="ecram-liwo3", instances=3, seed=17)
    target = 0.3 * torch.rand(tile.shape, generator=gen(18)) - 0.15
    result = tile.program(target, tolerance=0.01)
    assert result.converged == pytest.approx(1.0)
    assert ((true_weights(tile) - target).abs() <= 0.01 + 1e-6).all()


def test_program_one_sided_pcm_only_potentiates() -> None:
    tile = make_tile(8, 6, device="pcm", instances=4, seed=19)
    assert tile.config.one_sided
    assert tile.config.weight_step == pytest.approx(get_device("pcm").dw_min)
    g_start = conductances(tile)
    target = 0.2 * torch.rand(6, 8, generator=gen(20)) - 0.1
    result = tile.program(target)
    err = true_weights(tile) - target
    initial_rms = float(target.pow(2).mean().sqrt())
    assert float(err.pow(2).mean().sqrt()) < 0.5 * initial_rms
    assert result.converged > 0.5  # read noise (0.02) limits what the verify can see
    # Every weight is formed by potentiating one device or the other; no RESET happened
    # (a RESET would send a device to ~g_min = 0). Noisy steps can dip a little.
    for g0, g in zip(g_start, conductances(tile), strict=True):
        assert (g > g0 - 0.1).all()
    # One device receives each pulse.
    assert tile.log[Event.PULSE] == pytest.approx(float(pulse_counts(tile).sum()))


def test_program_rejects_bad_arguments() -> None:
    tile = make_tile(4, 3)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        tile.program(torch.zeros(3, 5))
    with pytest.raises(ConfigError, match="max_iterations"):
        tile.program(torch.zeros(3, 4), max_iterations=0)
    with pytest.raises(ConfigError, match="tolerance"):
        tile.program(torch.zeros(3, 4), tolerance=-1.0)


# -- the event log ----------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ["differential", "reference"])
def test_reads_log_arrays_macs_and_conversions(pair: str) -> None:
    inst, batch, n_in, n_out = 3, 7, 5, 4
    tile = make_tile(n_in, n_out, pair=pair, instances=inst, periphery=Periphery())
    devices = 2 if pair == "differential" else 1
    tile.read(torch.randn(batch, n_in))
    assert tile.log[Event.ARRAY_READ] == inst * batch
    assert tile.log[Event.MAC] == inst * batch * n_in * n_out * devices
    assert tile.log[Event.DAC] == inst * batch * n_in
    assert tile.log[Event.ADC] == inst * batch * n_out
    tile.log.reset()
    tile.read_transposed(torch.randn(inst, batch, n_out))
    assert tile.log[Event.ARRAY_READ] == inst * batch
    assert tile.log[Event.MAC] == inst * batch * n_in * n_out * devices
    assert tile.log[Event.DAC] == inst * batch * n_out
    assert tile.log[Event.ADC] == inst * batch * n_in


@pytest.mark.parametrize(
    ("device", "pair", "devices_per_pulse"),
    [("ideal", "differential", 2), ("ideal", "reference", 1), ("pcm", "differential", 1)],
)
@pytest.mark.parametrize("mode", ["stochastic", "count"])
def test_updates_log_device_pulses(
    device: str, pair: str, devices_per_pulse: int, mode: str
) -> None:
    update = UpdateParams(mode=UpdateMode(mode), max_pulses=20)
    tile = make_tile(5, 3, device=device, pair=pair, update=update, instances=3)
    lr = 20 * tile.config.weight_step
    g_ = gen(21)
    for _ in range(3):
        before = float(pulse_counts(tile).sum())
        logged = tile.log[Event.PULSE]
        x = torch.randn(4, 5, generator=g_)
        d = torch.randn(3, 4, 3, generator=g_)
        tile.update(x, d, lr)
        sent = float(pulse_counts(tile).sum()) - before
        assert sent > 0
        assert tile.log[Event.PULSE] - logged == pytest.approx(devices_per_pulse * sent)
    assert tile.log[Event.UPDATE] == 3 * 3 * 4  # one rank-1 update per sample and instance


def test_measure_logs_device_reads() -> None:
    tile = make_tile(5, 3, instances=2)
    w = tile.measure()
    assert w.shape == (2, 3, 5)
    assert tile.log[Event.DEVICE_READ] == 2 * 3 * 5 * 2
    reference = make_tile(5, 3, instances=2, pair="reference")
    reference.measure()
    assert reference.log[Event.DEVICE_READ] == 2 * 3 * 5


def test_measure_sees_the_weights_through_read_noise() -> None:
    tile = make_tile(30, 30, device="reram-taox", instances=4)
    tile.pulse(torch.randint(-3, 4, tile.shape, generator=gen(22)))
    dev = get_device("reram-taox")
    diff = tile.measure() - true_weights(tile)
    assert float(diff.mean()) == pytest.approx(0.0, abs=0.005)
    expected = dev.read_noise * dev.g_range * math.sqrt(2)
    assert float(diff.std()) == pytest.approx(expected, rel=0.1)


# -- instances, seeds, checkpoints ------------------------------------------------------------


def test_instances_get_independent_device_draws() -> None:
    tile = make_tile(5, 3, device="ecram-liwo3", instances=2)
    for array in device_arrays(tile):
        assert not torch.equal(array.dw_up[0], array.dw_up[1])
        assert not torch.equal(array.g_max[0], array.g_max[1])
    plus, minus = device_arrays(tile)
    assert not torch.equal(plus.dw_up, minus.dw_up)
    # Same pulses, different responses.
    tile.pulse(torch.full(tile.shape, 10.0))
    w = true_weights(tile)
    assert not torch.equal(w[0], w[1])


def chip_config(device: str = "ecram-liwo3", **update: Any) -> ChipConfig:
    tile = TileConfig(device=get_device(device), update=UpdateParams(**update))
    return ChipConfig(layers=(4, 5, 3), tile=tile)


def exercise(chip: CrossbarChip, seed: int) -> list[Tensor]:
    """Reads, updates and a measurement; returns everything observable."""
    g_ = gen(seed)
    out = []
    for _ in range(3):
        x = torch.rand(6, 4, generator=g_)
        acts = chip.forward(x)
        out.extend(acts[1:])
        d = torch.randn(chip.instances, 6, 3, generator=g_)
        out.append(chip.read_transposed(1, d))
        chip.update(1, acts[1], d, lr=0.05)
        chip.update(0, x, torch.randn(chip.instances, 6, 5, generator=g_), lr=0.05)
    out.extend(t.measure() for t in chip.tiles)
    out.extend(true_weights(t) for t in chip.tiles)
    return out


def assert_identical(a: list[Tensor], b: list[Tensor]) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


def test_same_seed_same_chip_other_seed_other_chip() -> None:
    cfg = chip_config()
    a = exercise(CrossbarChip(cfg, instances=3, seed=5), 0)
    b = exercise(CrossbarChip(cfg, instances=3, seed=5), 0)
    c = exercise(CrossbarChip(cfg, instances=3, seed=6), 0)
    assert_identical(a, b)
    assert not torch.equal(a[-1], c[-1])


@pytest.mark.parametrize("mode", ["stochastic", "count"])
def test_chip_checkpoint_round_trip_is_bit_identical(mode: str) -> None:
    cfg = chip_config(mode=mode)
    chip = CrossbarChip(cfg, instances=3, seed=7)
    exercise(chip, 1)
    state = copy.deepcopy(chip.state_dict())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    counts = chip.log.counts()
    after = exercise(chip, 2)

    # Restored into a fresh chip built with another seed.
    other = CrossbarChip(cfg, instances=3, seed=99)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=False))
    assert other.log.counts() == counts
    assert_identical(exercise(other, 2), after)
    assert other.log.counts() == chip.log.counts()

    # Restored into the same chip.
    chip.load_state_dict(state)
    assert_identical(exercise(chip, 2), after)


# -- bad input --------------------------------------------------------------------------------


def test_wrong_shapes_name_the_expected_shape() -> None:
    tile = make_tile(5, 3, instances=2)
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        tile.read(torch.zeros(4, 6))
    with pytest.raises(ValueError, match=r"\(2, batch, 5\)"):
        tile.read(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        tile.read(torch.zeros(5))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        tile.read_transposed(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        tile.update(torch.zeros(4, 4), torch.zeros(2, 4, 3), lr=0.1)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        tile.update(torch.zeros(4, 5), torch.zeros(2, 4, 2), lr=0.1)
    with pytest.raises(ValueError, match=r"\(2, 3, 5\)"):
        tile.pulse(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="whole numbers"):
        tile.pulse(torch.full((2, 3, 5), 0.5))


def test_bad_configuration_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="adc_bits"):
        Periphery(adc_bits=0)
    with pytest.raises(ConfigError, match="dac_bits"):
        Periphery(dac_bits=25)
    with pytest.raises(ConfigError, match="output_bound"):
        Periphery(output_bound=0.0)
    with pytest.raises(ConfigError, match="output_noise"):
        Periphery(output_noise=-0.1)
    with pytest.raises(ConfigError, match="max_pulses"):
        UpdateParams(max_pulses=0)
    with pytest.raises(ConfigError, match="weight_scale"):
        TileConfig(device=IDEAL, weight_scale=0.0)
    with pytest.raises(ConfigError, match="in_features"):
        Tile(0, 3, TileConfig(device=IDEAL), generator=gen())
    with pytest.raises(ConfigError, match="instances"):
        Tile(2, 3, TileConfig(device=IDEAL), instances=0, generator=gen())


def test_negative_learning_rate_raises_config_error() -> None:
    tile = make_tile(5, 3)
    with pytest.raises(ConfigError, match="learning rate"):
        tile.update(torch.zeros(1, 5), torch.zeros(2, 1, 3), lr=-0.1)


def test_tile_config_derived_quantities() -> None:
    pcm = TileConfig(device=get_device("pcm"))
    assert pcm.one_sided and pcm.weight_step == pytest.approx(0.04)
    diff = TileConfig(device=IDEAL, weight_scale=2.0)
    assert not diff.one_sided
    assert diff.weight_step == pytest.approx(2 * 2 * IDEAL.dw_min)
    assert diff.weight_bounds == pytest.approx((-4.0, 4.0))
    ref = TileConfig(device=get_device("ecram-liwo3"), pair=PairMode.REFERENCE)
    assert ref.weight_step == pytest.approx(0.002)
    assert ref.weight_bounds == pytest.approx((-0.8276, 2.0 - 0.8276))
