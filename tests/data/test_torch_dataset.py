"""Torch datasets as insitu's Dataset: conversion, the content hash, import paths, and the
one-line errors for malformed data."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, TensorDataset
from torch.utils.data import Dataset as TorchDataset

from insitu.data import Dataset, content_sha256, from_torch, import_data, load_dataset
from insitu.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def pictures(n: int, seed: int = 0) -> TensorDataset:
    """``n`` random 1x4x3 pictures in [0, 1] with classes 0..2."""
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(
        torch.rand(n, 1, 4, 3, generator=g), torch.randint(0, 3, (n,), generator=g)
    )


class Items(TorchDataset[Any]):
    """A map-style dataset returning the given items as they are."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


class Stream(IterableDataset[Any]):
    def __iter__(self) -> Any:
        yield torch.zeros(3), 0


# -- conversion --------------------------------------------------------------------------------


def test_a_tensor_dataset_becomes_flat_float_rows_and_int_classes() -> None:
    train, test = pictures(20), pictures(8, seed=1)
    ds = from_torch(train, test)
    assert ds.x_train.dtype == torch.float32 and ds.x_train.shape == (20, 12)
    assert torch.equal(ds.x_train, train.tensors[0].reshape(20, 12))
    assert torch.equal(ds.y_test, test.tensors[1])
    assert ds.image_shape == (4, 3)  # one-channel pictures keep their shape
    largest = max(int(train.tensors[1].max()), int(test.tensors[1].max()))
    assert ds.n_classes == largest + 1
    assert ds.name == "TensorDataset"
    assert ds.origin == "torch.utils.data.dataset.TensorDataset"
    assert len(ds.y_val) == 0 and ds.x_val.shape == (0, 12)


def test_items_of_any_map_style_dataset_read_like_a_tensor_dataset() -> None:
    train = pictures(10)
    x, y = train.tensors
    # The same samples as tensors, NumPy arrays, NumPy integers, Python ints, 0-d tensors.
    items = [
        (x[i].numpy() if i % 2 else x[i], [int(y[i]), np.int64(y[i]), y[i]][i % 3])
        for i in range(10)
    ]
    mine = from_torch(Items(items), pictures(5, seed=1), name="mine", n_classes=3)
    reference = from_torch(train, pictures(5, seed=1), n_classes=3)
    assert torch.equal(mine.x_train, reference.x_train)
    assert torch.equal(mine.y_train, reference.y_train)
    assert mine.name == "mine"
    assert mine.origin is not None and mine.origin.endswith(
        "Items (train), torch.utils.data.dataset.TensorDataset (test)"
    )
    assert content_sha256(mine) == content_sha256(reference)


def test_a_loader_is_read_through_its_dataset_whatever_its_order() -> None:
    train, test = pictures(30), pictures(10, seed=1)
    loader = DataLoader(train, batch_size=7, shuffle=True)
    ds = from_torch(loader, DataLoader(test, batch_size=4))
    assert torch.equal(ds.y_train, train.tensors[1])  # index order, not the loader's shuffle
    assert ds.origin == "DataLoader over torch.utils.data.dataset.TensorDataset"
    assert content_sha256(ds) == content_sha256(from_torch(train, test))


def test_vectors_and_colour_pictures_become_one_row() -> None:
    g = torch.Generator().manual_seed(0)
    vectors = TensorDataset(torch.rand(6, 5, generator=g), torch.tensor([0, 1, 1, 0, 1, 0]))
    assert from_torch(vectors, vectors).image_shape == (1, 5)
    colour = TensorDataset(torch.rand(4, 3, 2, 2, generator=g), torch.tensor([0, 1, 0, 1]))
    ds = from_torch(colour, colour)
    assert ds.image_shape == (1, 12) and ds.n_features == 12


# -- the content hash --------------------------------------------------------------------------


