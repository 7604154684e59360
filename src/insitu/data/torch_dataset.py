"""Any map-style ``torch.utils.data.Dataset`` (or a ``DataLoader`` over one) as insitu's
:class:`~insitu.data.Dataset`, data named by an import path (``mypkg.data:make_data``), and
the content hash that tells which samples a run trained on.

Each item is a pair ``(x, y)``: ``x`` a tensor (or NumPy array) of any shape, flattened into
one row of features (float32); ``y`` an integer class (a Python or NumPy integer, or a
one-element integer tensor). The items are read once, in index order, and kept as tensors. A
``DataLoader`` is read through its ``dataset``: the run batches and shuffles with its own
seeded generator, so the loader's batch size, sampler and collate function play no part. A
transform that draws random numbers is drawn once, here (and changes the content hash).

Features are used as they are: the DACs saturate beyond ``periphery.input_bound`` (1 by
default), so scale them into [0, 1] beforehand, as insitu's own datasets are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset
from torch.utils.data import Dataset as TorchDataset

from insitu.data.datasets import Dataset
from insitu.errors import ConfigError, InsituError

__all__ = ["HashedSplits", "as_dataset", "content_sha256", "from_torch", "import_data"]

_EXAMPLE = "e.g. mypkg.data:make_data"
R = TypeVar("R")


class HashedSplits(Protocol):
    """The splits a run trains and tests on (a :class:`Dataset` or a ``SpikeDataset``)."""

    @property
    def x_train(self) -> torch.Tensor: ...
    @property
    def y_train(self) -> torch.Tensor: ...
    @property
    def x_test(self) -> torch.Tensor: ...
    @property
    def y_test(self) -> torch.Tensor: ...


def content_sha256(ds: HashedSplits) -> str:
    """SHA-256 (hex) over the splits a run uses: train and test inputs and labels, and the
    target patterns where a dataset has them; each tensor's dtype, shape and bytes in order.

    Equal samples give equal hashes in every process; names and sources do not enter.
    """
    digest = hashlib.sha256()
    targets = getattr(ds, "targets", None)
    parts = [("x_train", ds.x_train), ("y_train", ds.y_train)]
    parts += [("x_test", ds.x_test), ("y_test", ds.y_test)]
    if targets is not None:
        parts.append(("targets", targets))
    for name, t in parts:
        flat = t.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(t.shape)};".encode())
        digest.update(flat.view(torch.uint8).numpy().data)  # the raw bytes, no copy
    return digest.hexdigest()


def _class_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(data: object) -> str:
    """What the samples were read from, e.g. ``DataLoader over torchvision.datasets.MNIST``."""
    if isinstance(data, DataLoader):
        return f"DataLoader over {_class_path(data.dataset)}"
    return _class_path(data)


def _label(y: Any, where: str) -> int:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(y)
    if isinstance(y, torch.Tensor):
        if y.numel() != 1 or y.dtype.is_floating_point or y.dtype.is_complex:
            raise ConfigError(
                f"{where}: y must be one integer class, got a {y.dtype} tensor of shape "
                f"{tuple(y.shape)}"
            )
        return int(y.item())
    if isinstance(y, bool) or not isinstance(y, int | np.integer):
        raise ConfigError(f"{where}: y must be an integer class, got {type(y).__name__} {y!r}")
    return int(y)


def _features(x: Any, where: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise ConfigError(f"{where}: x must hold numbers, got a NumPy array of {x.dtype}")
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        hint = ""
        if _class_path(x).startswith("PIL."):
            hint = " (give the dataset a transform that makes tensors, e.g. ToTensor())"
        raise ConfigError(f"{where}: x must be a tensor, got {type(x).__name__}{hint}")
    if x.dtype.is_complex or x.numel() == 0:
        raise ConfigError(
            f"{where}: x must be a non-empty real tensor, got {x.dtype} {tuple(x.shape)}"
        )
    return x


def _read_items(source: Any, where: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Inputs (N, ...) and labels (N,) of a map-style dataset, item by item, and one item's
    input shape."""
    xs: list[torch.Tensor] = []
    ys: list[int] = []
    for i in range(len(source)):
        item = source[i]
        at = f"{where} item {i}"
        if not isinstance(item, tuple | list) or len(item) != 2:
            got = f"{len(item)} values" if isinstance(item, tuple | list) else type(item).__name__
            raise ConfigError(f"{at} must be a pair (x, y) of a tensor and a class, got {got}")
        x = _features(item[0], at)
        if xs and x.shape != xs[0].shape:
            raise ConfigError(
                f"{at}: x has shape {tuple(x.shape)}, but item 0 has {tuple(xs[0].shape)}; "
                "every input must have the same shape"
            )
        xs.append(x)
        ys.append(_label(item[1], at))
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), tuple(xs[0].shape)


