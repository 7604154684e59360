"""Parameters of one memory element: how its conductance answers programming pulses.

Conductance is in the preset's own normalised unit (stated in each preset), so that a weight of
``g - g_ref`` (or ``g_plus - g_minus``) lives on the same scale as the step sizes.

The pulse response of every model is one family. A potentiating pulse at conductance ``g`` moves
it by ``dw_up * u**p`` with ``u = 1 - kappa_up * (g - g_ref)`` the step size relative to the step
at the reference point ``g_ref`` (depression mirrors it toward ``g_min``). ``kappa`` follows from
``slope``, the fractional loss of step size between ``g_ref`` and the bound:

========================  ======================  =========================================
model                     parameters              pulse response (conductance vs pulses)
========================  ======================  =========================================
``ideal``                 no noise, no variation  linear, exact (floating point reference)
``constant-step``         slope 0                 linear, hard bounds
``soft-bounds``           slope 1, p 1            exponential approach, step 0 at the bound
``linear-step``           0 < slope, p 1          exponential toward a saturation level
                                                  beyond the bound ("exponential step";
                                                  aihwkit's LinearStepDevice semantics)
``power-step``            slope > 0, p != 1       power-law saturation
========================  ======================  =========================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from insitu.devices.asymmetry import nominal_steps
from insitu.errors import ConfigError, UnknownNameError, check_range


class ResponseModel(StrEnum):
    """How the step size depends on the present conductance."""

    IDEAL = "ideal"
    CONSTANT_STEP = "constant-step"
    SOFT_BOUNDS = "soft-bounds"
    LINEAR_STEP = "linear-step"
    POWER_STEP = "power-step"


class NoiseMode(StrEnum):
    """Cycle-to-cycle noise of a step: relative to that step, or to the nominal step."""

    MULTIPLICATIVE = "multiplicative"
    ADDITIVE = "additive"


@dataclass(frozen=True)
class DeviceParams:
    """Nominal physics of one device kind, with its device-to-device spread.

    Attributes:
        name: preset name.
        model: the pulse response family (see module docstring).
        g_min, g_max: hard conductance bounds (normalised unit).
        g_ref: reference conductance: the symmetry point where the nominal steps apply, and the
            reference a single device is read against.
        dw_min: conductance change of one pulse at ``g_ref`` in the stronger direction
            (normalised unit).
        up_down: asymmetry, aihwkit's convention (:mod:`insitu.devices.asymmetry`): ``dw_min``
            is the stronger direction's step; ``up_down > 0`` makes down steps
            ``dw_min*(1-up_down)``, ``up_down < 0`` up steps ``dw_min*(1+up_down)``.
        slope_up, slope_down: fraction of the step lost between ``g_ref`` and the bound.
        exponent: ``p`` of the power-step model (1 for every other model).
        dw_min_std: cycle-to-cycle standard deviation of a step, relative (see ``noise_mode``).
        noise_mode: ``multiplicative`` (std relative to the step at that state) or ``additive``
            (std relative to ``dw_min`` whatever the state).
        n_states: number of distinct conductance levels between the bounds; None = continuous.
        read_noise: standard deviation of one read, relative to ``g_max - g_min``.
        abrupt_reset: depression is one abrupt RESET to ``g_min`` (phase-change memory).
        reset_std: spread of the RESET level, relative to ``g_max - g_min``.
        stuck_low, stuck_high: fraction of devices stuck at ``g_min`` / ``g_max``.
        drift_nu: power-law drift exponent, ``g(t) = g(t0) * (t/t0)**-nu`` (PCM).
        retention_tau: time constant (s) of relaxation toward ``g_ref``; None = no relaxation.
        dw_min_dtod: device-to-device std of ``dw_min``, relative.
        up_down_dtod: device-to-device std of the asymmetry, in units of ``dw_min``: added to
            a device's up step and taken from its down step.
        bounds_dtod: device-to-device std of each bound's distance from ``g_ref``, relative.
        slope_dtod: device-to-device std of the slopes, absolute.
        drift_nu_dtod: device-to-device std of ``drift_nu``, relative.
        pulse_width: programming pulse duration (s), for timing.
        source: where the numbers come from.
    """

    name: str
    model: ResponseModel
    g_min: float = 0.0
    g_max: float = 1.0
    g_ref: float = 0.5
    dw_min: float = 0.001
    up_down: float = 0.0
    slope_up: float = 0.0
    slope_down: float = 0.0
    exponent: float = 1.0
    dw_min_std: float = 0.0
    noise_mode: NoiseMode = NoiseMode.MULTIPLICATIVE
    n_states: int | None = None
    read_noise: float = 0.0
    abrupt_reset: bool = False
    reset_std: float = 0.0
    stuck_low: float = 0.0
    stuck_high: float = 0.0
    drift_nu: float = 0.0
    retention_tau: float | None = None
    dw_min_dtod: float = 0.0
    up_down_dtod: float = 0.0
    bounds_dtod: float = 0.0
    slope_dtod: float = 0.0
    drift_nu_dtod: float = 0.0
    pulse_width: float = 1e-7
    source: str = ""

    def __post_init__(self) -> None:
        for attr, enum in (("model", ResponseModel), ("noise_mode", NoiseMode)):
            try:
                object.__setattr__(self, attr, enum(getattr(self, attr)))
            except ValueError:
                kind = f"device {attr.replace('_', ' ')}"
                raise UnknownNameError(kind, str(getattr(self, attr)), list(enum)) from None
        self.validate()

    @property
    def g_range(self) -> float:
        """Full conductance swing ``g_max - g_min``."""
        return self.g_max - self.g_min

    @property
    def kappa_up(self) -> float:
        """Relative step loss per unit conductance above ``g_ref``."""
        return self.slope_up / (self.g_max - self.g_ref)

    @property
    def kappa_down(self) -> float:
        """Relative step loss per unit conductance below ``g_ref``."""
        return self.slope_down / (self.g_ref - self.g_min)

    @property
    def states(self) -> float:
        """Approximate number of nominal steps between the bounds."""
        return self.g_range / self.dw_min

    def validate(self) -> None:
        """Raise ConfigError naming the first out-of-range parameter."""
        p = f"device {self.name!r}:"
        if not self.g_min < self.g_ref < self.g_max:
            raise ConfigError(
                f"{p} need g_min < g_ref < g_max, got {self.g_min}, {self.g_ref}, {self.g_max}"
            )
        check_range(f"{p} dw_min", self.dw_min, low=0.0, high=self.g_range, low_open=True)
        check_range(f"{p} up_down", self.up_down, low=-1.0, high=1.0, low_open=True, high_open=True)
        for field in ("slope_up", "slope_down", "dw_min_std", "read_noise", "reset_std"):
            check_range(f"{p} {field}", getattr(self, field), low=0.0)
        check_range(f"{p} exponent", self.exponent, low=0.0, high=10.0)
        for field in ("stuck_low", "stuck_high"):
            check_range(f"{p} {field}", getattr(self, field), low=0.0, high=1.0)
        check_range(f"{p} stuck_low + stuck_high", self.stuck_low + self.stuck_high, high=1.0)
        check_range(f"{p} drift_nu", self.drift_nu, low=0.0, high=1.0)
        if self.retention_tau is not None:
            check_range(f"{p} retention_tau", self.retention_tau, low=0.0, low_open=True)
        for field in ("dw_min_dtod", "up_down_dtod", "bounds_dtod", "slope_dtod", "drift_nu_dtod"):
            check_range(f"{p} {field}", getattr(self, field), low=0.0, high=2.0)
        check_range(f"{p} pulse_width", self.pulse_width, low=0.0, low_open=True)
        if self.n_states is not None and self.n_states < 2:
            raise ConfigError(f"{p} n_states = {self.n_states}; need at least 2 (or None)")
        steps = nominal_steps(self.dw_min, self.up_down)
        for direction, kappa, step in zip(
            ("up", "down"), (self.kappa_up, self.kappa_down), steps, strict=True
        ):
            if kappa * step >= 1.0:
                raise ConfigError(
                    f"{p} slope_{direction} too steep for dw_min: one pulse would overshoot "
                    f"the saturation level (kappa*dw = {kappa * step:.3g}, need < 1)"
                )
        self._validate_model(p)

    def _validate_model(self, p: str) -> None:
        m = self.model
        if m is ResponseModel.IDEAL:
            bad = [
                f"{f} = {getattr(self, f)}"
                for f in ("dw_min_std", "read_noise", "slope_up", "slope_down", "up_down")
                if getattr(self, f)
            ]
            if bad:
                raise ConfigError(
                    f"{p} the ideal model has no noise, slope or asymmetry; got {', '.join(bad)}"
                )
        if m is ResponseModel.CONSTANT_STEP and (self.slope_up or self.slope_down):
            raise ConfigError(f"{p} constant-step needs slope_up = slope_down = 0")
        if m is ResponseModel.SOFT_BOUNDS and (
            self.slope_up != 1.0 or self.slope_down != 1.0 or self.exponent != 1.0
        ):
            raise ConfigError(f"{p} soft-bounds needs slope_up = slope_down = 1, exponent 1")
        if m is not ResponseModel.POWER_STEP and self.exponent != 1.0:
            raise ConfigError(f"{p} exponent != 1 needs model power-step")
        if m is ResponseModel.POWER_STEP and (
            self.exponent == 1.0 or self.slope_up <= 0 or self.slope_down <= 0
        ):
            raise ConfigError(f"{p} power-step needs exponent != 1 and positive slopes")

    def replace(self, **changes: Any) -> DeviceParams:
        """A copy with ``changes`` applied (validated); unknown fields raise ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"unknown device parameter(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **changes)

    def with_variation(self, sigma: float) -> DeviceParams:
        """Set every relative device-to-device spread to ``sigma`` (e.g. 0.1 for 10%)."""
        check_range("variation", sigma, low=0.0, high=2.0)
        return self.replace(
            dw_min_dtod=sigma,
            bounds_dtod=sigma,
            up_down_dtod=sigma * 0.1,
            slope_dtod=sigma * max(self.slope_up, self.slope_down) if self.slope_up else 0.0,
            drift_nu_dtod=sigma if self.drift_nu else 0.0,
        )
