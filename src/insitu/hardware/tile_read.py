"""A tile's analog read, ``v @ W.T`` (or ``v @ W`` driven from the output side): the torch
reference and the compiled CPU read side by side, behind one interface.

Both take the input vectors through the DAC, the array (each device's read noise summed on its
output line) and the ADC. :func:`insitu.hardware.backend.choose` picks one when the tile is
built; :func:`read_backend` makes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import Tensor

from insitu.hardware import read_kernels as reads
from insitu.hardware.backend import Implementation
from insitu.hardware.kernel_switch import as_numpy

if TYPE_CHECKING:
    from insitu.hardware.tile import Tile


class ReadBackend(Protocol):
    """The read of a tile's array: ``v`` (I, B, n) -> (I, B, m), events not counted."""

    def __call__(self, v: Tensor, transposed: bool) -> Tensor:
        """``v`` through DAC, array and ADC: ``v @ W.T``, or ``v @ W`` when ``transposed``."""
        ...


class TorchRead:
    """The reference: tensor operations, on any device."""

    def __init__(self, tile: Tile) -> None:
        self._tile = tile
        self._periphery = tile.config.periphery
        self._noisy = tile.config.device.read_noise > 0

    def __call__(self, v: Tensor, transposed: bool) -> Tensor:
        tile, p = self._tile, self._periphery
        w = tile._weights()
        drive, scale = p.convert_input(v)
        y = torch.matmul(drive, w if transposed else w.transpose(1, 2))
        if self._noisy:
            std, noise = self._read_noise(drive, y)
            y = y + std * noise
        return p.convert_output(y, scale, tile._gen)

    def _read_noise(self, drive: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Every device's independent read noise summed on its output line: the std per input
        vector (I, B, 1) and a standard normal draw per output (like ``y``)."""
        tile = self._tile
        power = drive.pow(2).sum(-1, keepdim=True) * tile.devices_per_weight
        draw = torch.randn(y.shape, generator=tile._gen, device=y.device)
        return tile._device_read_std * power.sqrt(), draw


class KernelRead:
    """:class:`TorchRead` by the compiled reads (:mod:`insitu.hardware.read_kernels`): one call
    for reads of up to ``FUSED_MACS`` multiply-accumulates, the compiled converters around
    torch's matmul above that. Inputs that are not float32 take the reference."""

    def __init__(self, tile: Tile) -> None:
        self._tile = tile
        self._reference = TorchRead(tile)

    def __call__(self, v: Tensor, transposed: bool) -> Tensor:
        tile = self._tile
        w = tile._weights()
        if v.dtype != torch.float32 or w.dtype != torch.float32:
            return self._reference(v, transposed)
        i_n, b, n = v.shape
        m = w.shape[2] if transposed else w.shape[1]
        src = as_numpy(v.contiguous())
        streams = tile._streams()
        params = tile._read_params
        if i_n * b * n * m <= reads.FUSED_MACS:
            y = np.empty((i_n, b, m), dtype=np.float32)
            reads.analog_read(src, as_numpy(w), transposed, y, params, streams)
            return torch.from_numpy(y)
        drive = np.empty((i_n, b, n), dtype=np.float32)
        scale = np.empty((i_n, b), dtype=np.float32)
        power = np.empty((i_n, b), dtype=np.float32)
        reads.convert_inputs(src, drive, scale, power, params)
        out = torch.matmul(torch.from_numpy(drive), w if transposed else w.transpose(1, 2))
        reads.convert_outputs(as_numpy(out), scale, power, params, streams)
        return out


def read_backend(implementation: Implementation, tile: Tile) -> ReadBackend:
    """The read ``implementation`` of ``tile``."""
    if implementation is Implementation.KERNEL:
        return KernelRead(tile)
    return TorchRead(tile)
