"""Refresh of one-sided device pairs: read both devices, RESET them, write the difference back.

I. Boybat, M. Le Gallo, S. R. Nandakumar, T. Moraitis, T. Parnell, T. Tuma, B. Rajendran,
Y. Leblebici, A. Sebastian and E. Eleftheriou, "Neuromorphic computing with multi-memristive
synapses", Nat. Commun. 9, 2514 (2018); the same refresh serves the mixed-precision training
of Nandakumar et al., Front. Neurosci. 14, 406 (2020).

A differential pair of devices that can only be potentiated gradually (phase-change memory:
SET in steps, RESET abrupt) moves its weight by potentiating one device or the other, so both
climb until one saturates and the weight can no longer move that way. Every ``refresh_every``
updates every device is read; the pairs where a device is above ``refresh_level`` of its range
are RESET and the read weight is written back onto one device by write-verify (each verify
reads the whole tile: counted).
"""

from __future__ import annotations

import torch

from insitu.devices import DeviceParams, nominal_device_array, step_size
from insitu.hardware.tile import Tile


def reset_gain(params: DeviceParams) -> float:
    """The nominal step over the step of a device just RESET (its datasheet response at
    ``g_min``): the share of the error a write-verify round after a RESET should pulse."""
    array = nominal_device_array(params, (1,))
    g_min = torch.full((1,), params.g_min)
    return float(params.dw_min / step_size(params, array, g_min, up=True).clamp(min=1e-12))


def refresh_pairs(tile: Tile, level: float, iterations: int = 5) -> int:
    """Refresh the pairs of ``tile`` with a device above ``level`` of the device range:
    RESET both, then write-verify the read weight back (at most ``iterations`` rounds, each
    pulsing :func:`reset_gain` of the error). The number of weights refreshed (all
    instances)."""
    reads = tile.measure_devices()  # (2, I, out, in)
    dev = tile.config.device
    due = (reads >= dev.g_min + level * dev.g_range).any(0)
    count = int(due.sum())
    if count:
        tile.reset(due)
        w = tile.config.weight_scale * (reads[0] - reads[1])
        gain = min(1.0, reset_gain(dev))
        tile.program(w, max_iterations=iterations, only=due, gain=gain)
    return count
