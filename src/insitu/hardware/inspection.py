"""Inspection hook: the hidden state of a simulated chip, for tests, plots and reports only.

Algorithms must not import this module; a real chip has no such window.
"""

from __future__ import annotations

from torch import Tensor

from insitu.devices import DeviceArray
from insitu.hardware.tile import Tile


def true_weights(tile: Tile) -> Tensor:
    """Noise-free weights (I, out, in) implied by the true conductances."""
    return tile._weights().clone()


def conductances(tile: Tile) -> list[Tensor]:
    """True conductances: [G+, G-] for differential pairs, [G] for reference mode."""
    return [g.clone() for g in tile._g.unbind(0)]


def device_arrays(tile: Tile) -> list[DeviceArray]:
    """The per-device parameters drawn at fabrication."""
    return [DeviceArray(*(f[k] for f in tile._arrays)) for k in range(tile.devices_per_weight)]


def pulse_counts(tile: Tile) -> Tensor:
    """Cumulative programming pulses received per weight (I, out, in)."""
    return tile._pulses.clone()
