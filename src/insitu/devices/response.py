"""Pure tensor functions of device physics: variation draws, pulses, reads, drift.

Every function takes the nominal :class:`DeviceParams`, a :class:`DeviceArray` of per-device
parameters drawn once per chip instance, and conductance tensors of any shape (a leading
``instances`` dimension included). Randomness comes only from the generator passed in.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from insitu.devices.asymmetry import directional_steps, nominal_steps
from insitu.devices.params import DeviceParams, NoiseMode

# Below this relative step loss a linear-step device is treated as constant-step (the closed
# form divides by it).
TINY = 1e-7


class DeviceArray(NamedTuple):
    """Per-device parameters after device-to-device variation (same shape as the array).

    Conductance-valued fields are in the preset's normalised unit.
    """

    # Fields spelled torch.Tensor: the API reference (pdoc) resolves a NamedTuple's generated
    # __new__ annotations without this module's names.
    dw_up: torch.Tensor  # step of one potentiating pulse at g_ref
    dw_down: torch.Tensor  # step of one depressing pulse at g_ref
    kappa_up: torch.Tensor  # relative step loss per unit conductance above g_ref
    kappa_down: torch.Tensor  # likewise below g_ref
    g_min: torch.Tensor  # hard lower bound
    g_max: torch.Tensor  # hard upper bound
    stuck: torch.Tensor  # int8: 0 working, -1 stuck at g_min, +1 stuck at g_max
    drift_nu: torch.Tensor  # drift exponent


def _normal(shape: torch.Size, gen: torch.Generator, device: torch.device) -> Tensor:
    return torch.randn(shape, generator=gen, device=device)


def sample_device_array(
    params: DeviceParams,
    shape: tuple[int, ...] | torch.Size,
    gen: torch.Generator,
    device: torch.device | str = "cpu",
) -> DeviceArray:
    """Draw the fabrication-time spread of every parameter for an array of ``shape`` devices."""
    dev = torch.device(device)
    size = torch.Size(shape)
    p = params
    gain = (1 + p.dw_min_dtod * _normal(size, gen, dev)).clamp(min=0.05)
    spread = p.up_down_dtod * _normal(size, gen, dev)
    g_max = p.g_ref + (p.g_max - p.g_ref) * (1 + p.bounds_dtod * _normal(size, gen, dev))
    g_min = p.g_ref - (p.g_ref - p.g_min) * (1 + p.bounds_dtod * _normal(size, gen, dev))
    # A bound can not cross the reference: keep at least 5% of the nominal distance.
    g_max = torch.maximum(g_max, torch.full_like(g_max, p.g_ref + 0.05 * (p.g_max - p.g_ref)))
    g_min = torch.minimum(g_min, torch.full_like(g_min, p.g_ref - 0.05 * (p.g_ref - p.g_min)))
    slope_up = (p.slope_up + p.slope_dtod * _normal(size, gen, dev)).clamp(min=0.0)
    slope_down = (p.slope_down + p.slope_dtod * _normal(size, gen, dev)).clamp(min=0.0)
    if p.slope_up == 0.0:
        slope_up = torch.zeros_like(slope_up)
    if p.slope_down == 0.0:
        slope_down = torch.zeros_like(slope_down)
    dw_up, dw_down = directional_steps(p.dw_min, p.up_down, gain, spread)
    # A spread never flips or stops a step: keep at least 5% of the nominal one (aihwkit
    # reflects a negative step instead).
    nominal_up, nominal_down = nominal_steps(p.dw_min, p.up_down)
    dw_up = dw_up.clamp(min=0.05 * nominal_up)
    dw_down = dw_down.clamp(min=0.05 * nominal_down)
    # The slope is the step lost between g_ref and this device's own bound (soft bounds reach
    # step 0 exactly at it). Cap kappa*dw below 1 so one pulse never overshoots saturation.
    kappa_up = torch.minimum(slope_up / (g_max - p.g_ref), 0.5 / dw_up)
    kappa_down = torch.minimum(slope_down / (p.g_ref - g_min), 0.5 / dw_down)
    u = torch.rand(size, generator=gen, device=dev)
    stuck = torch.zeros(size, dtype=torch.int8, device=dev)
    stuck[u < p.stuck_low] = -1
    stuck[(u >= p.stuck_low) & (u < p.stuck_low + p.stuck_high)] = 1
    nu = (p.drift_nu * (1 + p.drift_nu_dtod * _normal(size, gen, dev))).clamp(min=0.0)
    return DeviceArray(dw_up, dw_down, kappa_up, kappa_down, g_min, g_max, stuck, nu)


def nominal_device_array(params: DeviceParams, shape: tuple[int, ...]) -> DeviceArray:
    """A DeviceArray without variation: every device at its nominal parameters."""
    zero_gen = torch.Generator().manual_seed(0)
    return sample_device_array(
        params.replace(
            dw_min_dtod=0.0,
            up_down_dtod=0.0,
            bounds_dtod=0.0,
            slope_dtod=0.0,
            drift_nu_dtod=0.0,
            stuck_low=0.0,
            stuck_high=0.0,
        ),
        shape,
        zero_gen,
    )


def initial_conductance(params: DeviceParams, array: DeviceArray) -> Tensor:
    """Conductance after fabrication: working devices at ``g_ref``, stuck ones at their bound."""
    g = torch.full_like(array.g_max, params.g_ref)
    return apply_stuck(array, g)


def apply_stuck(array: DeviceArray, g: Tensor) -> Tensor:
    """Force stuck devices to the bound they are stuck at."""
    g = torch.where(array.stuck < 0, array.g_min, g)
    return torch.where(array.stuck > 0, array.g_max, g)


def step_size(params: DeviceParams, array: DeviceArray, g: Tensor, up: bool) -> Tensor:
    """Nominal (noise-free) conductance change of one pulse at conductance ``g``."""
    if up:
        u = (1 - array.kappa_up * (g - params.g_ref)).clamp(min=0.0)
        return array.dw_up * u.pow(params.exponent)
    u = (1 - array.kappa_down * (params.g_ref - g)).clamp(min=0.0)
    return array.dw_down * u.pow(params.exponent)


def linear_constants(
    params: DeviceParams, dw: Tensor, kappa: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-device constants of the exponent-1 closed form for one pulse direction.

    Returns ``(a, linear, log_q, log_r)``: the relative step loss per pulse ``a = kappa*dw``
    (1 where the device is treated as constant-step), the constant-step mask, ``log(1 - a)``
    and ``log(1 + a^2 sigma^2 / (1 - a)^2)`` (the per-step growth of the multiplicative noise).
    They depend on the device only, so a tile computes them once, not per update.
    """
    sigma2 = params.dw_min_std**2
    a = kappa * dw
    linear = a < TINY
    a_safe = torch.where(linear, torch.ones_like(a), a)
    log_q = torch.log1p(-a_safe)
    q2 = torch.exp(2 * log_q)
    log_r = torch.log1p(a_safe * a_safe * sigma2 / q2)
    return a_safe, linear, log_q, log_r


