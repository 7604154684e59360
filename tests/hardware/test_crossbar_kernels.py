"""The compiled crossbar kernels give what the torch path (the reference) gives: the same
numbers where no randomness is drawn, the same statistics where it is."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from insitu.devices import NoiseMode, get_device
from insitu.devices.response import linear_constants, linear_drive
from insitu.hardware import (
    Event,
    PairMode,
    Periphery,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
    pulse_kernels,
)
from insitu.hardware import crossbar_kernels as kernels
from insitu.hardware import read_kernels as reads
from insitu.hardware.inspection import conductances, pulse_counts, true_weights
from insitu.hardware.tile_pulses import apply_entries, count_entries


def _both_paths(monkeypatch: pytest.MonkeyPatch, build: object, run: object) -> tuple[Tile, Tile]:
    """The same tile (same seed) driven by ``run`` once with the kernels, once without."""
    assert callable(build) and callable(run)
    fast = build()
    assert fast.kernel_ready()
    run(fast)
    with monkeypatch.context() as m:
        m.setenv("INSITU_KERNELS", "0")
        slow = build()
        assert not slow.kernel_ready()
        run(slow)
    return fast, slow


def _assert_same_tiles(a: Tile, b: Tile) -> None:
    """The same conductances (to float rounding), pulse counts and events."""
    for ga, gb in zip(conductances(a), conductances(b), strict=True):
        torch.testing.assert_close(ga, gb, rtol=0, atol=1e-6)
    assert torch.equal(pulse_counts(a), pulse_counts(b))
    assert a.log.counts() == b.log.counts()


def _exact_tile(
    device: str, pair: str, sequential: bool, shape: tuple[int, int] = (9, 5), max_pulses: int = 31
) -> Tile:
    # Noise-free devices (but with device-to-device spread and soft bounds) and a weight step
    # of a power of two, so that lr / step and the train probabilities come out exactly.
    params = get_device(device).replace(
        dw_min=2.0**-8, dw_min_std=0.0, read_noise=0.0, stuck_low=0.0, stuck_high=0.0
    )
    config = TileConfig(
        params,
        periphery=Periphery(noise_management=False, output_noise=0.0),
        update=UpdateParams(
            mode=UpdateMode.STOCHASTIC, sequential=sequential, max_pulses=max_pulses
        ),
        pair=PairMode(pair),
    )
    return Tile(*shape, config, instances=3, generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize("shape", [(9, 5), (40, 30)], ids=["9x5", "40x30"])
# 100 and 130 slots: trains longer than one 64-bit word (aihwkit's TTv2 presets use 100).
@pytest.mark.parametrize("slots", [1, 2, 5, 100, 130])
@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "aggregated"])
@pytest.mark.parametrize("pair", ["differential", "reference"])
@pytest.mark.parametrize("device", ["reram-taox", "ecram-liwo3"])
def test_update_equals_torch_path_when_every_line_fires_for_sure(
    monkeypatch: pytest.MonkeyPatch,
    device: str,
    pair: str,
    sequential: bool,
    slots: int,
    shape: tuple[int, int],
) -> None:
    # |x| is 0 or 1 and |d| is 0 or 1/2 in every sample; with lr / step = 2 * slots every
    # line that carries a value fires in every slot of a train of `slots` slots (probability
    # exactly 1), so both paths pulse the same devices the same number of times. At 40 x 30 a
    # sample's coincidences outgrow the kernel's first buffer (4 x (in + out) entries).
    n_in, n_out = shape
    g = torch.Generator().manual_seed(9)
    x = torch.randint(-1, 2, (3, 6, n_in), generator=g).float()
    d = 0.5 * torch.randint(-1, 2, (3, 6, n_out), generator=g).float()
    x[:, :, 0] = 1.0  # every sample has a largest input of 1 and a largest error of 1/2
    d[:, :, 0] = -0.5

    def run(tile: Tile) -> None:
        lr = 2 * slots * tile.config.weight_step
        for _ in range(3):
            tile.update(x, d, lr)

    fast, slow = _both_paths(
        monkeypatch, lambda: _exact_tile(device, pair, sequential, shape, max(31, slots)), run
    )
    for a, b in zip(conductances(fast), conductances(slow), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert torch.equal(pulse_counts(fast), pulse_counts(slow))
    for kind in (Event.PULSE, Event.LINE_PULSE, Event.UPDATE):
        assert fast.log[kind] == slow.log[kind] > 0
    assert pulse_counts(fast).max() >= (3 * slots if sequential else 1)


@pytest.mark.parametrize("mode", ["multiplicative", "additive"])
@pytest.mark.parametrize("a", [0.0, 0.0017, 0.3], ids=["linear", "ecram-like", "steep"])
def test_multi_pulse_response_is_the_closed_form(mode: str, a: float) -> None:
    # n pulses at once: one pulse, the summed geometric series (2 to 8 pulses) and the log/exp
    # closed form (more) must all give linear_drive's mean and variance (the torch path's).
    params = get_device("ecram-liwo3").replace(dw_min_std=0.3, noise_mode=NoiseMode(mode))
    dw, g0 = 0.01, params.g_ref + 0.2
    kappa = a / dw
    sigma2 = params.dw_min_std**2
    multiplicative = mode == "multiplicative"

    def moved(n: int, noise: float) -> float:
        args = (params.g_ref, sigma2, multiplicative)
        return float(pulse_kernels._response(g0, dw, kappa, n, noise, *args) - g0)

    for n in range(1, 13):
        as_tensor = torch.tensor([dw], dtype=torch.float64)
        k = torch.tensor([kappa], dtype=torch.float64)
        for sign, x0 in ((1, g0 - params.g_ref), (-1, params.g_ref - g0)):
            constants = linear_constants(params, as_tensor, k)
            x = torch.tensor([x0], dtype=torch.float64)
            mean, var = linear_drive(
                params, constants, x, torch.tensor([float(n)]).double(), as_tensor, k
            )
            assert sign * moved(sign * n, 0.0) == pytest.approx(float(mean), rel=1e-9)
            spread = moved(sign * n, 1.0) - moved(sign * n, 0.0)
            assert spread == pytest.approx(math.sqrt(float(var)), rel=1e-7)


def _noisy_tile(instances: int, max_pulses: int = 31) -> Tile:
    config = TileConfig(
        get_device("reram-taox").replace(stuck_low=0.0, stuck_high=0.0),
        periphery=Periphery(noise_management=False, output_noise=0.0),
        update=UpdateParams(mode=UpdateMode.STOCHASTIC, max_pulses=max_pulses),
    )
    return Tile(3, 2, config, instances=instances, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    "steps", [8.0, 1.0, 300.0], ids=["trains-of-2-to-6-slots", "one-slot-trains", "multi-word"]
)
def test_update_has_the_torch_paths_mean_and_spread(
    monkeypatch: pytest.MonkeyPatch, steps: float
) -> None:
    # Random trains and cycle-to-cycle noise: the draws differ, the distribution must not.
    # lr = 8 steps gives each sample 2 to 6 slots; lr = 1 step gives every sample one slot
    # (the kernel's branch-free path for one-slot trains); lr = 300 steps gives trains of 100
    # slots or less, most longer than one 64-bit word.
    x = torch.tensor([[0.5, -0.8, 0.2], [-0.3, 0.1, 0.9], [0.05, 0.0, -0.4]])
    d = torch.tensor([[0.3, -0.6], [0.7, 0.2], [-0.1, 0.5]])
    changes = {}

    def run(tile: Tile) -> None:
        before = true_weights(tile)
        tile.update(x, d, steps * tile.config.weight_step)
        changes[tile.kernel_ready()] = true_weights(tile) - before

    _both_paths(monkeypatch, lambda: _noisy_tile(4000, max_pulses=100), run)
    fast, slow = changes[True], changes[False]
    se = (fast.var(0) / fast.shape[0] + slow.var(0) / slow.shape[0]).sqrt()
    assert ((fast.mean(0) - slow.mean(0)).abs() <= 4 * se).all()
    ratio = fast.std(0) / slow.std(0)
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio


PERIPHERIES = [
    Periphery(),
    Periphery(noise_management=False, dac_bits=None, output_noise=0.2),
    Periphery(output_noise=0.0, adc_bits=5, output_bound=0.5),
]
PERIPHERY_IDS = ["default", "unmanaged", "saturating"]


def _read_tile(
    device: str, periphery: Periphery, n_in: int, n_out: int, read_noise: bool = True
) -> Tile:
    params = get_device(device)
    config = TileConfig(
        params if read_noise else params.replace(read_noise=0.0), periphery=periphery
    )
    tile = Tile(n_in, n_out, config, instances=2, generator=torch.Generator().manual_seed(0))
    counts = torch.randint(-40, 41, tile.shape, generator=torch.Generator().manual_seed(3))
    # Weights away from zero, pulsed by the torch path on both tiles (a kernel tile's own
    # pulse() draws its noise from its kernel streams): both read the same weights.
    entries = count_entries(tile, counts.float().unsqueeze(1))
    assert entries is not None
    apply_entries(tile, *entries)
    return tile


# (in, out, batch): reads wholly compiled (the second with an odd number of outputs and of
# batch rows, which the multiply-accumulate blocks of 2 outputs and 4 rows must finish), and one
# of more than FUSED_MACS multiply-accumulates (2 instances), where the compiled converters run
# around torch's matmul.
SIZES = [(10, 4, 7), (9, 7, 6), (400, 300, 20)]
SIZE_IDS = ["fused", "fused-odd", "around-matmul"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("periphery", PERIPHERIES, ids=PERIPHERY_IDS)
@pytest.mark.parametrize("device", ["ecram-liwo3", "reram-taox", "pcm"])
def test_compiled_reads_without_noise_are_the_torch_paths_numbers(
    monkeypatch: pytest.MonkeyPatch, periphery: Periphery, device: str, size: tuple[int, ...]
) -> None:
    # No noise drawn: the same conversions of the same sums, taken in another order; a value
    # on a rounding edge of the ADC may land one step away.
    n_in, n_out, batch = size
    quiet = dataclasses.replace(periphery, output_noise=0.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, batch, n_in, generator=g)
    # Errors are small; without noise management they need to be larger to reach the ADC's steps.
    e = (1e-3 if quiet.noise_management else 0.3) * torch.randn(2, batch, n_out, generator=g)
    assert (size != SIZES[-1]) == (2 * batch * n_in * n_out <= reads.FUSED_MACS)
    outs = []
    for enabled in (True, False):
        with monkeypatch.context() as m:
            m.setenv("INSITU_KERNELS", "1" if enabled else "0")
            tile = _read_tile(device, quiet, n_in, n_out, read_noise=False)
            outs.append((tile.read(x), tile.read_transposed(e), tile.log.counts()))
    for k, v in enumerate((x, e)):
        fast, slow = outs[0][k], outs[1][k]
        scale = v.abs().amax(-1, keepdim=True) if quiet.noise_management else 1.0
        step = quiet.adc_step * scale if quiet.adc_bits is not None else 0.0
        assert ((fast - slow).abs() <= step * 1.001 + 1e-5 * slow.abs().max()).all()
        assert (fast == slow).float().mean() > 0.97
        assert slow.abs().sum() > 0
    assert outs[0][2] == outs[1][2]  # the same events logged


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("device", ["ecram-liwo3", "reram-taox"])
def test_compiled_read_noise_has_the_torch_paths_spread(
    monkeypatch: pytest.MonkeyPatch, device: str, size: tuple[int, ...]
) -> None:
    # Output noise (and, on ReRAM, the devices' read noise): other draws, the same statistics.
    n_in, n_out, batch = size
    periphery = Periphery(
        noise_management=False, dac_bits=None, adc_bits=None, output_noise=0.02, output_bound=1e3
    )
    x = torch.rand(1, n_in, generator=torch.Generator().manual_seed(1)).expand(batch, n_in)
    reads_of = {}
    for enabled in (True, False):
        with monkeypatch.context() as m:
            m.setenv("INSITU_KERNELS", "1" if enabled else "0")
            tile = _read_tile(device, periphery, n_in, n_out)
            reads_of[enabled] = torch.cat([tile.read(x) for _ in range(3000 // batch)], dim=1)
    fast, slow = reads_of[True], reads_of[False]
    samples = fast.shape[1]
    se = (fast.var(1) / samples + slow.var(1) / samples).sqrt()
    assert ((fast.mean(1) - slow.mean(1)).abs() <= 4.5 * se).all()
    ratio = fast.std(1) / slow.std(1)
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio
    expected = periphery.output_noise
    if device == "reram-taox":  # every device's read noise, summed on the line (2 per weight)
        dev = get_device(device)
        per_device = dev.read_noise * dev.g_range * tile.config.weight_scale
        expected = math.hypot(expected, per_device * float(x[0].norm()) * 2**0.5)
        assert expected > 1.2 * periphery.output_noise  # the read noise shows
    assert float(fast.std(1).mean()) == pytest.approx(expected, rel=0.05)


def test_compiled_reads_are_reproducible_from_the_seed() -> None:
    x = torch.randn(5, 10, generator=torch.Generator().manual_seed(1))
    first, second = (_read_tile("ecram-liwo3", Periphery(), 10, 4) for _ in range(2))
    a = [first.read(x), first.read(x)]
    b = [second.read(x), second.read(x)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])  # fresh noise at every read


def test_kernels_serve_only_what_they_implement(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(0)

    def tile(device: str = "ecram-liwo3", **update: object) -> Tile:
        config = TileConfig(get_device(device), update=UpdateParams(**update))  # type: ignore[arg-type]
        return Tile(4, 3, config, generator=gen)

    assert tile().kernel_ready()
    assert not tile(mode=UpdateMode.COUNT).kernel_ready()
    assert not tile(mode=UpdateMode.MANHATTAN).kernel_ready()
    assert not tile(max_pulses=kernels.MAX_KERNEL_SLOTS + 1).kernel_ready()
    assert not tile("pcm").kernel_ready()  # one-sided pairs with abrupt RESET: torch path
    monkeypatch.setenv("INSITU_KERNELS", "0")
    assert not tile().kernel_ready()


def _assert_resumes_identically(edit: Callable[[dict[str, Any]], None]) -> None:
    """Update and read, save (then ``edit`` the saved state), update and read again; a fresh
    tile loaded from the saved state must reach the same conductances and read the same
    (the devices' read noise comes from the same streams)."""
    tile = _noisy_tile(3)
    x, d = torch.rand(4, 3), torch.randn(3, 4, 2)
    lr = 8 * tile.config.weight_step
    tile.update(x, d, lr)
    tile.read(x)
    state = copy.deepcopy(tile.state_dict())
    assert "kernel_streams" in state
    edit(state)
    tile.update(x, d, lr)
    other = _noisy_tile(3)
    other.load_state_dict(state)
    other.update(x, d, lr)
    for a, b in zip(conductances(tile), conductances(other), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(tile.read(x), other.read(x))
    assert tile.config.device.read_noise > 0  # so that the reads draw from the streams


def test_kernel_streams_resume_bit_identically() -> None:
    _assert_resumes_identically(lambda state: None)


def test_update_after_relax_sees_the_relaxed_conductances() -> None:
    # relax replaces the conductance tensor: the kernel must not keep writing the old one.
    params = get_device("ecram-liwo3").replace(retention_tau=10.0)
    config = TileConfig(params, periphery=Periphery(noise_management=False, output_noise=0.0))
    tile = Tile(3, 2, config, instances=2, generator=torch.Generator().manual_seed(0))
    x, d = torch.ones(1, 3), torch.full((2, 1, 2), -1.0)
    tile.update(x, d, 4 * tile.config.weight_step)
    tile.relax(5.0)
    relaxed = true_weights(tile)
    tile.update(x, d, 4 * tile.config.weight_step)
    moved = true_weights(tile) - relaxed
    assert (moved > 0).all()  # potentiated from the relaxed state, not from the old one
    assert moved.max() < 0.5 * tile.config.weight_bounds[1]


def test_checkpoints_with_a_kept_normal_draw_still_load() -> None:
    # Older checkpoints saved (stream words, kept normal draws); the words carry on.
    def old_format(state: dict[str, Any]) -> None:
        words = state["kernel_streams"]
        state["kernel_streams"] = (words, torch.full((3,), float("inf"), dtype=torch.float64))

    _assert_resumes_identically(old_format)


@pytest.mark.parametrize("pair", ["differential", "reference"])
@pytest.mark.parametrize("device", ["reram-taox", "ecram-liwo3"])
def test_pulse_and_pulse_columns_equal_torch_path_without_noise(
    monkeypatch: pytest.MonkeyPatch, device: str, pair: str
) -> None:
    # Given pulse counts (a compound cell's transfers and whole steps, write-verify): a tile
    # whose update is compiled applies them in its kernel, with the torch path's numbers where
    # no noise is drawn, and logs the same events.
    gen = torch.Generator().manual_seed(5)
    counts = torch.randint(-6, 7, (3, 5, 9), generator=gen).float()
    columns = torch.tensor([4, 0, 7])

    def run(tile: Tile) -> None:
        tile.pulse(counts)
        tile.pulse_columns(columns, counts[:, :, :3])
        tile.pulse(-2 * counts)

    fast, slow = _both_paths(monkeypatch, lambda: _exact_tile(device, pair, True), run)
    for a, b in zip(conductances(fast), conductances(slow), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert torch.equal(pulse_counts(fast), pulse_counts(slow))
    assert fast.log.counts() == slow.log.counts()
    assert fast.log[Event.PULSE] > 0


def test_pulse_has_the_torch_paths_mean_and_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Cycle-to-cycle noise on given counts: other draws (the kernel's streams), same statistics.
    counts = torch.tensor([[3.0, -1.0, 12.0], [-7.0, 1.0, 0.0]]).expand(4000, 2, 3)
    changes = {}

    def run(tile: Tile) -> None:
        before = true_weights(tile)
        tile.pulse(counts)
        changes[tile.kernel_ready()] = true_weights(tile) - before

    _both_paths(monkeypatch, lambda: _noisy_tile(4000), run)
    fast, slow = changes[True], changes[False]
    moved = counts[0] != 0
    se = (fast.var(0) / fast.shape[0] + slow.var(0) / slow.shape[0]).sqrt()
    assert ((fast.mean(0) - slow.mean(0)).abs() <= 4 * se + 1e-9).all()
    ratio = fast.std(0)[moved] / slow.std(0)[moved]
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio
    assert (fast[:, ~moved] == 0).all()


@pytest.mark.parametrize("pair", ["differential", "reference"])
@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.5])
def test_pulse_steps_fires_accumulators_as_the_torch_path(
    monkeypatch: pytest.MonkeyPatch, threshold: float, pair: str
) -> None:
    # Mixed precision's digital accumulator: whole steps past the threshold are pulsed (at most
    # max_pulses) and subtracted, the remainder stays; the kernel fuses what the torch path does
    # in tensor passes, with the same numbers where no noise is drawn.
    gen = torch.Generator().manual_seed(6)
    steps0 = torch.randn((3, 5, 9), generator=gen) * 4  # in weight steps
    steps0[0, 0, :3] = torch.tensor([0.0, 40.0, -0.49])
    left: dict[bool, torch.Tensor] = {}  # what stays, in weight steps

    def run(tile: Tile) -> None:
        step = tile.config.weight_step
        acc = steps0 * step
        tile.pulse_steps(acc, threshold)
        tile.pulse_steps(acc, threshold)  # what stays below the threshold stays
        left[tile.kernel_ready()] = acc / step

    build = lambda: _exact_tile("reram-taox", pair, True, max_pulses=7)  # noqa: E731
    fast, slow = _both_paths(monkeypatch, build, run)
    assert torch.equal(left[True], left[False])
    _assert_same_tiles(fast, slow)
    # By hand: a weight fires its whole steps (at least 1 once past the threshold, at most 7
    # per call); the pulsed steps plus the remainder give back the accumulator.
    n, rest = pulse_counts(slow), left[False]
    assert n[0, 0, 0] == 0 and rest[0, 0, 0] == 0  # zero: nothing to pulse
    assert n[0, 0, 1] == 14 and rest[0, 0, 1] == pytest.approx(26.0)  # capped at 7, twice
    assert n[0, 0, 2] == (1 if threshold <= 0.49 else 0)
    assert torch.equal((steps0 - rest).round().abs(), n.float())
    below = rest.abs() < max(threshold, 1.0) + 1e-4
    assert below.flatten().tolist().count(False) == 1  # only the capped weight keeps more


@pytest.mark.parametrize("pair", ["differential", "reference"])
def test_pulse_column_steps_fires_as_the_torch_path_and_as_pulse_columns(
    monkeypatch: pytest.MonkeyPatch, pair: str
) -> None:
    # A TTv2 transfer's buffer: the whole steps of some columns' accumulators are pulsed into
    # those columns, one cycle per column, the remainder stays; the kernel fuses what the torch
    # path does in tensor passes, with the same numbers and events where no noise is drawn.
    columns = torch.tensor([7, 8, 0])  # a pass wrapping round the array's 9 columns
    gen = torch.Generator().manual_seed(8)
    steps0 = torch.randn((3, 5, 3), generator=gen) * 5  # in weight steps
    steps0[1, 2, 0] = 40.0  # capped at 7
    left: dict[bool, torch.Tensor] = {}

    def run(tile: Tile) -> None:
        step = tile.config.weight_step
        acc = steps0 * step
        tile.pulse_column_steps(acc, columns, 1.0)
        left[tile.kernel_ready()] = acc / step

    build = lambda: _exact_tile("reram-taox", pair, True, max_pulses=7)  # noqa: E731
    fast, slow = _both_paths(monkeypatch, build, run)
    assert torch.equal(left[True], left[False])
    _assert_same_tiles(fast, slow)
    # The same as the counts written by pulse_columns: pulses, conductances and events.
    n = (steps0 - left[False]).round()
    assert n[1, 2, 0] == 7 and n.abs().max() == 7
    by_counts = build()
    by_counts.pulse_columns(columns, n)
    _assert_same_tiles(fast, by_counts)
    assert pulse_counts(fast)[:, :, [1, 2, 3, 4, 5, 6]].sum() == 0  # other columns untouched