def _materialise(data: Any, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Float32 features (N, F), int64 labels (N,) and one item's input shape of one split."""
    where = f"{split} data"
    source: Any = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(source, IterableDataset):
        raise ConfigError(
            f"{where} is an IterableDataset ({_class_path(source)}); give a map-style Dataset "
            "(with __len__ and __getitem__), e.g. a TensorDataset of the materialised samples"
        )
    if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise ConfigError(
            f"{where} must be a torch Dataset or DataLoader (with __len__ and __getitem__), "
            f"got {type(data).__name__}"
        )
    if len(source) == 0:
        raise ConfigError(f"{where} ({_describe(data)}) holds no samples")
    if isinstance(source, TensorDataset) and len(source.tensors) == 2:
        # The tensors as they are: no loop over items.
        x = _features(source.tensors[0], f"{where} (TensorDataset)")
        y = source.tensors[1]
        if y.dtype.is_floating_point or y.dtype.is_complex or y.shape != (len(x),):
            raise ConfigError(
                f"{where} (TensorDataset): its second tensor must be integer classes of shape "
                f"({len(x)},), got {y.dtype} {tuple(y.shape)}"
            )
        shape = tuple(x.shape[1:])
    else:
        x, y, shape = _read_items(source, where)
    x = x.detach().to("cpu", torch.float32).reshape(len(x), -1)
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{where}: x holds NaN or infinite values")
    y = y.detach().to("cpu", torch.int64)
    if int(y.min()) < 0:
        raise ConfigError(f"{where}: classes must be 0, 1, 2, ..., got {int(y.min())}")
    return x.contiguous(), y.contiguous(), shape


def _image_shape(shape: tuple[int, ...], n_features: int) -> tuple[int, int]:
    """(H, W) for one-channel pictures ((H, W) or (1, H, W) items); else one row."""
    if len(shape) == 2 or (len(shape) == 3 and shape[0] == 1):
        return int(shape[-2]), int(shape[-1])
    return 1, n_features


def from_torch(
    train: TorchDataset[Any] | DataLoader[Any],
    test: TorchDataset[Any] | DataLoader[Any],
    *,
    name: str | None = None,
    n_classes: int | None = None,
) -> Dataset:
    """A :class:`Dataset` holding the samples of torch datasets (or loaders) ``train`` and
    ``test``, whose items are pairs ``(x, y)`` (see the module's description).

    Args:
        name: what runs call the data; default: the training dataset's class name.
        n_classes: the number of classes; default: the largest class in either split + 1.

    Raises:
        ConfigError: naming the split and item that is not a pair of a real tensor and an
            integer class, inputs of unequal shapes, an iterable-style dataset, an empty split,
            or a class outside [0, n_classes).
    """
    x_train, y_train, shape = _materialise(train, "train")
    x_test, y_test, test_shape = _materialise(test, "test")
    if x_test.shape[1] != x_train.shape[1]:
        raise ConfigError(
            f"test data: inputs of shape {test_shape} ({x_test.shape[1]} features), but the "
            f"training inputs have shape {shape} ({x_train.shape[1]} features)"
        )
    largest = max(int(y_train.max()), int(y_test.max()))
    if n_classes is None:
        n_classes = largest + 1
    elif isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes <= largest:
        raise ConfigError(
            f"n_classes = {n_classes!r} must be an integer above the largest class, {largest}"
        )
    origin = _describe(train)
    if _describe(test) != origin:
        origin = f"{origin} (train), {_describe(test)} (test)"
    source = train.dataset if isinstance(train, DataLoader) else train
    return Dataset(
        name=name if name is not None else type(source).__name__,
        x_train=x_train,
        y_train=y_train,
        x_val=x_train[:0].clone(),
        y_val=y_train[:0].clone(),
        x_test=x_test,
        y_test=y_test,
        n_classes=n_classes,
        image_shape=_image_shape(shape, int(x_train.shape[1])),
        origin=origin,
    )


def _user_code(spec: str, doing: str, call: Callable[[], R]) -> R:
    """``call()``; an exception raised in the user's code becomes one line saying where."""
    try:
        return call()
    except InsituError:
        raise
    except Exception as err:
        last = traceback.extract_tb(err.__traceback__)[-1]
        at = f" ({Path(last.filename).name} line {last.lineno})"
        raise ConfigError(f"data {spec!r}: {doing} raised {type(err).__name__}{at}: {err}") from err


def _import_module(spec: str, module: str) -> Any:
    # As `python -m` does: modules in the working directory are importable.
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return _user_code(spec, f"importing {module}", lambda: importlib.import_module(module))
    except ConfigError as err:
        cause = err.__cause__
        if isinstance(cause, ModuleNotFoundError):
            missing = cause.name or module
            if module == missing or module.startswith(f"{missing}."):
                raise ConfigError(
                    f"data {spec!r}: no module named {missing!r} (run from the folder that holds "
                    "it, or install it)"
                ) from None
        raise


def import_data(spec: str) -> Dataset:
    """The data named by ``spec``, ``module:attribute`` (the attribute may be dotted): a pair
    ``(train, test)`` of torch Datasets or DataLoaders, an insitu :class:`Dataset`, or a
    function taking no arguments that returns either. The data is named ``spec``.

    Raises:
        ConfigError: a malformed ``spec``, a module or attribute that does not exist, or what
            it names is none of the above (or holds malformed items, see :func:`from_torch`).
    """
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name.strip() or not attr.strip():
        raise ConfigError(f"data {spec!r}: expected module:attribute ({_EXAMPLE})")
    obj = _import_module(spec, module_name.strip())
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"data {spec!r}: {getattr(obj, '__name__', module_name)} has no attribute {part!r}"
            )
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, TorchDataset | DataLoader | Dataset | type):
        try:
            inspect.signature(obj).bind()
        except TypeError:
            raise ConfigError(
                f"data {spec!r} is a function that needs arguments {inspect.signature(obj)}; "
                "name one that takes none (or a (train, test) pair)"
            ) from None
        except ValueError:  # no signature to read (a builtin): let the call say
            pass
        obj = _user_code(spec, f"{attr}()", obj)
    if isinstance(obj, Dataset):
        return dataclasses.replace(obj, name=spec, origin=obj.origin or f"Dataset {obj.name!r}")
    what = f"data {spec!r} (what it names or returns)"
    return _user_code(spec, "reading its items", lambda: as_dataset(obj, name=spec, what=what))


def as_dataset(data: Any, *, name: str | None = None, what: str = "data") -> Dataset:
    """``data`` as a :class:`Dataset`: one already, or a pair ``(train, test)`` of torch
    Datasets or DataLoaders (:func:`from_torch`, with ``name``)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 2:
        return from_torch(data[0], data[1], name=name)
    raise ConfigError(
        f"{what} must be a pair (train, test) of torch Datasets or DataLoaders, or an insitu "
        f"Dataset; got {type(data).__name__}"
    )
