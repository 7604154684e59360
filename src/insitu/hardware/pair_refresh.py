"""Writing and refreshing one-sided device pairs: RESET both devices, SET the weight back.

I. Boybat, M. Le Gallo, S. R. Nandakumar, T. Moraitis, T. Parnell, T. Tuma, B. Rajendran,
Y. Leblebici, A. Sebastian and E. Eleftheriou, "Neuromorphic computing with multi-memristive
synapses", Nat. Commun. 9, 2514 (2018); the same refresh serves the mixed-precision training
of Nandakumar et al., Front. Neurosci. 14, 406 (2020).

A differential pair of devices that can only be potentiated gradually (phase-change memory:
SET in steps, RESET abrupt) moves its weight by potentiating one device or the other, so both
climb until one saturates and the weight can no longer move that way. Every ``refresh_every``
updates every device is read; a pair with a device above ``refresh_level`` of its range is
RESET and its read weight written back onto one device by write-verify (each verify reads the
whole tile: counted). Only pairs whose lower device is above ``refresh_floor`` are refreshed:
a pair with one device near RESET is already as compact as a refresh can make it, and
rewriting it would only spend pulses and add write error.

The write-back counts its pulses by the datasheet step at each device's read conductance
(the nominal response, as a controller knows it), so a saturating SET is not overdriven just
after RESET, where its steps are largest. A correction is pulsed only where at least half a
step fits the error, since every overshoot can only be undone by SETting the other device.
On ``pcm`` digits (benchmarks/RESULTS.md) the fixed-gain write-verify this replaced left mixed
precision 2.2 points below software; with this write-back and the floor, 0.7 points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.devices import nominal_device_array, step_size
from insitu.hardware.events import Event
from insitu.hardware.tile import Tile
from insitu.hardware.tile_config import ProgramResult, program_result

_SMALLEST_STEP = 1e-9  # a saturated device's datasheet step, floored: its count hits the cap


def write_pairs(
    tile: Tile, target: Tensor, only: Tensor, rounds: int = 5, tolerance: float | None = None
) -> ProgramResult:
    """RESET the pairs of ``tile`` flagged in ``only`` (I, out, in) and write ``target``
    (I, out, in) onto them: at most ``rounds`` write-verify rounds, each reading every device
    and pulsing the device that moves the weight toward its target by the nearest whole
    number of its datasheet steps (at most ``max_pulses``; a nearly saturated device, whose
    step is tiny, takes that many). The result reports the weights within ``tolerance``
    (default: one nominal weight step)."""
    tile.reset(only)
    dev, scale = tile.config.device, tile.config.weight_scale
    nominal = nominal_device_array(dev, (1,))
    cap = tile.config.update.max_pulses
    iterations = 0
    while True:
        reads = tile.measure_devices()
        err = target - scale * (reads[0] - reads[1])
        if iterations == rounds:
            break
        # G+ raises the weight, G- lowers it; each only by SET steps.
        g = torch.where(err > 0, reads[0], reads[1])
        step = scale * step_size(dev, nominal, g, up=True).clamp(min=_SMALLEST_STEP)
        n = torch.round(err.abs() / step).clamp(max=cap) * only
        if not bool(n.any()):
            break
        iterations += 1
        tile.log.add(Event.PROGRAM_ITERATION, tile.instances)
        tile.pulse(n * err.sign())
    tol = tile.config.weight_step if tolerance is None else tolerance
    return program_result(iterations, err[only], tol)


def refresh_pairs(tile: Tile, level: float, floor: float, rounds: int = 5) -> int:
    """Refresh the pairs of ``tile`` with a device above ``level`` and the other above
    ``floor`` of the device range (:func:`write_pairs` of the read weight). The number of
    weights refreshed (all instances)."""
    reads = tile.measure_devices()  # (2, I, out, in)
    dev = tile.config.device
    high = (reads >= dev.g_min + level * dev.g_range).any(0)
    full = reads.amin(0) >= dev.g_min + floor * dev.g_range
    due = high & full
    count = int(due.sum())
    if count:
        w = tile.config.weight_scale * (reads[0] - reads[1])
        write_pairs(tile, w, due, rounds)
    return count