def linear_drive(
    params: DeviceParams,
    constants: tuple[Tensor, Tensor, Tensor, Tensor],
    x0: Tensor,
    n: Tensor,
    dw: Tensor,
    kappa: Tensor,
) -> tuple[Tensor, Tensor]:
    """Mean and variance of the displacement after ``n >= 0`` pulses, exponent 1 (exact).

    ``constants`` come from :func:`linear_constants` for the same ``dw`` and ``kappa``.
    """
    sigma2 = params.dw_min_std**2
    a_safe, linear, log_q, log_r = constants
    u0 = (1 - kappa * x0).clamp(min=0.0)
    # (1 - q**n) / a: number of nominal steps taken, -> n as a -> 0.
    steps = torch.where(linear, n, -torch.expm1(n * log_q) / a_safe)
    mean = u0 * dw * steps
    if params.noise_mode is NoiseMode.MULTIPLICATIVE:
        v = torch.exp(n * 2 * log_q) * torch.expm1(n * log_r) / (a_safe * a_safe)
        var = (u0 * dw) ** 2 * torch.where(linear, n * sigma2, v)
    else:
        v = -torch.expm1(2 * n * log_q) / (a_safe * (2 - a_safe))
        var = (dw**2) * sigma2 * torch.where(linear, n, v)
    return mean, var


