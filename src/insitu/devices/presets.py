"""Named device presets. Each cites where its numbers come from; assumptions are marked.

Units: each preset states what one unit of conductance is. Presets derived from aihwkit's
fits keep aihwkit's weight unit, with ``g_ref`` at the symmetry point so that ``g - g_ref`` spans
aihwkit's ``[w_min, w_max]``.
"""

from __future__ import annotations

from pathlib import Path

from insitu.devices.params import DeviceParams, NoiseMode, ResponseModel
from insitu.devices.preset_file import is_preset_path, read_preset
from insitu.errors import UnknownNameError

_PRESETS: dict[str, DeviceParams] = {}


def _register(params: DeviceParams) -> DeviceParams:
    _PRESETS[params.name] = params
    return params


IDEAL = _register(
    DeviceParams(
        name="ideal",
        model=ResponseModel.IDEAL,
        g_min=0.0,
        g_max=2.0,
        g_ref=1.0,
        dw_min=1e-4,
        source="Floating-point reference: exact, linear, noise-free steps of 1e-4 over [0, 2] "
        "(20,000 steps), so that analog-sgd on it approximates float SGD.",
    )
)

ECRAM_ORGANIC = _register(
    DeviceParams(
        name="ecram-organic",
        model=ResponseModel.LINEAR_STEP,
        g_min=0.0,
        g_max=1.0,
        g_ref=0.5,
        dw_min=1.0 / 500,
        slope_up=0.05,
        slope_down=0.05,
        dw_min_std=0.1,
        n_states=500,
        read_noise=0.001,
        dw_min_dtod=0.05,
        bounds_dtod=0.02,
        retention_tau=25 * 3600.0,
        pulse_width=1e-7,
        source="PEDOT:PSS electrochemical neuromorphic organic device (ENODe), van de Burgt et "
        "al., Nature Materials 16, 414 (2017): >500 distinct, nearly linear and symmetric "
        "conductance states (here 500 over the unit range) with small switching noise; "
        "state retention of hours (tau = 25 h assumed). Step noise 10%, 5% step and 2% "
        "range device-to-device spread and 0.1% read noise are assumptions.",
    )
)

ECRAM_LIWO3 = _register(
    DeviceParams(
        name="ecram-liwo3",
        model=ResponseModel.LINEAR_STEP,
        g_min=0.0,
        g_max=2.0,
        g_ref=0.8276,
        dw_min=0.002,
        up_down=0.0,
        slope_up=0.1153,
        slope_down=0.5085,
        dw_min_std=0.3,
        noise_mode=NoiseMode.MULTIPLICATIVE,
        dw_min_dtod=0.1,
        up_down_dtod=0.01,
        bounds_dtod=0.05,
        slope_dtod=0.05,
        pulse_width=5e-9,
        source="Li-ion/WO3 ECRAM, Tang et al., IEDM 2018 (doi:10.1109/IEDM.2018.8614551), as "
        "fitted by aihwkit's EcRamPresetDevice (linear step, range shifted so the symmetry "
        "point is 0: w in [-0.8276, 1.1724], dw_min 0.002, gamma_up 0.1153, gamma_down 0.5085, "
        "multiplicative step noise 0.3, dtod: dw 0.1, up_down 0.01, bounds 0.05, gamma 0.05). "
        "Unit: aihwkit's weight unit. 5 ns pulses as reported by Tang et al.",
    )
)

ECRAM_MO = _register(
    DeviceParams(
        name="ecram-mo",
        model=ResponseModel.LINEAR_STEP,
        g_min=0.0,
        g_max=2.0,
        g_ref=0.8286,
        dw_min=2.8214e-4,
        up_down=0.0,
        slope_up=0.4152,
        slope_down=0.7342,
        dw_min_std=2.0,
        noise_mode=NoiseMode.MULTIPLICATIVE,
        dw_min_dtod=0.1,
        up_down_dtod=0.01,
        bounds_dtod=0.05,
        slope_dtod=0.05,
        pulse_width=1e-6,
        source="Metal-oxide (CMO/HfOx) ECRAM, Kim et al., IEDM 2019 "
        "(doi:10.1109/IEDM19573.2019.8993463), as fitted by aihwkit's EcRamMOPresetDevice "
        "(w in [-0.8286, 1.1714], dw_min 2.8214e-4, gamma_up 0.4152, gamma_down 0.7342, "
        "multiplicative step noise 2.0, dtod as the Li/WO3 fit). Unit: aihwkit's weight unit. "
        "Pulse width 1 us is an assumption.",
    )
)