def test_the_hash_sees_every_value_and_label_but_not_the_name() -> None:
    ds = from_torch(pictures(12), pictures(6, seed=1))
    base = content_sha256(ds)
    assert len(base) == 64 and int(base, 16) >= 0
    assert content_sha256(dataclasses.replace(ds, name="other", origin=None)) == base
    x = ds.x_test.clone()
    x[5, 11] = float(x[5, 11]) + 1e-6
    assert content_sha256(dataclasses.replace(ds, x_test=x)) != base
    y = ds.y_train.clone()
    y[0] = (int(y[0]) + 1) % 3
    assert content_sha256(dataclasses.replace(ds, y_train=y)) != base
    # The same numbers split differently are other data.
    moved = dataclasses.replace(
        ds,
        x_train=ds.x_train[:-1],
        y_train=ds.y_train[:-1],
        x_test=torch.cat([ds.x_train[-1:], ds.x_test]),
        y_test=torch.cat([ds.y_train[-1:], ds.y_test]),
    )
    assert content_sha256(moved) != base


def test_the_hash_covers_target_patterns() -> None:
    braille = load_dataset("braille", options={"train_per_class": 4, "test_per_class": 2})
    assert braille.targets is not None
    other = dataclasses.replace(braille, targets=1.0 - braille.targets)
    assert content_sha256(braille) != content_sha256(other)


