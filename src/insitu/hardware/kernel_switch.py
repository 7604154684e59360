"""How the compiled (numba) CPU kernels are compiled, with how many threads they run, and how
tensors reach them (zero-copy numpy views).

The torch implementations are the reference and what runs on a GPU; a kernel is an exact
re-statement of the same arithmetic as one compiled loop, for CPU tensors. Whether a kernel or
the reference serves an object is decided once, when it is built, by
:func:`insitu.hardware.backend.choose` (``INSITU_KERNELS=0`` there switches every kernel off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import torch
from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])

_CONFIG: Any = numba.config  # numba's settings (untyped)
if "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's own thread pool, whose idle threads sleep. The OpenMP layer loads the system's
    # libgomp beside torch's own; its threads spin after every parallel loop and starve torch's:
    # a spiking training step took 500 ms instead of 40 ms on a loaded 2-core machine, and every
    # small torch op of the crossbar path became several times slower.
    _CONFIG.THREADING_LAYER = "workqueue"


def sync_threads() -> int:
    """Use as many kernel threads as torch uses (the user's thread setting governs both);
    returns that number."""
    want = max(1, min(torch.get_num_threads(), int(_CONFIG.NUMBA_NUM_THREADS)))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)
    return want


def jit(*, parallel: bool = False) -> Callable[[F], F]:
    """``numba.njit`` with the project's settings (cached on disk, IEEE arithmetic so results
    match the torch path), typed so that mypy keeps the kernel's signature."""
    return cast(Callable[[F], F], numba.njit(cache=True, fastmath=False, parallel=parallel))


def as_numpy(t: Tensor) -> np.ndarray:
    """A zero-copy numpy view of a contiguous CPU tensor."""
    if not t.is_contiguous():
        raise ValueError("kernel arguments must be contiguous")
    # numpy() detaches by itself; detaching first as well was 16 more tensor ops per step.
    return (t.detach() if t.requires_grad else t).numpy()