def _drive(
    params: DeviceParams, x0: Tensor, n: Tensor, dw: Tensor, kappa: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and variance of the displacement after ``n >= 0`` pulses in one direction.

    ``x0`` is the displacement from ``g_ref`` in the pulse direction. Exact mean and variance for
    exponent 1 (the steps form a linear recursion); small-step (ODE) limits otherwise.
    """
    sigma2 = params.dw_min_std**2
    mult = params.noise_mode is NoiseMode.MULTIPLICATIVE
    if params.exponent == 1.0:
        constants = linear_constants(params, dw, kappa)
        return linear_drive(params, constants, x0, n, dw, kappa)
    u0 = (1 - kappa * x0).clamp(min=0.0)
    p = params.exponent
    kappa = kappa.clamp(min=1e-6)
    a = kappa * dw
    if p < 1:
        un = (u0.pow(1 - p) - (1 - p) * a * n).clamp(min=0.0).pow(1 / (1 - p))
    else:
        un = (u0.pow(1 - p) + (p - 1) * a * n).pow(-1 / (p - 1))
        un = torch.where(u0 > 0, un, torch.zeros_like(un))
    mean = (u0 - un) / kappa
    if mult:
        var = n * sigma2 * (dw * un.pow(p)) ** 2
    else:
        # Sum over steps of the squared sensitivity (u_n/u_k)^(2p), as an integral over u.
        un_s = un.clamp(min=1e-6)
        u0_s = u0.clamp(min=1e-6)
        e = 1 - 3 * p
        integral = (
            (u0_s.pow(e) - un_s.pow(e)) / (e * a) if abs(e) > 1e-6 else (torch.log(u0_s / un_s) / a)
        )
        var = sigma2 * dw**2 * un_s.pow(2 * p) * integral.clamp(min=0.0)
    return mean, var


def _finish(params: DeviceParams, array: DeviceArray, g0: Tensor, g: Tensor, n: Tensor) -> Tensor:
    # Quantise first, then clip: a device's own bounds need not lie on the nominal grid.
    g = quantize(params, g)
    g = torch.minimum(torch.maximum(g, array.g_min), array.g_max)
    # Stuck devices and devices that received no pulse keep their conductance.
    return torch.where((array.stuck == 0) & (n != 0), g, g0)


def quantize(params: DeviceParams, g: Tensor) -> Tensor:
    """Round to the nearest of ``n_states`` levels between the nominal bounds (if finite)."""
    if params.n_states is None:
        return g
    delta = params.g_range / (params.n_states - 1)
    return params.g_min + torch.round((g - params.g_min) / delta) * delta


def _reset(params: DeviceParams, array: DeviceArray, g: Tensor, gen: torch.Generator) -> Tensor:
    level = (
        array.g_min
        + params.reset_std
        * params.g_range
        * torch.randn(g.shape, generator=gen, device=g.device).abs()
    )
    return level


def apply_pulses(
    params: DeviceParams,
    array: DeviceArray,
    g: Tensor,
    n: Tensor,
    gen: torch.Generator,
    exact: bool = False,
) -> Tensor:
    """Conductance after ``n`` signed programming pulses per device (positive = potentiate).

    The closed form applies ``|n|`` noisy steps in one operation: the mean and variance of the
    outcome are those of the pulse-by-pulse process (exactly for exponent 1, in the small-step
    limit otherwise), the outcome is drawn as a Gaussian with them, then clipped to the device's
    bounds and quantised to its states. ``exact=True`` runs the pulses one by one instead.
    """
    if exact:
        return _apply_pulses_exact(params, array, g, n, gen)
    nf = n.to(g.dtype)
    up = nf > 0
    # One direction per device: pick its parameters, then one closed-form evaluation.
    dw = torch.where(up, array.dw_up, array.dw_down)
    kappa = torch.where(up, array.kappa_up, array.kappa_down)
    x0 = torch.where(up, g - params.g_ref, params.g_ref - g)
    mean, var = _drive(params, x0, nf.abs(), dw, kappa)
    noise = torch.randn(g.shape, generator=gen, device=g.device)
    g_new = g + torch.where(up, mean, -mean) + var.clamp(min=0.0).sqrt() * noise
    if params.abrupt_reset:
        g_new = torch.where(nf < 0, _reset(params, array, g, gen), g_new)
    return _finish(params, array, g, g_new, n)


def _apply_pulses_exact(
    params: DeviceParams, array: DeviceArray, g: Tensor, n: Tensor, gen: torch.Generator
) -> Tensor:
    """Pulse-by-pulse reference of :func:`apply_pulses` (slow: one step per loop)."""
    g0 = g
    count = n.abs()
    up = n > 0
    total = int(count.max().item()) if count.numel() else 0
    mult = params.noise_mode is NoiseMode.MULTIPLICATIVE
    for k in range(total):
        active = count > k
        s_up = step_size(params, array, g, up=True)
        s_dn = step_size(params, array, g, up=False)
        step = torch.where(up, s_up, -s_dn)
        xi = torch.randn(g.shape, generator=gen, device=g.device)
        if mult:
            step = step * (1 + params.dw_min_std * xi)
        else:
            nominal = torch.where(up, array.dw_up, array.dw_down)
            step = step + params.dw_min_std * nominal * xi
        g_next = g + step
        if params.abrupt_reset:
            g_next = torch.where(up, g_next, _reset(params, array, g, gen))
        g_next = torch.minimum(torch.maximum(g_next, array.g_min), array.g_max)
        g = torch.where(active, g_next, g)
    return _finish(params, array, g0, g, n)


def read_conductance(
    params: DeviceParams, array: DeviceArray, g: Tensor, gen: torch.Generator
) -> Tensor:
    """One noisy read of every device (what a measurement sees)."""
    if params.read_noise == 0.0:
        return g.clone()
    noise = torch.randn(g.shape, generator=gen, device=g.device)
    return g + params.read_noise * params.g_range * noise


def relax(
    params: DeviceParams, array: DeviceArray, g: Tensor, seconds: float, t0: float = 1.0
) -> Tensor:
    """Conductance ``seconds`` later: power-law drift and retention loss toward ``g_ref``.

    Drift follows ``g(t) = g(t0) * (t/t0)**-nu`` measured from ``g_min`` (all devices taken as
    programmed ``t0`` seconds before); retention relaxes toward ``g_ref`` with ``retention_tau``.
    """
    if seconds < 0:
        raise ValueError(f"seconds = {seconds}; time runs forward only (need >= 0)")
    out = g
    if params.drift_nu > 0:
        factor = ((t0 + seconds) / t0) ** (-array.drift_nu)
        out = array.g_min + (out - array.g_min) * factor
    if params.retention_tau is not None:
        decay = torch.exp(torch.tensor(-seconds / params.retention_tau, dtype=g.dtype))
        out = params.g_ref + (out - params.g_ref) * decay
    return torch.where(array.stuck == 0, out, g)
