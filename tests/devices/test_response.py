"""Device physics as properties: closed form vs pulse by pulse, bounds, monotonicity, noise
growth, soft bounds, quantisation, stuck devices, variation draws, reset, drift and retention."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from insitu.devices import (
    DeviceArray,
    DeviceParams,
    apply_pulses,
    apply_stuck,
    device_names,
    get_device,
    initial_conductance,
    nominal_device_array,
    quantize,
    read_conductance,
    relax,
    sample_device_array,
    step_size,
)

PRESETS = device_names()
FAST = settings(deadline=None, max_examples=25)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def comparable(name: str) -> DeviceParams:
    """The preset as the closed-form comparison uses it (continuous, no RESET, no stuck)."""
    p = get_device(name).replace(n_states=None, abrupt_reset=False, stuck_low=0.0, stuck_high=0.0)
    if name == "pcm":
        # The power-step closed form is a small-step limit; PCM's own steps are big.
        p = p.replace(dw_min=0.005)
    return p


def pulse_count(p: DeviceParams) -> int:
    """Pulses that move a device about a fifth of the way to its nearer bound (3 to 40)."""
    distance = min(p.g_max - p.g_ref, p.g_ref - p.g_min)
    return max(3, min(40, round(0.2 * distance / p.dw_min)))


def assert_same_distribution(a: Tensor, b: Tensor, scale: float, label: str) -> None:
    """Means within 2% (+ 4 standard errors), standard deviations within 5%.

    ``scale`` is a floor for both tolerances (floating-point resolution of a noise-free device).
    """
    n = a.numel()
    ma, mb = float(a.mean()), float(b.mean())
    sa, sb = float(a.std()), float(b.std())
    se = math.sqrt((sa**2 + sb**2) / n)
    assert abs(ma - mb) <= 0.02 * abs(mb) + 4 * se + scale, (label, ma, mb, se)
    assert abs(sa - sb) <= 0.05 * sb + scale, (label, sa, sb)


# -- closed form against pulse by pulse ------------------------------------------------------


@pytest.mark.parametrize("sign", [1, -1], ids=["potentiate", "depress"])
@pytest.mark.parametrize("name", PRESETS)
def test_closed_form_matches_exact_pulses(name: str, sign: int) -> None:
    p = comparable(name)
    devices = 20_000
    array = nominal_device_array(p, (devices,))
    n = torch.full((devices,), sign * pulse_count(p))
    # From the symmetry point, and from a state on the other side of it (steps differ there).
    back = 0.2 * ((p.g_ref - p.g_min) if sign > 0 else (p.g_max - p.g_ref))
    for start in (p.g_ref, p.g_ref - sign * back):
        g0 = torch.full((devices,), start, dtype=torch.float64)
        closed = apply_pulses(p, array, g0, n, gen(1)) - g0
        exact = apply_pulses(p, array, g0, n, gen(2), exact=True) - g0
        assert float(exact.mean()) * sign > 0
        assert_same_distribution(closed, exact, 1e-3 * p.dw_min, f"{name} from {start}")


@pytest.mark.parametrize("name", PRESETS)
def test_closed_form_matches_exact_pulses_with_device_variation(name: str) -> None:
    # Per-device steps, asymmetry and slopes are honoured by both paths (bounds kept nominal so
    # that no device starts next to its own bound).
    p = comparable(name).replace(bounds_dtod=0.0)
    devices = 20_000
    array = sample_device_array(p, (devices,), gen(3))
    for sign in (1, -1):
        n = torch.full((devices,), sign * pulse_count(p))
        g0 = torch.full((devices,), p.g_ref, dtype=torch.float64)
        closed = apply_pulses(p, array, g0, n, gen(4)) - g0
        exact = apply_pulses(p, array, g0, n, gen(5), exact=True) - g0
        assert_same_distribution(closed, exact, 1e-3 * p.dw_min, f"{name} {sign:+d}")


def test_closed_form_mixed_signs_in_one_call() -> None:
    # Each device uses its own direction's parameters in one vectorised evaluation.
    p = comparable("ecram-liwo3").replace(dw_min_std=0.0)
    array = nominal_device_array(p, (3,))
    g0 = torch.full((3,), p.g_ref, dtype=torch.float64)
    both = apply_pulses(p, array, g0, torch.tensor([20, -20, 0]), gen())
    up = apply_pulses(p, array, g0, torch.full((3,), 20), gen())
    down = apply_pulses(p, array, g0, torch.full((3,), -20), gen())
    assert float(both[0]) == pytest.approx(float(up[0]), abs=1e-12)
    assert float(both[1]) == pytest.approx(float(down[1]), abs=1e-12)
    assert float(both[2]) == p.g_ref
    # Different slopes up and down: the depression step near g_ref is the same, but
    # saturation differs, so the two excursions are not mirror images.
    assert float(up[0]) - p.g_ref != pytest.approx(p.g_ref - float(down[1]), rel=1e-4)


# -- bounded, monotone ------------------------------------------------------------------------


@FAST
@given(
    name=st.sampled_from(PRESETS),
    seed=st.integers(0, 2**31 - 1),
    max_count=st.integers(1, 400),
    exact=st.booleans(),
    variation=st.floats(0.0, 0.5),
)
def test_conductance_stays_within_each_devices_bounds(
    name: str, seed: int, max_count: int, exact: bool, variation: float
) -> None:
    p = get_device(name)
    if name != "ideal":
        p = p.with_variation(variation).replace(stuck_low=0.05, stuck_high=0.05)
    g_ = gen(seed)
    shape = (4, 16)
    array = sample_device_array(p, shape, g_)
    u = torch.rand(shape, generator=g_)
    g = apply_stuck(array, array.g_min + u * (array.g_max - array.g_min))
    for _ in range(3):
        n = torch.randint(-max_count, max_count + 1, shape, generator=g_)
        g = apply_pulses(p, array, g, n, g_, exact=exact and max_count <= 100)
        assert torch.isfinite(g).all()
        assert (g >= array.g_min).all() and (g <= array.g_max).all()


@FAST
@given(
    name=st.sampled_from(PRESETS),
    counts=st.lists(st.integers(0, 300), min_size=2, max_size=5),
    start=st.floats(0.05, 0.95),
    exact=st.booleans(),
)
def test_more_pulses_move_further_noise_off(
    name: str, counts: list[int], start: float, exact: bool
) -> None:
    p = get_device(name).replace(dw_min_std=0.0, reset_std=0.0)
    array = nominal_device_array(p, (1,))
    g0 = torch.tensor([p.g_min + start * p.g_range])
    prev_up = prev_down = g0
    for n in sorted(counts):
        up = apply_pulses(p, array, g0, torch.tensor([n]), gen(), exact=exact)
        down = apply_pulses(p, array, g0, torch.tensor([-n]), gen(), exact=exact)
        # Quantised devices may round the start to the grid: allow half a level.
        slack = 0.5 * p.g_range / (p.n_states - 1) + 1e-6 if p.n_states else 1e-6
        assert float(up) >= float(prev_up) - slack
        assert float(down) <= float(prev_down) + slack
        prev_up, prev_down = up, down


@pytest.mark.parametrize("name", PRESETS)
def test_one_pulse_moves_a_continuous_device_strictly(name: str) -> None:
    p = get_device(name).replace(dw_min_std=0.0, n_states=None, reset_std=0.0)
    array = nominal_device_array(p, (1,))
    g0 = torch.tensor([p.g_ref])
    mean_up = [float(apply_pulses(p, array, g0, torch.tensor([k]), gen())) for k in range(6)]
    assert all(b > a for a, b in itertools.pairwise(mean_up))
    down = float(apply_pulses(p, array, g0, torch.tensor([-1]), gen()))
    assert down < p.g_ref


@pytest.mark.parametrize("name", ["ecram-liwo3", "reram-taox", "gokmen-vlasov"])
def test_mean_response_is_monotone_with_noise_on(name: str) -> None:
    p = get_device(name).replace(n_states=None)
    array = nominal_device_array(p, (4000,))
    g0 = torch.full((4000,), p.g_ref)
    means = [
        float(apply_pulses(p, array, g0, torch.full((4000,), k), gen(k)).mean())
        for k in (-8, -4, -1, 0, 1, 4, 8)
    ]
    assert means == sorted(means)
    assert means[3] == pytest.approx(p.g_ref)


# -- noise grows as expected -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["multiplicative", "additive"])
@pytest.mark.parametrize("exact", [False, True], ids=["closed", "exact"])
def test_variance_grows_linearly_for_a_constant_step_device(mode: str, exact: bool) -> None:
    p = get_device("gokmen-vlasov").replace(noise_mode=mode)
    devices = 20_000
    array = nominal_device_array(p, (devices,))
    g0 = torch.full((devices,), p.g_ref, dtype=torch.float64)
    per_pulse = (p.dw_min_std * p.dw_min) ** 2
    for n in (4, 16, 64):
        g = apply_pulses(p, array, g0, torch.full((devices,), n), gen(n), exact=exact)
        var = float(g.var())
        # Sample variance has relative standard error sqrt(2/N) ~ 1%.
        assert var == pytest.approx(n * per_pulse, rel=0.05), n
        assert float(g.mean()) - p.g_ref == pytest.approx(n * p.dw_min, rel=0.01)


def test_variance_saturates_for_a_soft_bounds_device() -> None:
    # Near the bound the steps (and their multiplicative noise) shrink: variance stops growing
    # linearly and the mean stops rising.
    p = get_device("ecram-organic").replace(
        model="soft-bounds", slope_up=1.0, slope_down=1.0, n_states=None, dw_min=0.02
    )
    devices = 20_000
    array = nominal_device_array(p, (devices,))
    g0 = torch.full((devices,), p.g_ref, dtype=torch.float64)
    var = {}
    for n in (2, 8, 200):
        var[n] = float(apply_pulses(p, array, g0, torch.full((devices,), n), gen(n)).var())
    assert var[8] > var[2]
    assert var[200] < var[8] * (200 / 8) * 0.2


# -- soft bounds, zero pulses, stuck devices, quantisation ----------------------------------


def test_soft_bounds_step_shrinks_to_zero_at_each_devices_bound() -> None:
    p = get_device("reram-soft-bounds")  # 30% spread of the bounds
    array = sample_device_array(p, (2000,), gen(7))
    levels = torch.linspace(0.0, 1.0, 11)
    ups = [step_size(p, array, p.g_ref + f * (array.g_max - p.g_ref), up=True) for f in levels]
    downs = [step_size(p, array, p.g_ref - f * (p.g_ref - array.g_min), up=False) for f in levels]
    for steps in (ups, downs):
        for a, b in itertools.pairwise(steps):
            assert (b < a).all()
        # Zero at the device's own bound, the nominal step at g_ref.
        assert steps[-1].abs().max() < 1e-6
        assert steps[5] == pytest.approx(0.5 * steps[0], rel=1e-4)


def test_soft_bounds_approach_the_bound_geometrically() -> None:
    # Noise off, the gap to the device's own bound shrinks by (1 - dw_up/(g_max - g_ref)) per
    # pulse: always positive, never overshooting.
    p = get_device("reram-soft-bounds").replace(dw_min_std=0.0)
    array = sample_device_array(p, (500,), gen(8))
    g = torch.full((500,), p.g_ref, dtype=torch.float64)
    g_max = array.g_max.double()
    shrink = 1 - array.dw_up.double() / (g_max - p.g_ref)
    gap0 = g_max - g
    for k in range(1, 5):
        g = apply_pulses(p, array, g, torch.full((500,), 40), gen())
        gap = g_max - g
        assert (gap > 0).all()
        assert torch.allclose(gap, gap0 * shrink.pow(40 * k), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("exact", [False, True], ids=["closed", "exact"])
@pytest.mark.parametrize("name", PRESETS)
def test_zero_pulses_leave_conductance_unchanged(name: str, exact: bool) -> None:
    p = get_device(name)
    array = sample_device_array(p, (500,), gen(9))
    u = torch.rand((500,), generator=gen(10))
    g0 = apply_stuck(array, array.g_min + u * (array.g_max - array.g_min))
    g = apply_pulses(p, array, g0, torch.zeros(500), gen(), exact=exact)
    assert torch.equal(g, g0)
    # Also for a freshly made device (off the quantisation grid at g_ref).
    fresh = initial_conductance(p, array)
    assert torch.equal(apply_pulses(p, array, fresh, torch.zeros(500), gen(), exact=exact), fresh)


@pytest.mark.parametrize("exact", [False, True], ids=["closed", "exact"])
def test_stuck_devices_never_move(exact: bool) -> None:
    p = get_device("reram-taox").replace(stuck_low=0.2, stuck_high=0.2)
    shape = (50, 40)
    array = sample_device_array(p, shape, gen(11))
    g = initial_conductance(p, array)
    low, high = array.stuck < 0, array.stuck > 0
    assert torch.equal(g[low], array.g_min[low]) and torch.equal(g[high], array.g_max[high])
    g_ = gen(12)
    for _ in range(3):
        n = torch.randint(-30, 31, shape, generator=g_)
        g = apply_pulses(p, array, g, n, g_, exact=exact)
        g = relax(p, array, g, 1000.0)
        assert torch.equal(g[low], array.g_min[low]) and torch.equal(g[high], array.g_max[high])
    working = array.stuck == 0
    assert (g[working] != p.g_ref).float().mean() > 0.9


def test_n_states_quantises_to_the_grid() -> None:
    p = get_device("ecram-organic").replace(bounds_dtod=0.0)  # 500 states on [0, 1]
    delta = p.g_range / (p.n_states - 1)  # type: ignore[operator]
    shape = (64, 64)
    array = sample_device_array(p, shape, gen(13))
    g = initial_conductance(p, array)
    g_ = gen(14)
    for exact in (False, True):
        n = torch.randint(-40, 41, shape, generator=g_)
        g = apply_pulses(p, array, g, n, g_, exact=exact)
        k = (g - p.g_min) / delta
        on_grid = (k - k.round()).abs() < 1e-3
        assert on_grid[n != 0].all()
    assert len(torch.unique(g)) > 10


def test_quantised_device_with_bound_spread_stays_on_grid_or_at_its_bound() -> None:
    p = get_device("ecram-organic")  # bounds spread 2%: bounds fall between grid levels
    delta = p.g_range / (p.n_states - 1)  # type: ignore[operator]
    shape = (2000,)
    array = sample_device_array(p, shape, gen(15))
    g = initial_conductance(p, array)
    n = torch.where(torch.arange(2000) % 2 == 0, 2000, -2000)
    g = apply_pulses(p, array, g, n, gen(16))
    assert (g >= array.g_min).all() and (g <= array.g_max).all()
    k = (g - p.g_min) / delta
    on_grid = (k - k.round()).abs() < 1e-3
    at_bound = (g == array.g_min) | (g == array.g_max)
    assert (on_grid | at_bound).all()


@FAST
@given(levels=st.integers(2, 1000), values=st.lists(st.floats(-0.5, 1.5), min_size=1))
def test_quantize_rounds_to_the_nearest_level(levels: int, values: list[float]) -> None:
    p = get_device("ecram-organic").replace(n_states=levels)
    g = torch.tensor(values, dtype=torch.float64)
    q = quantize(p, g)
    delta = p.g_range / (levels - 1)
    assert ((q - g).abs() <= 0.5 * delta + 1e-9).all()
    assert torch.allclose(quantize(p, q), q, atol=1e-9)
    assert torch.equal(quantize(p.replace(n_states=None), g), g)


# -- device-to-device variation ---------------------------------------------------------------


def test_step_spread_matches_dw_min_dtod() -> None:
    p = get_device("ecram-liwo3").replace(up_down_dtod=0.0, dw_min_dtod=0.1)
    n = 50_000
    array = sample_device_array(p, (n,), gen(17))
    rel = array.dw_up / p.dw_min
    assert float(rel.mean()) == pytest.approx(1.0, abs=4 * 0.1 / math.sqrt(n))
    assert float(rel.std()) == pytest.approx(0.1, rel=0.03)
    assert torch.equal(array.dw_up, array.dw_down)  # no asymmetry
    assert (array.dw_up > 0).all()


def test_asymmetry_and_bound_spreads() -> None:
    p = get_device("ecram-liwo3").replace(up_down=0.2, up_down_dtod=0.0, bounds_dtod=0.05)
    array = sample_device_array(p, (50_000,), gen(18))
    # Down steps dw_min*(gain - 0.2), up dw_min*gain: the gain spread cancels in the difference.
    diff = (array.dw_up - array.dw_down) / p.dw_min
    assert torch.allclose(diff, torch.full_like(diff, 0.2), atol=1e-5)
    span = (array.g_max - p.g_ref) / (p.g_max - p.g_ref)
    assert float(span.mean()) == pytest.approx(1.0, abs=0.002)
    assert float(span.std()) == pytest.approx(0.05, rel=0.03)
    assert (array.g_min < p.g_ref).all() and (array.g_max > p.g_ref).all()


@pytest.mark.parametrize(("low", "high"), [(0.01, 0.02), (0.1, 0.05), (0.0, 0.3)])
def test_stuck_fractions_match_within_binomial_error(low: float, high: float) -> None:
    p = get_device("reram-taox").replace(stuck_low=low, stuck_high=high)
    n = 40_000
    array = sample_device_array(p, (200, 200), gen(19))
    for want, got in ((low, (array.stuck < 0)), (high, (array.stuck > 0))):
        frac = float(got.float().mean())
        se = math.sqrt(max(want * (1 - want), 1e-12) / n)
        assert abs(frac - want) <= 4 * se
    assert array.stuck.dtype == torch.int8


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    p = get_device("pcm").with_variation(0.2)
    a = sample_device_array(p, (8, 9), gen(20))
    b = sample_device_array(p, (8, 9), gen(20))
    c = sample_device_array(p, (8, 9), gen(21))
    for fa, fb, name in zip(a, b, DeviceArray._fields, strict=True):
        assert torch.equal(fa, fb), name
        assert fa.shape == (8, 9)
    for name in ("dw_up", "g_min", "g_max", "kappa_up", "drift_nu"):
        assert not torch.equal(getattr(a, name), getattr(c, name)), name
    g_ = gen(22)
    ga = apply_pulses(p, a, initial_conductance(p, a), torch.full((8, 9), 3), g_)
    g_ = gen(22)
    gb = apply_pulses(p, b, initial_conductance(p, b), torch.full((8, 9), 3), g_)
    assert torch.equal(ga, gb)


def test_nominal_array_has_no_spread() -> None:
    p = get_device("reram-taox")
    array = nominal_device_array(p, (10, 10))
    for field in array:
        assert len(torch.unique(field)) == 1
    assert (array.stuck == 0).all()
    assert float(array.dw_up[0, 0]) == pytest.approx(p.dw_min)  # up_down > 0: up is dw_min
    assert float(array.dw_down[0, 0]) == pytest.approx(p.dw_min * (1 - p.up_down))
    assert float(array.kappa_up[0, 0]) == pytest.approx(p.kappa_up)
    assert float(array.kappa_down[0, 0]) == pytest.approx(p.kappa_down)


# -- reads, reset, drift, retention -----------------------------------------------------------


def test_read_noise_has_the_stated_spread() -> None:
    p = get_device("reram-taox")
    array = nominal_device_array(p, (50_000,))
    g = torch.full((50_000,), 0.3)
    r = read_conductance(p, array, g, gen(23))
    assert float((r - g).mean()) == pytest.approx(0.0, abs=4 * p.read_noise / math.sqrt(5e4))
    assert float((r - g).std()) == pytest.approx(p.read_noise * p.g_range, rel=0.03)
    quiet = p.replace(read_noise=0.0)
    assert torch.equal(read_conductance(quiet, array, g, gen()), g)


@pytest.mark.parametrize("exact", [False, True], ids=["closed", "exact"])
def test_pcm_depression_is_an_abrupt_reset(exact: bool) -> None:
    p = get_device("pcm")
    array = sample_device_array(p, (5000,), gen(24))
    g = apply_pulses(p, array, initial_conductance(p, array), torch.full((5000,), 10), gen(25))
    assert float((g - array.g_min).min()) > 0.2
    for count in (1, 3):
        reset = apply_pulses(p, array, g, torch.full((5000,), -count), gen(26), exact=exact)
        above = reset - array.g_min
        # |N(0, reset_std)| spread above g_min: mean reset_std * sqrt(2/pi) of the range.
        assert (above >= 0).all()
        assert float(above.max()) < 6 * p.reset_std * p.g_range
        expected = p.reset_std * p.g_range * math.sqrt(2 / math.pi)
        assert float(above.mean()) == pytest.approx(expected, rel=0.1)


def test_pcm_drift_lowers_conductance_monotonically_in_time() -> None:
    p = get_device("pcm")
    array = sample_device_array(p, (3000,), gen(27))
    g0 = apply_pulses(p, array, initial_conductance(p, array), torch.full((3000,), 6), gen(28))
    assert torch.allclose(relax(p, array, g0, 0.0), g0, rtol=0, atol=1e-7)
    prev = g0
    for t in (1.0, 10.0, 1e3, 1e5, 1e7):
        g = relax(p, array, g0, t)
        assert (g <= prev + 1e-7).all()  # float rounding where a device's nu is 0
        assert (g >= array.g_min).all()
        prev = g
    # Nominal nu: after 1e7 s a fraction (1e7)^-0.05 ~ 0.45 of the excursion above g_min
    # remains.
    ratio = (prev - array.g_min) / (g0 - array.g_min)
    assert float(ratio.median()) == pytest.approx((1 + 1e7) ** -p.drift_nu, rel=0.1)
    assert float(ratio.max()) <= 1.0 + 1e-6
    assert float((ratio < 0.99).float().mean()) > 0.9  # only devices drawn with nu ~ 0 stay


def test_retention_relaxes_toward_g_ref() -> None:
    p = get_device("ecram-organic").replace(stuck_low=0.1)
    array = sample_device_array(p, (4000,), gen(29))
    n = torch.where(torch.arange(4000) % 2 == 0, 100, -100)
    g0 = apply_pulses(p, array, initial_conductance(p, array), n, gen(30))
    tau = p.retention_tau
    assert tau is not None
    working = array.stuck == 0
    prev = (g0 - p.g_ref).abs()
    for t in (0.1 * tau, tau, 10 * tau):
        g = relax(p, array, g0, t)
        dist = (g - p.g_ref).abs()
        assert (dist[working] <= prev[working]).all()
        expected = (g0 - p.g_ref) * math.exp(-t / tau)
        assert torch.allclose((g - p.g_ref)[working], expected[working], atol=1e-6)
        assert torch.equal(g[~working], g0[~working])
        prev = dist
    assert float(prev[working].max()) < 1e-3


@pytest.mark.parametrize("name", ["pcm", "ecram-organic"])
def test_relax_rejects_negative_time(name: str) -> None:
    p = get_device(name)
    array = nominal_device_array(p, (3,))
    with pytest.raises(ValueError, match="seconds"):
        relax(p, array, initial_conductance(p, array), -1.0)


def test_devices_without_drift_or_retention_do_not_relax() -> None:
    p = get_device("ecram-liwo3")
    array = sample_device_array(p, (100,), gen(31))
    g = apply_pulses(p, array, initial_conductance(p, array), torch.full((100,), 30), gen(32))
    assert torch.equal(relax(p, array, g, 1e6), g)
