"""The neurons of a spiking analog chip: nominal LIF parameters and their fabrication spread.

The parameter set follows the analog LIF neurons of BrainScaleS-2 as modelled by Cramer et al.,
PNAS 119, e2109194119 (2022): time constants, threshold and leak carry fixed-pattern mismatch
drawn once per chip instance (:func:`sample_neurons`), the membrane carries temporal noise and is
read by an ADC. The dynamics that use them are in :mod:`insitu.hardware.lif`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from insitu.errors import ConfigError, check_range

__all__ = ["IDEAL_NEURON", "NeuronArray", "NeuronParams", "sample_neurons"]

_RELATIVE_SIGMAS = ("sigma_tau_m", "sigma_tau_s", "sigma_threshold", "sigma_leak", "sigma_gain")


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{name} = {value!r} is out of range; expected a finite number")


@dataclass(frozen=True)
class NeuronParams:
    """Nominal LIF neuron, its fabrication spread and its membrane ADC, in model units.

    Voltages are normalised as in the paper's software model (threshold 1, leak and reset 0);
    time is counted in steps of ``dt_seconds``. The defaults are illustrative values for an
    uncalibrated chip of this kind, not measurements from the paper.

    Attributes:
        tau_m: membrane time constant (steps; ``inf`` = no leak).
        tau_s: synaptic current time constant (steps).
        threshold: spike threshold (voltage units).
        leak: leak (resting) potential the membrane decays toward.
        reset: potential after a spike; must lie below ``threshold``.
        refractory_steps: steps the membrane is held at ``reset`` after a spike.
        synapse_gain: synaptic current (voltage units per step) added by one spike through a
            weight of 1; a full-scale weight (63) adds ``63 * synapse_gain``.
        sigma_tau_m, sigma_tau_s, sigma_gain: neuron-to-neuron standard deviation, relative to
            the nominal value (time constants are kept above 5% of nominal, gains above 0).
        sigma_threshold, sigma_leak: neuron-to-neuron standard deviation of the threshold and
            the leak potential, in units of ``threshold - leak`` (absolute for the leak).
        membrane_noise: standard deviation of the temporal noise added to every membrane every
            step (voltage units), drawn anew on every run.
        dead_fraction: fraction of spiking neurons that never spike (broken comparators).
        adc_bits: membrane ADC resolution: ``2**adc_bits`` codes; None = ideal (no
            quantisation or clipping).
        adc_range: membrane voltages mapped to the lowest and highest code; beyond it the ADC
            saturates.
        dt_seconds: hardware time of one step (the ADC sample period, ~1.7 us in the paper),
            for time accounting only.
    """

    tau_m: float = 3.5
    tau_s: float = 3.5
    threshold: float = 1.0
    leak: float = 0.0
    reset: float = 0.0
    refractory_steps: int = 1
    synapse_gain: float = 0.005
    sigma_tau_m: float = 0.1
    sigma_tau_s: float = 0.1
    sigma_threshold: float = 0.05
    sigma_leak: float = 0.05
    sigma_gain: float = 0.1
    membrane_noise: float = 0.02
    dead_fraction: float = 0.0
    adc_bits: int | None = 8
    adc_range: tuple[float, float] = (-1.0, 2.0)
    dt_seconds: float = 1.7e-6

    def __post_init__(self) -> None:
        object.__setattr__(self, "adc_range", tuple(float(v) for v in self.adc_range))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first out-of-range field."""
        check_range("tau_m", self.tau_m, low=0.0, low_open=True)
        check_range("tau_s", self.tau_s, low=0.0, low_open=True)
        for name in ("threshold", "leak", "reset"):
            _check_finite(name, getattr(self, name))
        check_range("threshold - leak", self.threshold - self.leak, low=0.0, low_open=True)
        check_range("threshold - reset", self.threshold - self.reset, low=0.0, low_open=True)
        if int(self.refractory_steps) != self.refractory_steps:
            raise ConfigError(f"refractory_steps = {self.refractory_steps!r}; need an integer")
        check_range("refractory_steps", self.refractory_steps, low=0, high=10_000)
        check_range("synapse_gain", self.synapse_gain, low=0.0, high=1e6, low_open=True)
        for name in _RELATIVE_SIGMAS:
            check_range(name, getattr(self, name), low=0.0, high=2.0)
        check_range("membrane_noise", self.membrane_noise, low=0.0, high=1e3)
        check_range("dead_fraction", self.dead_fraction, low=0.0, high=1.0)
        if self.adc_bits is not None and (
            int(self.adc_bits) != self.adc_bits or not 1 <= self.adc_bits <= 16
        ):
            raise ConfigError(f"adc_bits = {self.adc_bits!r}; need 1 to 16 (or None for ideal)")
        if len(self.adc_range) != 2:
            raise ConfigError(f"adc_range = {self.adc_range!r}; need (low, high)")
        lo, hi = self.adc_range
        _check_finite("adc_range low", lo)
        _check_finite("adc_range high", hi)
        check_range("adc_range high - low", hi - lo, low=0.0, low_open=True)
        check_range("dt_seconds", self.dt_seconds, low=0.0, high=1.0, low_open=True)

    def replace(self, **changes: Any) -> NeuronParams:
        """A copy with ``changes`` applied (validated); unknown fields raise ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown neuron parameter(s) {unknown}; valid: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def with_mismatch(self, sigma: float) -> NeuronParams:
        """Every fixed-pattern sigma (tau_m, tau_s, threshold, leak, gain) set to ``sigma``.

        The paper's sigma_d sweep; temporal noise and dead neurons are left as they are.
        """
        return self.replace(**dict.fromkeys(_RELATIVE_SIGMAS, sigma))


IDEAL_NEURON = NeuronParams(
    sigma_tau_m=0.0,
    sigma_tau_s=0.0,
    sigma_threshold=0.0,
    sigma_leak=0.0,
    sigma_gain=0.0,
    membrane_noise=0.0,
    adc_bits=None,
)
"""The nominal neuron: no mismatch, no temporal noise, no dead neurons, an ideal ADC."""


class NeuronArray(NamedTuple):
    """The parameters drawn at fabrication for a layer of neurons, each (instances, neurons)."""

    # Fields spelled torch.Tensor: the API reference (pdoc) resolves a NamedTuple's generated
    # __new__ annotations without this module's names.
    tau_m: torch.Tensor  # membrane time constant (steps)
    tau_s: torch.Tensor  # synaptic time constant (steps)
    threshold: torch.Tensor
    leak: torch.Tensor
    gain: torch.Tensor  # synapse_gain of the neuron's synapses
    alive: torch.Tensor  # bool: False for dead neurons (never spike)


def sample_neurons(
    params: NeuronParams,
    shape: tuple[int, int],
    gen: torch.Generator,
    device: torch.device,
    spiking: bool = True,
) -> NeuronArray:
    """Draw the fixed-pattern mismatch of ``shape = (instances, neurons)`` neurons.

    The standard normal draws do not depend on the sigmas, so a sigma sweep at one seed scales
    one fixed pattern; every sigma at 0 gives the nominal values exactly.
    """
    p = params
    xi = torch.randn((5, *shape), generator=gen, device=device)
    u = torch.rand(shape, generator=gen, device=device)
    span = p.threshold - p.leak

    def relative(nominal: float, sigma: float, z: Tensor, floor: float) -> Tensor:
        return nominal * (1.0 + sigma * z).clamp(min=floor)

    return NeuronArray(
        tau_m=relative(p.tau_m, p.sigma_tau_m, xi[0], 0.05),
        tau_s=relative(p.tau_s, p.sigma_tau_s, xi[1], 0.05),
        threshold=p.threshold + p.sigma_threshold * span * xi[2],
        leak=p.leak + p.sigma_leak * span * xi[3],
        gain=relative(p.synapse_gain, p.sigma_gain, xi[4], 0.0),
        alive=(u >= p.dead_fraction) if spiking else torch.ones_like(u, dtype=torch.bool),
    )
