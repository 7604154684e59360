"""Cost profiles: every event kind priced, every value sourced, bad names and values refused."""

from __future__ import annotations

import pytest

from insitu.energy import (
    ASSUMPTION,
    BRAINSCALES2,
    ECRAM_POLYMER,
    PROFILES,
    CostProfile,
    EventCost,
    Price,
    get_profile,
    profile_for_device,
    profile_names,
)
from insitu.errors import ConfigError
from insitu.experiments import make_config
from insitu.hardware import Event


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_preset_prices_every_event_kind_with_a_source(name: str) -> None:
    profile = get_profile(name)
    assert {kind for kind, _ in profile} == {str(e) for e in Event}
    for kind, cost in profile:
        for value in (cost.joules, cost.seconds):
            assert value.source.strip(), f"{name}/{kind} has no source"
            assert value.value >= 0.0


def test_presets_cite_the_papers_of_the_issue() -> None:
    sources = {
        name: " ".join(c.joules.source + " " + c.seconds.source for _, c in get_profile(name))
        for name in profile_names()
    }
    assert "Melianas" in sources["ecram-polymer"]
    assert "van de Burgt" in sources["ecram-enode"]
    assert "Cramer" in sources["brainscales2"]
    # The TaOx device energies are not from Yi et al.: they must say they are assumptions.
    taox = get_profile("taox-memristor")
    assert taox[Event.PULSE].joules.is_assumption
    assert taox[Event.MAC].joules.is_assumption


def test_published_device_figures_are_the_published_numbers() -> None:
    assert ECRAM_POLYMER[Event.PULSE].joules.value == pytest.approx(80e-15)
    assert not ECRAM_POLYMER[Event.PULSE].joules.is_assumption
    assert get_profile("ecram-enode")[Event.PULSE].joules.value == pytest.approx(10e-12)
    # 200 mW for one 1.7 us step
    assert BRAINSCALES2[Event.EMULATION_STEP].joules.value == pytest.approx(0.2 * 1.7e-6)


def test_per_device_events_take_no_time_and_array_operations_do() -> None:
    for name in ("ecram-polymer", "ecram-enode", "taox-memristor"):
        p = get_profile(name)
        for kind in (Event.MAC, Event.DAC, Event.ADC, Event.PULSE, Event.LINE_PULSE):
            assert p[kind].seconds.value == 0.0, (name, kind)
        for kind in (Event.ARRAY_READ, Event.UPDATE):
            assert p[kind].seconds.value > 0.0, (name, kind)
    for kind in (Event.SYNAPTIC_EVENT, Event.NEURON_STEP, Event.ADC_SAMPLE):
        assert BRAINSCALES2[kind].seconds.value == 0.0
    assert BRAINSCALES2[Event.EMULATION_STEP].seconds.value == pytest.approx(1.7e-6)


def test_unknown_profile_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        get_profile("graphene-dreams")
    message = str(info.value)
    assert "graphene-dreams" in message
    for name in profile_names():
        assert name in message


def test_config_refuses_an_unknown_energy_profile() -> None:
    with pytest.raises(ConfigError, match=r"unknown energy profile 'nope'.*ecram-polymer"):
        make_config({"energy_profile": "nope"})
    assert make_config({"energy_profile": "taox-memristor"}).energy_profile == "taox-memristor"


def test_a_profile_missing_a_kind_or_pricing_an_unknown_one_is_refused() -> None:
    costs = dict(ECRAM_POLYMER.costs)
    del costs[str(Event.MAC)]
    with pytest.raises(ConfigError, match="does not price: mac"):
        CostProfile("partial", "missing mac", costs)
    costs = dict(ECRAM_POLYMER.costs)
    costs["teleport"] = costs[str(Event.MAC)]
    with pytest.raises(ConfigError, match="unknown event kinds teleport"):
        CostProfile("extra", "one too many", costs)


@pytest.mark.parametrize("value", [-1e-12, float("nan"), float("inf")])
def test_negative_or_non_finite_prices_are_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="price"):
        Price(value, "somewhere")


def test_a_price_without_a_source_is_refused() -> None:
    with pytest.raises(ConfigError, match="source"):
        Price(1e-12, "   ")


def test_replace_changes_one_kind_only() -> None:
    free = Price(0.0, f"{ASSUMPTION}: free pulses")
    cheaper = ECRAM_POLYMER.replace(Event.PULSE, EventCost(free, free))
    assert cheaper[Event.PULSE].joules.value == 0.0
    assert cheaper[Event.MAC] == ECRAM_POLYMER[Event.MAC]
    assert ECRAM_POLYMER[Event.PULSE].joules.value > 0.0  # the preset is untouched


def test_default_profile_follows_the_chip_kind() -> None:
    assert profile_for_device("ecram-organic") == "ecram-enode"
    assert profile_for_device("ecram-liwo3") == "ecram-polymer"
    assert profile_for_device("reram-taox") == "taox-memristor"
    assert profile_for_device("pcm") == "taox-memristor"
    assert profile_for_device("ecram-organic", spiking=True) == "brainscales2"
