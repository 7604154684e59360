"""Inspection hook: the hidden state of a simulated chip, for tests, plots and reports only.

Algorithms must not import this module; a real chip has no such window.
"""

from __future__ import annotations

from torch import Tensor

from insitu.devices import DeviceArray
from insitu.hardware.spiking import NeuronArray, SpikingChip
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


def neuron_parameters(chip: SpikingChip) -> list[NeuronArray]:
    """Per layer, every neuron's parameters as drawn at fabrication, each (I, neurons)."""
    return [NeuronArray(*(f.clone() for f in nrn)) for nrn in chip._neurons]


def spiking_weights(chip: SpikingChip) -> list[Tensor]:
    """Per layer, the stored feed-forward integer weights (I, out, in), int8."""
    return [w.clone() for w in chip._w]


def recurrent_weights(chip: SpikingChip) -> list[Tensor | None]:
    """Per layer, the stored recurrent integer weights (I, n, n), int8; None if not recurrent."""
    return [None if w is None else w.clone() for w in chip._w_rec]
