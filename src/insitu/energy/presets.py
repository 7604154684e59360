"""Named cost profiles of three chips, every number cited or marked as an assumption.

- ``ecram-polymer``: a crossbar of polymer ECRAM (Melianas et al., Sci. Adv. 6, eabb2958,
  2020: ~80 fJ per write, 20 ns switching, +-1 V).
- ``ecram-enode``: a crossbar of organic ENODe ECRAM of 1000 um^2 (van de Burgt et al., Nature
  Materials 16, 414, 2017: <10 pJ per synaptic event); the device of insitu's ``ecram-organic``.
- ``taox-memristor``: a crossbar of Ta/TaOx memristors as in the activity-difference work of
  Yi, Kendall, Williams, Kumar (Nature Electronics 2022); device energies are assumptions from
  the V * I * t of typical filamentary TaOx switching, not figures from that paper.
- ``brainscales2``: a BrainScaleS-2-like spiking chip (Cramer et al., PNAS 119, e2109194119,
  2022: <200 mW chip power, MNIST at ~85,000 images/s and ~2.4 uJ per image).

The periphery around every crossbar (DAC, ADC, digital ops, SRAM) is shared; its numbers are
order-of-magnitude assumptions (ADC from a Walden figure of merit) or from Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014 (45 nm figures).
"""

from __future__ import annotations

from insitu.energy.profiles import ASSUMPTION, CostProfile, EventCost, Price
from insitu.errors import ConfigError, UnknownNameError
from insitu.hardware import Event

_NONE = Price(0.0, "none: this event takes no time of its own (see insitu.energy.profiles)")
_PARALLEL = Price(
    0.0,
    "none: parallel inside the array operation that carries the time (array_read, "
    "parallel_update or emulation_step)",
)

CROSSBAR_KINDS = (
    Event.MAC,
    Event.DAC,
    Event.ADC,
    Event.ARRAY_READ,
    Event.UPDATE,
    Event.LINE_PULSE,
    Event.PULSE,
    Event.DEVICE_READ,
    Event.PROGRAM_ITERATION,
    Event.ACTIVATION,
    Event.DIGITAL_OP,
    Event.STORED_VALUE,
)
"""Kinds a crossbar chip logs; the others belong to spiking chips."""

SPIKING_KINDS = tuple(e for e in Event if e not in CROSSBAR_KINDS)
"""Kinds a spiking chip logs."""


def _absent(kinds: tuple[Event, ...], chip: str) -> dict[str, EventCost]:
    why = Price(0.0, f"not applicable: a {chip} does not log this event")
    return {str(k): EventCost(why, why) for k in kinds}


# -- shared crossbar periphery -------------------------------------------------------------
ADC_FOM_J = 10e-15
"""Walden figure of merit (J per conversion step) assumed for the output ADCs."""
ADC_BITS = 9  # insitu's default PeripheryConfig.adc_bits
READ_S = 100e-9
DAC_J = 0.1e-12
ACTIVATION_J = 1e-12
DIGITAL_OP_J = 1.1e-12 + 0.4e-12
STORED_VALUE_J = 2 * 2.5e-12
LINE_C_F = 100e-15
UPDATE_SLOTS = 31  # insitu's default UpdateConfig.max_pulses