RERAM_TAOX = _register(
    DeviceParams(
        name="reram-taox",
        model=ResponseModel.LINEAR_STEP,
        g_min=0.0,
        g_max=1.0,
        g_ref=0.5,
        dw_min=1.0 / 40,
        up_down=0.26,
        slope_up=0.8,
        slope_down=0.9,
        dw_min_std=0.5,
        noise_mode=NoiseMode.MULTIPLICATIVE,
        read_noise=0.01,
        stuck_low=0.005,
        stuck_high=0.005,
        dw_min_dtod=0.2,
        up_down_dtod=0.05,
        bounds_dtod=0.1,
        slope_dtod=0.05,
        pulse_width=1e-7,
        source="Ta/TaOx and HfOx ReRAM: strongly nonlinear, asymmetric pulse response with tens of "
        "states and large cycle noise. Up/down asymmetry 0.26 (aihwkit's convention, as there: "
        "up steps dw_min, down steps 0.74 dw_min), its dtod 0.05 and dtod of the step (0.2) "
        "from the fit of Gong et al., Nat. Commun. 9, 2102 (2018) used in aihwkit's "
        "ReRamESPresetDevice (up_down 0.259359); 40 up steps across the range; 1% stuck devices"
        " and 1% read noise after Li et al., Nat. Commun. 9, 2385 (2018) (Ta/HfO2 1T1R arrays, "
        "99.8% yield, ~1% read fluctuation); unit = the 1T1R conductance window (about 100 uS)."
        " Slopes 0.8/0.9 and 50% step noise are assumptions.",
    )
)

RERAM_9_STATES = _register(
    RERAM_TAOX.replace(
        name="reram-9-states",
        dw_min=1.0 / 8,
        n_states=9,
        source="reram-taox with only 9 conductance levels (8 full steps across the range): the "
        "few-state ReRAM of Li et al., arXiv 2510.02516 (2025), who note that many ReRAM "
        "devices offer only about 4-bit resolution and train on 4-10 states. Every other "
        "number as reram-taox (Gong et al., Nat. Commun. 9, 2102, 2018; Li et al., Nat. "
        "Commun. 9, 2385, 2018); the level count is the assumption of this preset.",
    )
)

PCM = _register(
    DeviceParams(
        name="pcm",
        model=ResponseModel.POWER_STEP,
        g_min=0.0,
        g_max=1.0,
        g_ref=0.5,
        dw_min=0.04,
        slope_up=1.0,
        slope_down=1.0,
        exponent=2.0,
        dw_min_std=0.6,
        noise_mode=NoiseMode.MULTIPLICATIVE,
        read_noise=0.02,
        abrupt_reset=True,
        reset_std=0.02,
        drift_nu=0.05,
        drift_nu_dtod=0.4,
        dw_min_dtod=0.3,
        bounds_dtod=0.1,
        pulse_width=5e-8,
        source="Phase-change memory (GST mushroom cells): gradual, saturating SET of ~1 uS "
        "per pulse over a ~25 uS window (dw 0.04 of the range) with large stochastic spread, "
        "abrupt RESET, 1/f read noise and conductance drift nu ~ 0.05; after Boybat et al., "
        "Nat. Commun. 9, 2514 (2018) and Ambrogio et al., Nature 558, 60 (2018). Unit = 25 uS. "
        "Exponent 2 of the SET saturation and the spreads are assumptions.",
    )
)

GOKMEN_VLASOV = _register(
    DeviceParams(
        name="gokmen-vlasov",
        model=ResponseModel.CONSTANT_STEP,
        g_min=0.0,
        g_max=2.0,
        g_ref=1.0,
        dw_min=0.0016,
        dw_min_std=0.3,
        noise_mode=NoiseMode.MULTIPLICATIVE,
        dw_min_dtod=0.3,
        up_down_dtod=0.01,
        bounds_dtod=0.3,
        pulse_width=1e-9,
        source="Resistive processing unit specification of Gokmen & Vlasov, Front. Neurosci. "
        "10, 333 (2016): constant step, ~1200 states over [-1, 1], 30% cycle and device "
        "spread of the step, 30% spread of the bounds (aihwkit's GokmenVlasovPresetDevice).",
    )
)

SOFT_BOUNDS = _register(
    DeviceParams(
        name="reram-soft-bounds",
        model=ResponseModel.SOFT_BOUNDS,
        g_min=0.0,
        g_max=2.0,
        g_ref=0.75,
        dw_min=0.002,
        slope_up=1.0,
        slope_down=1.0,
        dw_min_std=3.75,
        noise_mode=NoiseMode.ADDITIVE,
        dw_min_dtod=0.3,
        up_down_dtod=0.01,
        bounds_dtod=0.3,
        source="Soft-bounds fit to the ReRAM of Gong et al., Nat. Commun. 9, 2102 (2018), as in "
        "aihwkit's ReRamSBPresetDevice (w in [-0.75, 1.25], dw_min 0.002, additive step "
        "noise 3.75 dw_min, dtod 0.3).",
    )
)


def device_names() -> list[str]:
    """Names of every preset."""
    return sorted(_PRESETS)


def get_device(name: str | Path) -> DeviceParams:
    """The preset called ``name``, or read from a preset file (a ``.yaml``/``.yml`` path, see
    :mod:`insitu.devices.preset_file`); an unknown name lists the valid ones."""
    if is_preset_path(name):
        return read_preset(name)
    name = str(name)
    try:
        return _PRESETS[name]
    except KeyError:
        raise UnknownNameError("device preset", name, _PRESETS) from None
