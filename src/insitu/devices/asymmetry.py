"""Up/down asymmetry: the step of one pulse in each direction from ``dw_min`` and ``up_down``.

The convention is aihwkit's (``PulsedRPUDevice::populate`` in its C++ core; the resistive
processing unit of Gokmen & Vlasov, Front. Neurosci. 10, 333, 2016), so that a preset quoting
aihwkit's numbers means the same device: ``dw_min`` is the step of the stronger direction and
``up_down`` shrinks the other one only,

- ``up_down > 0``: up ``dw_min``, down ``dw_min * (1 - up_down)``;
- ``up_down < 0``: up ``dw_min * (1 + up_down)``, down ``dw_min``.

Device-to-device variation enters as a gain ``1 + dw_min_dtod * N(0, 1)`` that scales both
directions and a spread ``up_down_dtod * N(0, 1)`` (in units of ``dw_min``) added to the up step
and taken from the down step: a device's steps are
``dw_min * (gain + min(up_down, 0) + spread)`` and ``dw_min * (gain - max(up_down, 0) - spread)``.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np
from torch import Tensor

# Per-device factors: a number for the nominal device, a tensor or array for many.
Factor = TypeVar("Factor", float, Tensor, np.ndarray)


def directional_steps(
    dw_min: float, up_down: float, gain: Factor, spread: Factor
) -> tuple[Factor, Factor]:
    """``(up step, down step)`` of devices with ``gain`` and asymmetry ``spread`` (module doc)."""
    up = dw_min * (gain + min(up_down, 0.0) + spread)
    down = dw_min * (gain - max(up_down, 0.0) - spread)
    return up, down


def nominal_steps(dw_min: float, up_down: float) -> tuple[float, float]:
    """``(up step, down step)`` of the nominal device (gain 1, no spread)."""
    return directional_steps(dw_min, up_down, 1.0, 0.0)


class Asymmetry(NamedTuple):
    """``dw_min``, ``up_down`` of a population and each device's ``gain`` and ``spread``."""

    dw_min: float
    up_down: float
    gain: np.ndarray
    spread: np.ndarray


def asymmetry_from_steps(dw_up: np.ndarray, dw_down: np.ndarray) -> Asymmetry:
    """Invert :func:`directional_steps` for devices with (positive) steps ``dw_up``, ``dw_down``.

    The nominal values come from the mean steps (the mean gain is 1 and the mean spread 0):
    ``dw_min`` is the larger mean step, ``up_down`` the difference of the means over it. Each
    device's gain follows from the sum of its steps and its spread from their difference
    (each free of the other).
    """
    mean_up, mean_down = float(np.mean(dw_up)), float(np.mean(dw_down))
    dw_min = max(mean_up, mean_down)
    up_down = (mean_up - mean_down) / dw_min
    gain = (dw_up + dw_down) / (2 * dw_min) + abs(up_down) / 2
    spread = (dw_up - dw_down) / (2 * dw_min) - up_down / 2
    return Asymmetry(dw_min, up_down, gain, spread)