def crossbar_profile(
    name: str,
    description: str,
    *,
    mac: Price,
    pulse: Price,
    pulse_seconds: Price,
    write_volts: Price,
    read_seconds: float = READ_S,
) -> CostProfile:
    """A crossbar chip: device figures given, periphery shared (see module docstring)."""
    adc_j = ADC_FOM_J * 2**ADC_BITS
    adc = Price(
        adc_j,
        f"{ASSUMPTION}: {ADC_BITS}-bit SAR ADC (insitu's default adc_bits) at a Walden figure "
        f"of merit of {ADC_FOM_J * 1e15:g} fJ per conversion step: {adc_j * 1e12:.2g} pJ",
    )
    read_t = Price(
        read_seconds,
        f"{ASSUMPTION}: {read_seconds * 1e9:g} ns per vector-matrix multiplication (line "
        "settling and integration, then one conversion by column-parallel ADCs)",
    )
    cycle = UPDATE_SLOTS * pulse_seconds.value
    line_j = LINE_C_F * write_volts.value**2
    costs: dict[str, EventCost] = {
        str(Event.MAC): EventCost(mac, _PARALLEL),
        str(Event.DAC): EventCost(
            Price(DAC_J, f"{ASSUMPTION}: {DAC_J * 1e12:g} pJ per 7-bit input conversion"),
            _PARALLEL,
        ),
        str(Event.ADC): EventCost(adc, _PARALLEL),
        str(Event.ARRAY_READ): EventCost(
            Price(0.0, "none: its MACs and conversions are priced one by one"), read_t
        ),
        str(Event.UPDATE): EventCost(
            Price(0.0, "none: its line pulses and device pulses are priced one by one"),
            Price(
                cycle,
                f"{ASSUMPTION}: one update cycle = {UPDATE_SLOTS} pulse slots (insitu's default "
                f"max_pulses) of {pulse_seconds.value * 1e9:g} ns ({pulse_seconds.source})",
            ),
        ),
        str(Event.LINE_PULSE): EventCost(
            Price(
                line_j,
                f"{ASSUMPTION}: {LINE_C_F * 1e15:g} fF line capacitance charged to the write "
                f"voltage {write_volts.value:g} V ({write_volts.source}): C V^2",
            ),
            _PARALLEL,
        ),
        str(Event.PULSE): EventCost(pulse, _PARALLEL),
        str(Event.DEVICE_READ): EventCost(
            Price(
                mac.value + adc_j,
                f"{ASSUMPTION}: one device read = one MAC plus one ADC conversion",
            ),
            Price(
                read_seconds,
                f"{ASSUMPTION}: devices measured one at a time, {read_seconds * 1e9:g} ns each "
                "(pessimistic: row-parallel reads would be faster)",
            ),
        ),
        str(Event.PROGRAM_ITERATION): EventCost(
            Price(0.0, "none: bookkeeping; the iteration's reads and pulses are priced"), _NONE
        ),
        str(Event.ACTIVATION): EventCost(
            Price(
                ACTIVATION_J,
                f"{ASSUMPTION}: {ACTIVATION_J * 1e12:g} pJ per activation circuit evaluation",
            ),
            Price(0.0, f"{ASSUMPTION}: one activation circuit per column, in parallel"),
        ),
        str(Event.DIGITAL_OP): EventCost(
            Price(
                DIGITAL_OP_J,
                "Horowitz, ISSCC 2014 (45 nm): 16-bit floating-point multiply 1.1 pJ + add 0.4 pJ",
            ),
            Price(
                0.0,
                f"{ASSUMPTION}: one digital lane per column, overlapped with array operations",
            ),
        ),
        str(Event.STORED_VALUE): EventCost(
            Price(
                STORED_VALUE_J,
                "Horowitz, ISSCC 2014: a 64-bit read of an 8 kB SRAM costs ~10 pJ; "
                f"{ASSUMPTION}: a 16-bit value written once and read once, 2 x 2.5 pJ",
            ),
            Price(0.0, f"{ASSUMPTION}: SRAM access overlapped with array operations"),
        ),
    }
    costs.update(_absent(SPIKING_KINDS, "crossbar chip"))
    return CostProfile(name, description, costs)


MELIANAS_2020 = "Melianas et al., Sci. Adv. 6, eabb2958 (2020)"
VAN_DE_BURGT_2017 = "van de Burgt et al., Nature Materials 16, 414 (2017)"

ECRAM_POLYMER = crossbar_profile(
    "ecram-polymer",
    "Crossbar of polymer ECRAM with ion-gel electrolyte (Melianas 2020), shared periphery.",
    mac=Price(
        (0.1**2) * 10e-6 * READ_S,
        f"{ASSUMPTION}: (0.1 V read)^2 x 10 uS mean conductance x 100 ns read = 10 fJ",
    ),
    pulse=Price(80e-15, f"{MELIANAS_2020}: ~80 fJ per write"),
    pulse_seconds=Price(20e-9, f"{MELIANAS_2020}: 20 ns switching"),
    write_volts=Price(1.0, f"{MELIANAS_2020}: +-1 V operation"),
)

ECRAM_ENODE = crossbar_profile(
    "ecram-enode",
    "Crossbar of 1000 um^2 PEDOT:PSS ENODe ECRAM (van de Burgt 2017; insitu's ecram-organic).",
    mac=ECRAM_POLYMER["mac"].joules,
    pulse=Price(10e-12, f"{VAN_DE_BURGT_2017}: <10 pJ per synaptic event, 1000 um^2 device"),
    pulse_seconds=Price(
        100e-9, f"{ASSUMPTION}: 100 ns pulses (the pulse_width of insitu's ecram-organic preset)"
    ),
    write_volts=Price(1.0, f"{ASSUMPTION}: 1 V write pulses (switching within a 1 V range)"),
)

TAOX_MEMRISTOR = crossbar_profile(
    "taox-memristor",
    "Crossbar of Ta/TaOx memristors (as in Yi et al., Nat. Electron. 2022); device energies "
    "are V*I*t assumptions.",
    mac=Price(
        (0.2**2) * 50e-6 * READ_S,
        f"{ASSUMPTION}: (0.2 V read)^2 x 50 uS mean conductance x 100 ns read = 200 fJ",
    ),
    pulse=Price(
        1.5 * 100e-6 * 100e-9,
        f"{ASSUMPTION}: 1.5 V x 100 uA x 100 ns per programming pulse = 15 pJ (typical "
        "filamentary TaOx switching; not a figure from Yi et al. 2022)",
    ),
    pulse_seconds=Price(
        100e-9, f"{ASSUMPTION}: 100 ns pulses (the pulse_width of insitu's reram-taox preset)"
    ),
    write_volts=Price(1.5, f"{ASSUMPTION}: 1.5 V programming pulses"),
)

