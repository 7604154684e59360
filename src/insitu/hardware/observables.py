"""What a spiking chip lets the host observe of one layer: the explicit set of measured signals.

Every signal is a tensor of the same layout as the model's value it stands for. ``membrane`` and
``spikes`` are what every spiking chip here records (:class:`insitu.hardware.spiking.Recording`);
``extra`` holds further named signals a chip may add (e.g. a synaptic current or an adaptation
variable, in its own units), which an in-the-loop rule injects where its model has a value of the
same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from torch import Tensor

__all__ = ["Observables"]

_NONE: Mapping[str, Tensor] = MappingProxyType({})


class Observables(NamedTuple):
    """One layer's observable signals.

    Attributes:
        membrane: membrane voltage before reset (voltage units; measured: as the ADC reports it).
        spikes: 0.0/1.0 spikes.
        extra: further named signals, each in the layout of the model value of that name.
    """

    membrane: Tensor
    spikes: Tensor
    extra: Mapping[str, Tensor] = _NONE