def test_the_hash_is_the_same_in_another_process() -> None:
    code = (
        "import torch\n"
        "from torch.utils.data import TensorDataset\n"
        "from insitu.data import content_sha256, from_torch\n"
        "g = torch.Generator().manual_seed(0)\n"
        "train = TensorDataset(torch.rand(20, 1, 4, 3, generator=g), "
        "torch.randint(0, 3, (20,), generator=g))\n"
        "g = torch.Generator().manual_seed(1)\n"
        "test = TensorDataset(torch.rand(8, 1, 4, 3, generator=g), "
        "torch.randint(0, 3, (8,), generator=g))\n"
        "print(content_sha256(from_torch(train, test)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == content_sha256(from_torch(pictures(20), pictures(8, seed=1)))


# -- malformed data: one line naming what is wrong ---------------------------------------------

GOOD = (torch.zeros(3), 1)


@pytest.mark.parametrize(
    ("items", "words"),
    [
        (
            [torch.zeros(3)],
            "train data item 0 must be a pair (x, y) of a tensor and a class, got Tensor",
        ),
        ([GOOD, (torch.zeros(3), 1, 2)], "train data item 1 must be a pair (x, y)"),
        ([("abc", 1)], "train data item 0: x must be a tensor, got str"),
        ([(Image.new("L", (2, 2)), 0)], "e.g. ToTensor()"),
        ([(np.array(["a"]), 0)], "x must hold numbers"),
        ([(torch.zeros(0), 0)], "x must be a non-empty real tensor"),
        ([(torch.zeros(3, dtype=torch.complex64), 0)], "non-empty real tensor"),
        (
            [GOOD, (torch.zeros(3), 0.5)],
            "train data item 1: y must be an integer class, got float 0.5",
        ),
        ([(torch.zeros(3), True)], "y must be an integer class, got bool"),
        (
            [(torch.zeros(3), torch.tensor(1.0))],
            "y must be one integer class, got a torch.float32 tensor",
        ),
        ([(torch.zeros(3), torch.tensor([1, 2]))], "of shape (2,)"),
        ([GOOD, (torch.zeros(4), 1)], "train data item 1: x has shape (4,), but item 0 has (3,)"),
        ([GOOD, (torch.tensor([0.0, float("nan"), 1.0]), 0)], "NaN or infinite"),
        ([(torch.zeros(3), -1)], "classes must be 0, 1, 2, ..., got -1"),
        ([], "holds no samples"),
    ],
)
def test_malformed_items_are_named(items: list[Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_torch(Items(items), Items([GOOD]))
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("train", "test", "words"),
    [
        (Stream(), Items([GOOD]), "train data is an IterableDataset"),
        (Items([GOOD]), 42, "test data must be a torch Dataset or DataLoader"),
        (Items([GOOD]), Items([(torch.zeros(5), 0)]), "test data: inputs of shape (5,)"),
        (
            TensorDataset(torch.zeros(4, 3), torch.zeros(4)),
            Items([GOOD]),
            "its second tensor must be integer classes of shape (4,), got torch.float32",
        ),
    ],
)
def test_malformed_datasets_are_named(train: Any, test: Any, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_torch(train, test)
    assert words in str(info.value)


def test_n_classes_must_cover_every_class() -> None:
    with pytest.raises(ConfigError, match="n_classes = 2 must be an integer above the largest"):
        from_torch(Items([(torch.zeros(3), 2)]), Items([GOOD]), n_classes=2)


# -- import paths ------------------------------------------------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a module into a fresh working directory; returns a function making one by its
    source, which gives the module's (unique) name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])

    def write(source: str) -> str:
        name = f"userdata_{uuid.uuid4().hex[:12]}"
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


USER_DATA = """
import torch
from torch.utils.data import DataLoader, TensorDataset

g = torch.Generator().manual_seed(0)
train = TensorDataset(torch.rand(12, 1, 4, 3, generator=g), torch.randint(0, 3, (12,), generator=g))
test = TensorDataset(torch.rand(6, 1, 4, 3, generator=g), torch.randint(0, 3, (6,), generator=g))
pair = (train, test)

def make():
    return train, DataLoader(test, batch_size=4)

class Holder:
    pair = (train, test)

def insitu_dataset():
    from insitu.data import from_torch
    return from_torch(train, test, name="mine")

def needs(n, seed=0):
    return pair

def broken():
    return {}["missing"]

def single():
    return train
"""


@pytest.mark.parametrize("attr", ["pair", "make", "Holder.pair", "insitu_dataset"])
def test_an_import_path_names_data_in_the_working_directory(user_module: Any, attr: str) -> None:
    module = user_module(USER_DATA)
    ds = import_data(f"{module}:{attr}")
    assert isinstance(ds, Dataset)
    assert ds.name == f"{module}:{attr}"
    assert len(ds.y_train) == 12 and len(ds.y_test) == 6
    reference = import_data(f"{module}:pair")
    assert content_sha256(ds) == content_sha256(reference)
    assert ds.origin is not None


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("{m}", "expected module:attribute (e.g. mypkg.data:make_data)"),
        (":pair", "expected module:attribute"),
        ("{m}:", "expected module:attribute"),
        ("no_such_module_xyz:pair", "no module named 'no_such_module_xyz' (run from the folder"),
        ("{m}:nothing", "has no attribute 'nothing'"),
        ("{m}:Holder.nothing", "Holder has no attribute 'nothing'"),
        ("{m}:needs", "is a function that needs arguments (n, seed=0)"),
        ("{m}:broken", "broken() raised KeyError ({m}.py line"),
        (
            "{m}:single",
            "must be a pair (train, test) of torch Datasets or DataLoaders, or an "
            "insitu Dataset; got TensorDataset",
        ),
    ],
)
def test_a_bad_import_path_is_named(user_module: Any, spec: str, words: str) -> None:
    module = user_module(USER_DATA)
    with pytest.raises(ConfigError) as info:
        import_data(spec.format(m=module))
    assert words.format(m=module) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_module_failing_to_import_says_why(user_module: Any) -> None:
    missing = user_module("import not_installed_pkg_xyz\n")
    with pytest.raises(ConfigError, match=f"importing {missing} raised ModuleNotFoundError"):
        import_data(f"{missing}:data")
    raising = user_module("x = 1\nraise RuntimeError('no data here')\n")
    with pytest.raises(ConfigError, match=rf"{raising}.py line 2\): no data here"):
        import_data(f"{raising}:x")
