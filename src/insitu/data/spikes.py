"""The :class:`SpikeDataset` type: spike-train classification data, and image -> spike coding.

A spike dataset holds dense binary spike tensors of shape (N, T, F) (samples, time steps,
input channels) rather than the (N, F) rows of :class:`~insitu.data.Dataset`. It comes from
event data read in its original format (:func:`~insitu.data.nmnist.load_nmnist`,
:func:`~insitu.data.shd.load_shd`) or from images put through an encoder
(:func:`latency_coded`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from insitu.data.datasets import Dataset
from insitu.data.encoders import latency_encode
from insitu.data.images import resize_images
from insitu.errors import ConfigError

__all__ = ["SpikeDataset", "latency_coded"]

_CHUNK = 4096  # images encoded at a time by latency_coded


@dataclass(frozen=True, repr=False)
class SpikeDataset:
    """A classification dataset of spike trains, split into train and test.

    Attributes:
        name: the dataset's name (``"nmnist"``, ``"shd"``, ``"mnist-latency"``, ...).
        x_train, x_test: (N, T, F) spike tensors, float32 holding 0 and 1, or bool; the same
            T and F in both splits.
        y_train, y_test: int64 of shape (N,), labels in [0, n_classes).
        n_classes: number of classes.
        dt_s: the length of one time step in seconds, or None where steps have no physical
            length (images put through an encoder: the step is whatever the model makes it).
        input_shape: how the F channels are laid out, row-major (e.g. (2, 34, 34) for
            N-MNIST's polarity x y x x, (70,) for SHD); its product is F.
        provenance: how the spikes were made and from what (the library and its version, the
            transform, a digest of the files read), JSON-ready; a run records it in its
            summary. None where the name and sizes say enough.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    dt_s: float | None
    input_shape: tuple[int, ...]
    provenance: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        who = f"SpikeDataset {self.name!r}"
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ConfigError(f"{who}: n_classes = {self.n_classes!r} must be an integer")
        if self.n_classes < 1:
            raise ConfigError(f"{who}: n_classes = {self.n_classes} must be positive")
        if self.dt_s is not None and not (math.isfinite(self.dt_s) and self.dt_s > 0):
            raise ConfigError(f"{who}: dt_s = {self.dt_s!r} must be a positive time or None")
        n_inputs = math.prod(self.input_shape)
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise ConfigError(f"{who}: input_shape {self.input_shape} must be positive sizes")
        steps = int(self.x_train.shape[1]) if self.x_train.ndim == 3 else -1
        for split in ("train", "test"):
            x: torch.Tensor = getattr(self, f"x_{split}")
            y: torch.Tensor = getattr(self, f"y_{split}")
            if (
                x.dtype not in (torch.float32, torch.bool)
                or x.ndim != 3
                or x.shape[1] != steps
                or x.shape[2] != n_inputs
            ):
                raise ConfigError(
                    f"{who}: x_{split} must be float32 or bool of shape (N, T, {n_inputs}) "
                    f"with T equal in both splits (input_shape {self.input_shape}), got "
                    f"{x.dtype} {tuple(x.shape)}"
                )
            if x.dtype == torch.float32 and not bool(((x == 0) | (x == 1)).all()):
                raise ConfigError(f"{who}: x_{split} must hold only 0 and 1 (spikes)")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ConfigError(
                    f"{who}: y_{split} must be int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ConfigError(f"{who}: y_{split} has labels outside [0, {self.n_classes})")

    @property
    def time_steps(self) -> int:
        """T: time steps per sample."""
        return int(self.x_train.shape[1])

    @property
    def n_inputs(self) -> int:
        """F: input channels per time step."""
        return int(self.x_train.shape[2])

    @property
    def duration_s(self) -> float | None:
        """The length of a sample in seconds (T * dt_s), or None without a physical step."""
        return None if self.dt_s is None else self.time_steps * self.dt_s

    def __repr__(self) -> str:
        # The default repr would print tensor contents.
        dt = "None" if self.dt_s is None else f"{self.dt_s:g} s"
        return (
            f"SpikeDataset(name={self.name!r}, train={len(self.y_train)}, "
            f"test={len(self.y_test)}, time_steps={self.time_steps}, n_inputs={self.n_inputs}, "
            f"input_shape={self.input_shape}, n_classes={self.n_classes}, dt={dt}, "
            f"dtype={self.x_train.dtype})"
        )


def latency_coded(
    dataset: Dataset,
    *,
    time_steps: int,
    tau: float,
    threshold: float,
    size: tuple[int, int] | None = (16, 16),
    crop: int = 0,
    dt_s: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> SpikeDataset:
    """An image dataset resized (optionally) and latency-coded into a :class:`SpikeDataset`.

    Each split is passed through :func:`~insitu.data.images.resize_images` (unless ``size``
    is None) and :func:`~insitu.data.encoders.latency_encode` (``tau`` in steps). The
    validation split of ``dataset``, if any, is dropped. For MNIST as in Cramer et al. 2022
    (PNAS), pass ``crop=2`` to go 28x28 -> 24x24 -> 16x16 = 256 inputs. The spike tensors
    take N * T * F * (4 for float32, 1 for bool ``dtype``) bytes: all 60,000 MNIST training
    images at T = 100 take 6 GB as float32, 1.5 GB as bool; images are encoded in chunks, so
    nothing larger than the result is held.

    Raises:
        ConfigError: a dataset with ``targets`` (not plain classification) or a bad argument.
    """
    if size is None and crop:
        raise ConfigError(f"crop = {crop!r} needs a size to resize to; got size=None")
    if dataset.targets is not None:
        raise ConfigError(
            f"dataset {dataset.name!r} is a reconstruction task (it has targets); "
            "latency coding supports plain classification datasets only"
        )

    if dtype not in (torch.float32, torch.bool):
        raise ConfigError(f"dtype must be torch.float32 or torch.bool, got {dtype}")

    def encode(x: torch.Tensor) -> torch.Tensor:
        if size is not None:
            x = resize_images(x, dataset.image_shape, size, crop=crop).clamp_(0.0, 1.0)
        out = torch.empty(x.shape[0], time_steps, x.shape[1], dtype=dtype, device=x.device)
        for start in range(0, x.shape[0], _CHUNK):
            chunk = x[start : start + _CHUNK]
            out[start : start + _CHUNK] = latency_encode(chunk, time_steps, tau, threshold)
        if x.shape[0] == 0:
            latency_encode(x, time_steps, tau, threshold)  # still check the arguments
        return out

    shape = dataset.image_shape if size is None else size
    return SpikeDataset(
        name=f"{dataset.name}-latency",
        x_train=encode(dataset.x_train),
        y_train=dataset.y_train,
        x_test=encode(dataset.x_test),
        y_test=dataset.y_test,
        n_classes=dataset.n_classes,
        dt_s=dt_s,
        input_shape=(int(shape[0]), int(shape[1])),
    )
