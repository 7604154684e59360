"""The :class:`Dataset` type and :func:`load_dataset`.

Datasets:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 samples; the test set
  of the UCI "Optical Recognition of Handwritten Digits" data, Alpaydin & Kaynak 1998).
  Offline, the embedded default. Split 1437 train / 360 test, stratified, fixed seed.
* ``mnist``: LeCun, Bottou, Bengio, Haffner (1998), "Gradient-based learning applied to
  document recognition", Proc. IEEE 86(11). 60000 train / 10000 test, 28x28.
* ``fashion-mnist``: Xiao, Rasul, Vollgraf (2017), "Fashion-MNIST: a novel image dataset
  for benchmarking machine learning algorithms", arXiv:1708.07747. Same layout as MNIST.

Pixels are float32 in [0, 1], one flattened image per row; labels are int64.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.data.idx import read_idx
from insitu.data.sources import locate_dataset
from insitu.errors import ConfigError, DataError, UnknownNameError, check_range

__all__ = ["DATASET_NAMES", "Dataset", "load_dataset"]

#: Names accepted by :func:`load_dataset`.
DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist")

_DIGITS_TEST_SIZE = 360
_DIGITS_SPLIT_SEED = 0  # fixed forever: changing it would change every digits result


@dataclass(frozen=True, repr=False)
class Dataset:
    """A classification dataset as torch tensors, split into train, validation and test.

    ``x_*`` are float32 of shape (N, n_features) with values in [0, 1]; ``y_*`` are int64
    of shape (N,) with values in [0, n_classes). The validation split may have zero rows.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple[int, int]

    def __post_init__(self) -> None:
        n_features = self.image_shape[0] * self.image_shape[1]
        for split in ("train", "val", "test"):
            x: torch.Tensor = getattr(self, f"x_{split}")
            y: torch.Tensor = getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.ndim != 2 or x.shape[1] != n_features:
                raise ConfigError(
                    f"Dataset {self.name!r}: x_{split} must be float32 of shape (N, {n_features}),"
                    f" got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ConfigError(
                    f"Dataset {self.name!r}: y_{split} must be int64 of shape ({x.shape[0]},),"
                    f" got {y.dtype} {tuple(y.shape)}"
                )

    @property
    def n_features(self) -> int:
        """Inputs per sample: the flattened image size."""
        return int(self.x_train.shape[1])

    def __repr__(self) -> str:
        # The default repr would print tensor contents.
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, n_features={self.n_features}, n_classes={self.n_classes}, "
            f"image_shape={self.image_shape})"
        )


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[npt.NDArray[Any], ...]:
    from sklearn.datasets import load_digits  # deferred: importing sklearn takes a while
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / np.float32(16.0)  # pixels are 0..16
    y = np.asarray(bunch.target, dtype=np.int64)
    parts = train_test_split(
        x, y, test_size=_DIGITS_TEST_SIZE, random_state=_DIGITS_SPLIT_SEED, stratify=y
    )
    arrays = tuple(np.ascontiguousarray(a) for a in parts)
    for a in arrays:
        a.setflags(write=False)  # shared by every caller through the cache
    return arrays  # x_train, x_test, y_train, y_test


def _images(path: os.PathLike[str]) -> tuple[torch.Tensor, tuple[int, int]]:
    raw = read_idx(path)
    if raw.ndim != 3 or raw.dtype != np.uint8:
        raise DataError(
            f"{path}: expected uint8 images of shape (N, H, W), got {raw.dtype} {raw.shape}"
        )
    x = raw.reshape(raw.shape[0], -1).astype(np.float32)  # a writable copy of the cache
    np.divide(x, np.float32(255.0), out=x)
    return torch.from_numpy(x), (int(raw.shape[1]), int(raw.shape[2]))


def _labels(path: os.PathLike[str], n: int, n_classes: int) -> torch.Tensor:
    raw = read_idx(path)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DataError(f"{path}: expected {n} labels to match the images, got shape {raw.shape}")
    if n and (int(raw.min()) < 0 or int(raw.max()) >= n_classes):
        raise DataError(f"{path}: labels outside [0, {n_classes})")
    return torch.from_numpy(raw.astype(np.int64))


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in DATASET_NAMES:
        raise UnknownNameError("dataset", name, DATASET_NAMES)
    return key


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    validation_fraction: float = 0.0,
    seed: int = 0,
    limit_train: int | None = None,
    limit_test: int | None = None,
    mirrors: Sequence[str] | None = None,
) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASET_NAMES`) as a :class:`Dataset`.

    Args:
        name: ``"digits"``, ``"mnist"`` or ``"fashion-mnist"`` (``fashion_mnist`` works too).
        data_dir: a folder holding the original files, searched first (MNIST and
            Fashion-MNIST only; see :func:`insitu.data.sources.locate_file`).
        download: fetch missing files from their canonical homes.
        validation_fraction: share of the training set held out as validation, in [0, 1).
        seed: seeds the random validation split, so equal seeds give equal splits.
        limit_train: keep only the first this many training samples (after the split).
        limit_test: keep only the first this many test samples.
        mirrors: base URLs to download from instead of the canonical homes.

    Raises:
        UnknownNameError: unknown dataset name.
        ConfigError: a fraction or limit out of range.
        DataError: data files missing, corrupted or malformed.
    """
    key = _normalise(name)
    check_range("validation_fraction", validation_fraction, low=0.0, high=1.0, high_open=True)
    for label, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and limit < 1:
            raise ConfigError(f"{label} = {limit!r} must be a positive number of samples or None")

    n_classes = 10
    if key == "digits":
        xtr, xte, ytr, yte = _digits_arrays()
        x_train, x_test = torch.tensor(xtr), torch.tensor(xte)
        y_train, y_test = torch.tensor(ytr), torch.tensor(yte)
        image_shape = (8, 8)
    else:
        files = locate_dataset(key, data_dir=data_dir, download=download, mirrors=mirrors)
        x_train, image_shape = _images(files["train_images"])
        x_test, test_shape = _images(files["test_images"])
        if test_shape != image_shape:
            raise DataError(
                f"{files['test_images']}: test images are {test_shape}, "
                f"but training images are {image_shape}"
            )
        y_train = _labels(files["train_labels"], x_train.shape[0], n_classes)
        y_test = _labels(files["test_labels"], x_test.shape[0], n_classes)

    n_val = round(validation_fraction * len(y_train))
    if n_val >= len(y_train):
        raise ConfigError(
            f"validation_fraction = {validation_fraction!r} leaves no training samples "
            f"out of {len(y_train)}"
        )
    if n_val > 0:
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(y_train), generator=generator)
        # Sorted so both parts keep the files' order, which makes limit_train predictable.
        val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
        x_val, y_val = x_train[val_idx], y_train[val_idx]
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    else:
        x_val, y_val = x_train[:0].clone(), y_train[:0].clone()

    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if limit_test is not None:
        x_test, y_test = x_test[:limit_test], y_test[:limit_test]

    return Dataset(
        name=key,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        n_classes=n_classes,
        image_shape=image_shape,
    )
