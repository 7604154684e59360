"""The :class:`Dataset` type and :func:`load_dataset`.

Datasets:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1797 samples; the test set
  of the UCI "Optical Recognition of Handwritten Digits" data, Alpaydin & Kaynak 1998).
  Offline, the embedded default. Split 1437 train / 360 test, stratified, fixed seed.
* ``mnist``: LeCun, Bottou, Bengio, Haffner (1998), "Gradient-based learning applied to
  document recognition", Proc. IEEE 86(11). 60000 train / 10000 test, 28x28.
* ``fashion-mnist``: Xiao, Rasul, Vollgraf (2017), "Fashion-MNIST: a novel image dataset
  for benchmarking machine learning algorithms", arXiv:1708.07747. Same layout as MNIST.
* ``braille``: the Braille reconstruction task of Yi, Kendall, Williams, Kumar (2022),
  "Activity-difference training of deep neural networks using memristor crossbars", Nature
  Electronics: distorted 60-bit Braille names of nine computer scientists, each to be restored
  to its clean pattern (``Dataset.targets``). Generated, not read; see
  :mod:`insitu.data.braille`.

Pixels are float32 in [0, 1], one flattened image per row; labels are int64.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.data.idx import read_idx
from insitu.data.sources import check_data_dir, locate_dataset
from insitu.errors import ConfigError, DataError, UnknownNameError, check_range

__all__ = ["DATASET_NAMES", "Dataset", "check_dataset_options", "load_dataset"]

#: Names accepted by :func:`load_dataset`.
DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "braille")

_DIGITS_TEST_SIZE = 360
_DIGITS_SPLIT_SEED = 0  # fixed forever: changing it would change every digits result


@dataclass(frozen=True, repr=False)
class Dataset:
    """A classification dataset as torch tensors, split into train, validation and test.

    ``x_*`` are float32 of shape (N, n_features) with values in [0, 1]; ``y_*`` are int64
    of shape (N,) with values in [0, n_classes). The validation split may have zero rows.

    ``targets``, when given, is float32 of shape (n_classes, n_outputs): the output vector
    each class must produce (a reconstruction task such as ``braille``). None means plain
    classification, whose outputs are one-hot over the ``n_classes`` classes.

    ``origin``, when given, says where samples not loaded by name came from (e.g. the torch
    Dataset class they were read from, :mod:`insitu.data.torch_dataset`); runs record it.
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
    targets: torch.Tensor | None = None
    origin: str | None = None

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
        t = self.targets
        if t is not None and (
            t.dtype != torch.float32 or t.ndim != 2 or t.shape[0] != self.n_classes
        ):
            problems = []
            if t.dtype != torch.float32:
                problems.append(f"dtype is {t.dtype}, not float32")
            if t.ndim != 2:
                problems.append(f"it is {t.ndim}-D, not 2-D")
            elif t.shape[0] != self.n_classes:
                problems.append(f"it has {t.shape[0]} rows, not n_classes = {self.n_classes}")
            raise ConfigError(
                f"Dataset {self.name!r}: targets must be float32 of shape (n_classes = "
                f"{self.n_classes}, n_outputs), got {t.dtype} {tuple(t.shape)}: "
                + "; ".join(problems)
            )

    @property
    def n_features(self) -> int:
        """Inputs per sample: the flattened image size."""
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Outputs per sample: the width of ``targets``, or ``n_classes`` when it is None."""
        return int(self.targets.shape[1]) if self.targets is not None else self.n_classes

    def __repr__(self) -> str:
        # The default repr would print tensor contents.
        outputs = "" if self.targets is None else f", n_outputs={self.n_outputs} (targets)"
        origin = "" if self.origin is None else f", origin={self.origin!r}"
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, n_features={self.n_features}, n_classes={self.n_classes}, "
            f"image_shape={self.image_shape}{outputs}{origin})"
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


def _braille_option_names() -> tuple[str, ...]:
    from insitu.data.braille import make_braille  # deferred: braille imports this module

    params = inspect.signature(make_braille).parameters.values()
    # The seed comes from load_dataset's own ``seed``.
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "seed")


def check_dataset_options(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The option names ``name`` accepts are checked (values are checked when it is built)."""
    key = _normalise(name)
    given = dict(options or {})
    if key != "braille":
        if given:
            raise ConfigError(
                f"dataset {key!r} takes no options, got {', '.join(sorted(map(repr, given)))}"
            )
        return given
    valid = _braille_option_names()
    unknown = sorted(repr(k) for k in given if k not in valid)
    if unknown:
        hint = " (pass seed= to load_dataset instead)" if "seed" in given else ""
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"for dataset 'braille'{hint}; valid options: {', '.join(valid)}"
        )
    return given


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
    options: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASET_NAMES`) as a :class:`Dataset`.

    Args:
        name: ``"digits"``, ``"mnist"``, ``"fashion-mnist"`` (``fashion_mnist`` works too) or
            ``"braille"``.
        data_dir: a folder holding the original files, searched first (MNIST and
            Fashion-MNIST only; see :func:`insitu.data.sources.locate_file`); it must exist
            (for every dataset: a folder given in vain is an error, not ignored).
        download: fetch missing files from their canonical homes.
        validation_fraction: share of the training set held out as validation, in [0, 1).
        seed: seeds the random validation split, so equal seeds give equal splits (and, for
            ``braille``, the generated samples).
        limit_train: keep only the first this many training samples (after the split).
        limit_test: keep only the first this many test samples.
        mirrors: base URLs to download from instead of the canonical homes.
        options: dataset-specific options. For ``braille`` the keyword arguments of
            :func:`insitu.data.braille.make_braille` other than ``seed``; the other datasets
            take none.

    Raises:
        UnknownNameError: unknown dataset name.
        ConfigError: a fraction or limit out of range, or an option the dataset does not take.
        DataError: ``data_dir`` not a folder; data files missing, corrupted or malformed.
    """
    key = _normalise(name)
    braille_options = check_dataset_options(key, options)
    check_data_dir(data_dir)
    check_range("validation_fraction", validation_fraction, low=0.0, high=1.0, high_open=True)
    for label, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and limit < 1:
            raise ConfigError(f"{label} = {limit!r} must be a positive number of samples or None")

    n_classes = 10
    targets: torch.Tensor | None = None
    if key == "braille":
        from insitu.data.braille import make_braille  # deferred: braille imports this module

        generated = make_braille(seed=seed, **braille_options)
        x_train, y_train = generated.x_train, generated.y_train
        x_test, y_test = generated.x_test, generated.y_test
        n_classes, image_shape, targets = (
            generated.n_classes,
            generated.image_shape,
            generated.targets,
        )
    elif key == "digits":
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
        targets=targets,
    )
