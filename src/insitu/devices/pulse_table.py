"""The closed-form pulse response from a table of per-device constants (the fast path).

:func:`insitu.devices.apply_pulses` derives the constants of the exponent-1 closed form
(``kappa*dw``, ``log(1 - kappa*dw)``, the noise growth) from a device's parameters on every
call. A crossbar updates the same devices thousands of times, so it computes them once per
device and direction into a table (one row per device) and gathers the rows of the devices it
pulses. :func:`apply_pulses_tabled` then gives the same outcome as ``apply_pulses`` for the same
random draws, in fewer operations; with ``INSITU_COMPILE=1`` the per-device arithmetic is fused
into one compiled loop (torch.compile, CPU inductor; eager if no compiler is available).

Only exponent-1 devices without abrupt RESET have a table (every linear-step, soft-bounds and
constant-step preset); the others keep ``apply_pulses``.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from insitu.devices.params import DeviceParams
from insitu.devices.response import DeviceArray, linear_constants, linear_drive, quantize

# Columns of a pulse table: six per direction (up, then down), then the device's bounds and
# whether it works (1) or is stuck (0).
_DIRECTION = ("dw", "kappa", "a", "linear", "log_q", "log_r")
UP = slice(0, 6)
DOWN = slice(6, 12)
G_MIN, G_MAX, WORKING = 12, 13, 14
COLUMNS = 15


def has_table(params: DeviceParams) -> bool:
    """Whether the tabled closed form covers this device kind."""
    return params.exponent == 1.0 and not params.abrupt_reset


def pulse_table(params: DeviceParams, array: DeviceArray) -> Tensor:
    """Per-device constants, shape (devices, 15), devices in ``array``'s flattened order."""
    if not has_table(params):
        raise ValueError(
            f"device {params.name!r} has no pulse table (exponent {params.exponent}, "
            f"abrupt_reset {params.abrupt_reset}); use apply_pulses"
        )
    cols: list[Tensor] = []
    for dw, kappa in ((array.dw_up, array.kappa_up), (array.dw_down, array.kappa_down)):
        a, linear, log_q, log_r = linear_constants(params, dw, kappa)
        cols += [dw, kappa, a, linear.to(dw.dtype), log_q, log_r]
    cols += [array.g_min, array.g_max, (array.stuck == 0).to(array.g_min.dtype)]
    return torch.stack([c.reshape(-1).to(torch.float32) for c in cols], dim=-1)


def _tabled_step(params: DeviceParams, rows: Tensor, g: Tensor, n: Tensor, noise: Tensor) -> Tensor:
    """The arithmetic of :func:`apply_pulses` for exponent 1, constants read from ``rows``."""
    up = n > 0
    sel = torch.where(up.unsqueeze(-1), rows[:, UP], rows[:, DOWN])
    dw, kappa, a, linear, log_q, log_r = sel.unbind(-1)
    x0 = torch.where(up, g - params.g_ref, params.g_ref - g)
    mean, var = linear_drive(params, (a, linear > 0, log_q, log_r), x0, n.abs(), dw, kappa)
    g_new = g + torch.where(up, mean, -mean) + var.clamp(min=0.0).sqrt() * noise
    # Quantise, clip to the device's own bounds; stuck and unpulsed devices keep g.
    g_new = quantize(params, g_new)
    g_new = torch.minimum(torch.maximum(g_new, rows[:, G_MIN]), rows[:, G_MAX])
    return torch.where((rows[:, WORKING] > 0) & (n != 0), g_new, g)


Step = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


@functools.lru_cache(maxsize=16)
def _compiled(params: DeviceParams) -> Step:
    step: Step = torch.compile(functools.partial(_tabled_step, params), dynamic=True)
    return step


def compile_requested() -> bool:
    """``INSITU_COMPILE=1`` asks for the compiled (fused) pulse step."""
    return os.environ.get("INSITU_COMPILE", "0") not in ("", "0")


_FAILED: set[DeviceParams] = set()


def apply_pulses_tabled(
    params: DeviceParams, rows: Tensor, g: Tensor, n: Tensor, gen: torch.Generator
) -> Tensor:
    """Conductances (D,) after ``n`` signed pulses each, devices' constants in ``rows`` (D, 15).

    Same outcome as :func:`insitu.devices.apply_pulses` with the same generator state (one
    standard normal draw per device).
    """
    nf = n.to(g.dtype)
    noise = torch.randn(g.shape, generator=gen, device=g.device)
    if compile_requested() and params not in _FAILED:
        try:
            return _compiled(params)(rows, g, nf, noise)
        except Exception as err:  # no C++ compiler, unsupported platform: stay correct, eager
            _FAILED.add(params)
            warnings.warn(f"compiled pulse step unavailable ({err}); running eager", stacklevel=2)
    return _tabled_step(params, rows, g, nf, noise)
