"""The one place that decides whether torch or a compiled CPU kernel serves a hot operation.

Each concern with a compiled kernel has a torch reference (what runs on a GPU and what the
kernel is checked against) and a compiled CPU implementation side by side, behind one small
typed interface:

- tile read: ``ReadBackend`` (``TorchRead``, ``KernelRead``), :mod:`insitu.hardware.tile_read`;
- pulsed tile update: ``UpdateBackend`` (``TorchUpdate``, ``KernelUpdate``),
  :mod:`insitu.hardware.tile_update`;
- synaptic drive: ``SynapticDrive`` (``TorchSynapses``, ``KernelSynapses``),
  :mod:`insitu.hardware.synapses`;
- the spiking chip's LIF time loop: ``LayerEmulation`` (``TorchEmulation``,
  ``KernelEmulation``), :mod:`insitu.hardware.lif_emulation`;
- the LIF software model's loops through time: ``LIFModel`` (``TorchLIFModel``,
  ``KernelLIFModel``), :mod:`insitu.algorithms.lif_graph`;
- the softmax cross-entropy at a chip's output: ``softmax_error`` and
  ``compiled_softmax_error``, :mod:`insitu.algorithms.base`;
- AGAD's demodulation of a transfer's reads: ``_torch_demodulate`` and
  ``_kernel_demodulate``, :mod:`insitu.hardware.agad_cell`.

:func:`choose` picks torch or kernel **once, when a tile, chip, software model or trainer is
built**, from the device of its tensors, their dtype, the ``backend`` it was given and the
``INSITU_KERNELS`` environment variable (read then, not at every call: set it before building;
to compare both paths in one process, build twice or pass ``backend="torch"`` / ``"kernel"``).
The object built binds the chosen implementations and calls them directly; no call site asks
again. What a kernel implementation still checks per call is data it cannot know in advance
(e.g. the size of a read, which decides between one fused call and converters around torch's
matmul; a dtype or shape the kernel does not handle, which it hands to the torch reference).
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Literal

import torch

from insitu.errors import ConfigError

BackendChoice = Literal["auto", "torch", "kernel"]
"""What a caller may ask for: ``auto`` (kernels on the CPU unless ``INSITU_KERNELS=0``), the
torch reference everywhere, or the compiled kernels (CPU only)."""

BACKEND_CHOICES: tuple[str, ...] = ("auto", "torch", "kernel")

_KERNEL_DTYPES = (torch.float32, torch.float64)


class Implementation(StrEnum):
    """Which implementation serves an object's hot operations."""

    TORCH = "torch"  # the reference: tensor operations, any device
    KERNEL = "kernel"  # compiled numba loops on CPU tensors


def kernels_switched_on() -> bool:
    """Whether ``INSITU_KERNELS`` allows the compiled kernels (unset, or anything but ``0`` and
    the empty string). Read by :func:`choose` only."""
    return os.environ.get("INSITU_KERNELS", "1") not in ("", "0")


def choose(
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    backend: BackendChoice | str = "auto",
) -> Implementation:
    """The implementation for an object whose tensors live on ``device`` with ``dtype``.

    ``auto``: the kernels for float32/float64 tensors on the CPU, unless ``INSITU_KERNELS=0``;
    the torch reference otherwise. ``torch``: always the reference. ``kernel``: the kernels,
    whatever ``INSITU_KERNELS`` says; ConfigError off the CPU or for other dtypes. A concern
    whose kernel does not implement an object's design (e.g. a count-mode tile update) uses its
    torch reference under ``kernel`` as well.
    """
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"backend = {backend!r}; expected one of {', '.join(BACKEND_CHOICES)}")
    if backend == "torch":
        return Implementation.TORCH
    compiled = torch.device(device).type == "cpu" and dtype in _KERNEL_DTYPES
    if backend == "kernel":
        if not compiled:
            raise ConfigError(
                f"backend = 'kernel' needs float32 or float64 tensors on the CPU; these are "
                f"{dtype} on {torch.device(device)}"
            )
        return Implementation.KERNEL
    return Implementation.KERNEL if compiled and kernels_switched_on() else Implementation.TORCH
