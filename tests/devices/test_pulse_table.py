"""The tabled closed form (the crossbar's fast path) gives apply_pulses' outcome exactly."""

from __future__ import annotations

import pytest
import torch

from insitu.devices import (
    apply_pulses,
    device_names,
    get_device,
    initial_conductance,
    sample_device_array,
)
from insitu.devices.pulse_table import apply_pulses_tabled, has_table, pulse_table

TABLED = [n for n in device_names() if has_table(get_device(n))]


def test_every_exponent_one_preset_without_reset_has_a_table() -> None:
    assert set(TABLED) == {
        n
        for n in device_names()
        if get_device(n).exponent == 1.0 and not get_device(n).abrupt_reset
    }
    assert "pcm" not in TABLED
    with pytest.raises(ValueError, match="no pulse table"):
        p = get_device("pcm")
        pulse_table(p, sample_device_array(p, (3,), torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", TABLED)
def test_tabled_pulses_equal_apply_pulses(name: str) -> None:
    # Device variation, stuck devices, mixed signs, zero counts and states on both sides of
    # g_ref: the same generator state gives the same conductances.
    p = get_device(name).replace(stuck_low=0.05, stuck_high=0.05).with_variation(0.2)
    gen = torch.Generator().manual_seed(1)
    devices = 4000
    array = sample_device_array(p, (devices,), gen)
    spread = 0.3 * torch.randn(devices, generator=gen) * min(p.g_max - p.g_ref, p.g_ref - p.g_min)
    g = (initial_conductance(p, array) + spread).clamp(p.g_min, p.g_max)
    n = torch.randint(-40, 41, (devices,), generator=gen).float()
    expected = apply_pulses(p, array, g, n, torch.Generator().manual_seed(7))
    got = apply_pulses_tabled(p, pulse_table(p, array), g, n, torch.Generator().manual_seed(7))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert bool((got != g).any())
    stuck = array.stuck != 0
    assert torch.equal(got[stuck | (n == 0)], g[stuck | (n == 0)])
