"""Up/down asymmetry in aihwkit's convention (PulsedRPUDevice::populate): the stronger
direction steps dw_min, the weaker dw_min*(1-|up_down|); up_down_dtod moves dw_min*r from the
down step to the up step. Checked on the pulse response of noise-free devices and on draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insitu.devices import (
    DeviceParams,
    apply_pulses,
    get_device,
    initial_conductance,
    nominal_device_array,
    sample_device_array,
)
from insitu.devices.asymmetry import asymmetry_from_steps, nominal_steps

DW_MIN = 0.01
# up_down -> (up step, down step) / dw_min, written out from aihwkit's populate: up_down > 0
# shrinks only the down step, up_down < 0 only the up step.
AIHWKIT_STEPS = {0.3: (1.0, 0.7), -0.3: (0.7, 1.0), 0.0: (1.0, 1.0)}


def noise_free(up_down: float) -> DeviceParams:
    """A constant-step device without any noise or spread, dw_min 0.01 around g_ref 0.5."""
    return DeviceParams(name="t", model="constant-step", dw_min=DW_MIN, up_down=up_down)


@pytest.mark.parametrize("up_down", sorted(AIHWKIT_STEPS))
def test_one_pulse_each_way_moves_a_noise_free_device_by_aihwkits_steps(up_down: float) -> None:
    p = noise_free(up_down)
    array = nominal_device_array(p, (2,))
    g0 = initial_conductance(p, array)
    g = apply_pulses(p, array, g0, torch.tensor([1, -1]), torch.Generator().manual_seed(0))
    up, down = AIHWKIT_STEPS[up_down]
    assert float(g[0] - g0[0]) == pytest.approx(up * DW_MIN, rel=1e-5)
    assert float(g0[1] - g[1]) == pytest.approx(down * DW_MIN, rel=1e-5)
    assert nominal_steps(DW_MIN, up_down) == pytest.approx((up * DW_MIN, down * DW_MIN))


@pytest.mark.parametrize("up_down", sorted(AIHWKIT_STEPS))
def test_many_pulses_follow_the_directional_step(up_down: float) -> None:
    """Ten pulses each way, closed form: ten steps of each direction's size."""
    p = noise_free(up_down)
    array = nominal_device_array(p, (2,))
    g0 = initial_conductance(p, array)
    g = apply_pulses(p, array, g0, torch.tensor([10, -10]), torch.Generator().manual_seed(0))
    up, down = AIHWKIT_STEPS[up_down]
    assert float(g[0] - g0[0]) == pytest.approx(10 * up * DW_MIN, rel=1e-5)
    assert float(g0[1] - g[1]) == pytest.approx(10 * down * DW_MIN, rel=1e-5)


def test_up_down_spread_moves_step_from_down_to_up() -> None:
    """up_down_dtod r: up = dw_min*(1 + r), down = dw_min*(1 - up_down - r), r ~ N(0, 0.05)."""
    n = 40_000
    p = noise_free(0.3).replace(up_down_dtod=0.05)
    array = sample_device_array(p, (n,), torch.Generator().manual_seed(3))
    total = (array.dw_up + array.dw_down) / DW_MIN
    diff = (array.dw_up - array.dw_down) / DW_MIN
    # Without a gain spread the sum is the same on every device: 2 - 0.3.
    assert torch.allclose(total, torch.full_like(total, 1.7), rtol=1e-5)
    assert float(diff.mean()) == pytest.approx(0.3, abs=4 * 0.1 / math.sqrt(n))
    assert float(diff.std()) == pytest.approx(2 * 0.05, rel=0.03)
    assert float((array.dw_up / DW_MIN).std()) == pytest.approx(0.05, rel=0.03)


def test_gain_spread_moves_both_directions_by_the_same_amount() -> None:
    """dw_min_dtod: up = dw_min*(gain - 0.3), down = dw_min*gain (the difference is fixed)."""
    p = noise_free(-0.3).replace(dw_min_dtod=0.1)
    array = sample_device_array(p, (20_000,), torch.Generator().manual_seed(4))
    diff = (array.dw_down - array.dw_up) / DW_MIN
    assert torch.allclose(diff, torch.full_like(diff, 0.3), atol=1e-5)
    assert float((array.dw_down / DW_MIN).mean()) == pytest.approx(1.0, abs=4e-3)
    assert float((array.dw_down / DW_MIN).std()) == pytest.approx(0.1, rel=0.03)


def test_a_spread_never_flips_a_step() -> None:
    p = noise_free(0.9).replace(up_down_dtod=0.3, dw_min_dtod=0.5)
    array = sample_device_array(p, (20_000,), torch.Generator().manual_seed(5))
    assert (array.dw_up >= 0.05 * DW_MIN * (1 - 1e-6)).all()
    assert (array.dw_down >= 0.05 * 0.1 * DW_MIN * (1 - 1e-6)).all()


@pytest.mark.parametrize("up_down", [0.3, -0.3, 0.0])
def test_asymmetry_from_steps_inverts_the_draw(up_down: float) -> None:
    """The fitter's inverse returns dw_min, up_down and each device's gain and spread."""
    p = noise_free(up_down).replace(dw_min_dtod=0.1, up_down_dtod=0.05)
    gen = torch.Generator().manual_seed(6)
    array = sample_device_array(p, (5_000,), gen)
    # The same draws sample_device_array made: gain first, then spread.
    gen = torch.Generator().manual_seed(6)
    gain = (1 + 0.1 * torch.randn(5_000, generator=gen)).double().numpy()
    spread = (0.05 * torch.randn(5_000, generator=gen)).double().numpy()
    asym = asymmetry_from_steps(array.dw_up.double().numpy(), array.dw_down.double().numpy())
    assert asym.dw_min == pytest.approx(DW_MIN, rel=3e-3)
    assert asym.up_down == pytest.approx(up_down, abs=3e-3)
    # Per device exact up to the population means' sampling error.
    assert np.abs(asym.gain - gain).max() < 5e-3
    assert np.abs(asym.spread - spread).max() < 5e-3


def test_reram_taox_keeps_aihwkits_asymmetry() -> None:
    """The preset quotes aihwkit's ReRamESPresetDevice up_down (0.259359 ~ 0.26): stronger up."""
    p = get_device("reram-taox")
    array = nominal_device_array(p, (1,))
    assert float(array.dw_up[0]) == pytest.approx(p.dw_min, rel=1e-6)
    assert float(array.dw_down[0]) == pytest.approx(p.dw_min * (1 - 0.26), rel=1e-6)
