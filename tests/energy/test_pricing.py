"""Pricing is linear and additive; a hand-computed log prices to the hand total."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from insitu.devices import get_device
from insitu.energy import BRAINSCALES2, ECRAM_POLYMER, TAOX_MEMRISTOR, price
from insitu.errors import ConfigError
from insitu.hardware import (
    IDEAL_NEURON,
    IDEAL_PERIPHERY,
    ChipConfig,
    CrossbarChip,
    Event,
    SpikingChip,
    SpikingChipConfig,
    TileConfig,
)

KINDS = [str(e) for e in Event]
counts_strategy = st.dictionaries(
    st.sampled_from(KINDS), st.floats(min_value=0, max_value=1e12), max_size=len(KINDS)
)


def test_hand_computed_log_equals_the_hand_total() -> None:
    counts = {
        "mac": 1000,
        "adc_conversion": 10,
        "array_read": 2,
        "device_pulse": 50,
        "parallel_update": 1,
    }
    priced = price(counts, ECRAM_POLYMER)
    # By hand: 1000 MACs x 10 fJ + 10 conversions x (10 fJ x 2^9 = 5.12 pJ) + 50 pulses x 80 fJ
    assert priced.total_joules == pytest.approx(1000 * 10e-15 + 10 * 5.12e-12 + 50 * 80e-15)
    # Time: 2 reads x 100 ns + 1 update cycle of 31 slots x 20 ns; MACs, conversions and
    # pulses happen inside them.
    assert priced.total_seconds == pytest.approx(2 * 100e-9 + 31 * 20e-9)
    assert priced.joules["device_pulse"] == pytest.approx(4e-12)
    assert priced.seconds["mac"] == 0.0


def test_hand_computed_spiking_log() -> None:
    counts = {"emulation_step": 5, "synaptic_event": 12_345, "host_bytes_out": 1000}
    priced = price(counts, BRAINSCALES2)
    assert priced.total_joules == pytest.approx(5 * 0.2 * 1.7e-6)
    assert priced.total_seconds == pytest.approx(5 * 1.7e-6 + 1000 * 1e-9)


@settings(max_examples=60, deadline=None)
@given(counts_strategy, counts_strategy, st.floats(min_value=0, max_value=1e6))
def test_pricing_is_linear_and_additive(a: dict[str, float], b: dict[str, float], k: float) -> None:
    for profile in (ECRAM_POLYMER, TAOX_MEMRISTOR, BRAINSCALES2):
        both = {kind: a.get(kind, 0.0) + b.get(kind, 0.0) for kind in set(a) | set(b)}
        pa, pb, pab = price(a, profile), price(b, profile), price(both, profile)
        assert pab.total_joules == pytest.approx(pa.total_joules + pb.total_joules, rel=1e-9)
        assert pab.total_seconds == pytest.approx(pa.total_seconds + pb.total_seconds, rel=1e-9)
        pk = price({kind: k * v for kind, v in a.items()}, profile)
        assert pk.total_joules == pytest.approx(k * pa.total_joules, rel=1e-9, abs=1e-300)
        assert pk.total_seconds == pytest.approx(k * pa.total_seconds, rel=1e-9, abs=1e-300)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ConfigError, match="need a finite count"):
        price({"mac": -1.0}, ECRAM_POLYMER)
    with pytest.raises(ConfigError, match=r"not priced.*known kinds"):
        price({"warp_drive": 1.0}, ECRAM_POLYMER)


def test_doubling_the_samples_doubles_the_cost_of_crossbar_reads() -> None:
    tile = TileConfig(device=get_device("ecram-organic"), periphery=IDEAL_PERIPHERY)
    x = torch.rand(7, 12, generator=torch.Generator().manual_seed(0))

    def cost(samples: torch.Tensor) -> tuple[float, float]:
        chip = CrossbarChip(ChipConfig((12, 9, 4), tile), instances=2, seed=1)
        chip.log.reset()  # the cost of reading, not of building
        with torch.no_grad():
            chip.forward(samples)
        p = price(chip.log.counts(), ECRAM_POLYMER)
        return p.total_joules, p.total_seconds

    one = cost(x)
    two = cost(torch.cat([x, x]))
    assert one[0] > 0 and one[1] > 0
    assert two[0] == pytest.approx(2 * one[0], rel=1e-12)
    assert two[1] == pytest.approx(2 * one[1], rel=1e-12)


def test_doubling_the_images_doubles_the_cost_of_spiking_inference() -> None:
    cfg = SpikingChipConfig.from_sizes((20, 15, 3), neuron=IDEAL_NEURON, time_steps=6)
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(8, 6, 20, generator=gen) < 0.3).to(torch.float32)
    w0 = torch.randint(0, 63, (15, 20), generator=gen)
    w1 = torch.randint(-63, 63, (3, 15), generator=gen)

    def cost(x: torch.Tensor) -> tuple[float, float, float]:
        chip = SpikingChip(cfg, instances=2, seed=3)
        chip.write_weights(0, w0)
        chip.write_weights(1, w1)
        chip.log.reset()
        chip.run(x)
        p = price(chip.log.counts(), BRAINSCALES2)
        return p.total_joules, p.total_seconds, chip.log[Event.SYNAPTIC_EVENT]

    one, two = cost(spikes), cost(torch.cat([spikes, spikes]))
    assert one[2] > 0  # spikes did flow
    for a, b in zip(one, two, strict=True):
        assert b == pytest.approx(2 * a, rel=1e-12)
