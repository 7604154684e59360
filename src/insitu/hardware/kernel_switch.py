"""When the compiled (numba) CPU kernels serve a call, and with how many threads.

The torch implementations are the reference and what runs on a GPU; a kernel is an exact
re-statement of the same arithmetic as one compiled loop, for CPU tensors. ``INSITU_KERNELS=0``
(read on every call) switches every kernel off, for A/B measurements and to check the fallback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import torch

F = TypeVar("F", bound=Callable[..., Any])

_CONFIG: Any = numba.config  # numba's settings (untyped)
if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's own thread pool, whose idle threads sleep. With the OpenMP layer they spin after
    # every parallel loop and starve torch's threads: a training step of the spiking network
    # took 500 ms instead of 40 ms on a loaded 2-core machine (same run, 1 torch thread).
    _CONFIG.THREADING_LAYER = "workqueue"


def kernels_enabled(device: torch.device) -> bool:
    """Whether the compiled kernels serve tensors on ``device`` (CPU only; INSITU_KERNELS=0
    turns them off)."""
    return device.type == "cpu" and os.environ.get("INSITU_KERNELS", "1") not in ("", "0")


def sync_threads() -> None:
    """Use as many kernel threads as torch uses (the user's thread setting governs both)."""
    want = max(1, min(torch.get_num_threads(), int(_CONFIG.NUMBA_NUM_THREADS)))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def jit(*, parallel: bool = False) -> Callable[[F], F]:
    """``numba.njit`` with the project's settings (cached on disk, IEEE arithmetic so results
    match the torch path), typed so that mypy keeps the kernel's signature."""
    return cast(Callable[[F], F], numba.njit(cache=True, fastmath=False, parallel=parallel))
