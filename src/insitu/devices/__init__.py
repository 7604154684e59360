"""One memory element's physics: parameters, pulse response, noise, variation, drift.

Knows nothing of arrays or learning.
"""

from insitu.devices.fit import DeviceFit, fit_device
from insitu.devices.measurement import (
    Measurement,
    read_measurement,
    simulate_measurement,
    write_measurement,
)
from insitu.devices.params import DeviceParams, NoiseMode, ResponseModel
from insitu.devices.preset_file import read_preset, write_preset
from insitu.devices.presets import device_names, get_device
from insitu.devices.response import (
    DeviceArray,
    apply_pulses,
    apply_stuck,
    initial_conductance,
    nominal_device_array,
    quantize,
    read_conductance,
    relax,
    sample_device_array,
    step_size,
)

__all__ = [
    "DeviceArray",
    "DeviceFit",
    "DeviceParams",
    "Measurement",
    "NoiseMode",
    "ResponseModel",
    "apply_pulses",
    "apply_stuck",
    "device_names",
    "fit_device",
    "get_device",
    "initial_conductance",
    "nominal_device_array",
    "quantize",
    "read_conductance",
    "read_measurement",
    "read_preset",
    "relax",
    "sample_device_array",
    "simulate_measurement",
    "step_size",
    "write_measurement",
    "write_preset",
]