CRAMER_2022 = "Cramer et al., PNAS 119, e2109194119 (2022)"


def brainscales2_profile(
    *,
    chip_power_w: float = 0.2,
    dt_seconds: float = 1.7e-6,
    link_bytes_per_s: float = 1e9,
) -> CostProfile:
    """A BrainScaleS-2-like chip: the whole chip power charged per emulated time step.

    No per-event energies of BrainScaleS-2 are used (none found): synaptic events, neuron
    updates and ADC samples are inside the chip power, so energy follows emulated time.
    """
    step_j = chip_power_w * dt_seconds
    inside = Price(
        0.0,
        f"{ASSUMPTION}: inside the {chip_power_w * 1e3:g} mW chip power charged per "
        "emulation_step (static share 100%; no per-event figure used)",
    )
    parallel = Price(0.0, "none: every neuron and synapse runs in parallel in continuous time")
    link = Price(
        1.0 / link_bytes_per_s,
        f"{ASSUMPTION}: {link_bytes_per_s / 1e9:g} GB/s chip-host link, not overlapped with "
        "emulation",
    )
    off_chip = Price(
        0.0,
        f"{ASSUMPTION}: link energy is off-chip; {CRAMER_2022} report chip energy only",
    )
    costs: dict[str, EventCost] = {
        str(Event.EMULATION_STEP): EventCost(
            Price(
                step_j,
                f"{CRAMER_2022}: <200 mW chip power while classifying; {ASSUMPTION}: "
                f"{chip_power_w * 1e3:g} mW for the whole step, an upper bound",
            ),
            Price(
                dt_seconds,
                f"one step = one sample period of the membrane ADC, ~{dt_seconds * 1e6:g} us "
                f"({CRAMER_2022}; insitu's NeuronParams.dt_seconds)",
            ),
        ),
        str(Event.SYNAPTIC_EVENT): EventCost(inside, parallel),
        str(Event.NEURON_STEP): EventCost(inside, parallel),
        str(Event.ADC_SAMPLE): EventCost(inside, parallel),
        str(Event.HOST_BYTES_IN): EventCost(off_chip, link),
        str(Event.HOST_BYTES_OUT): EventCost(off_chip, link),
    }
    costs.update(_absent(CROSSBAR_KINDS, "spiking chip"))
    return CostProfile(
        "brainscales2",
        "BrainScaleS-2-like analog spiking chip (Cramer 2022): chip power per emulated step.",
        costs,
    )


BRAINSCALES2 = brainscales2_profile()

PROFILES: dict[str, CostProfile] = {
    p.name: p for p in (ECRAM_POLYMER, ECRAM_ENODE, TAOX_MEMRISTOR, BRAINSCALES2)
}


def profile_names() -> list[str]:
    """Names of the preset profiles."""
    return sorted(PROFILES)


def get_profile(name: str) -> CostProfile:
    """The preset profile ``name``; an unknown name raises ConfigError listing the valid ones."""
    if name not in PROFILES:
        raise UnknownNameError("energy profile", name, PROFILES)
    return PROFILES[name]


def check_profile_kind(name: str, chip_kind: str) -> None:
    """Raise ConfigError unless ``name`` is a profile that prices ``chip_kind`` chips
    ("crossbar" or "spiking"): another kind's profile would price the run at 0 J."""
    profile = get_profile(name)
    if profile.chip_kind != chip_kind:
        fits = [n for n in profile_names() if PROFILES[n].chip_kind == chip_kind]
        raise ConfigError(
            f"energy profile {name} prices {profile.chip_kind} chips, so this {chip_kind} run "
            f"would cost 0 J; {chip_kind} profiles: {', '.join(fits)}"
        )


def profile_for_device(device: str | None, *, spiking: bool = False) -> str:
    """The default profile for a run on ``device`` (a device preset name).

    Spiking chips get ``brainscales2``; ``ecram-organic`` (van de Burgt's ENODe) gets
    ``ecram-enode``; other ECRAM, ideal and the Gokmen-Vlasov RPU presets get
    ``ecram-polymer``; filamentary and phase-change presets get ``taox-memristor``.
    """
    if spiking:
        return BRAINSCALES2.name
    name = device or ""
    if name == "ecram-organic":
        return ECRAM_ENODE.name
    if name.startswith("ecram") or name in ("ideal", "gokmen-vlasov", ""):
        return ECRAM_POLYMER.name
    return TAOX_MEMRISTOR.name
