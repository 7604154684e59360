"""load_dataset on the real files: shapes, splits, file lookup, checksums and downloads.

The real MNIST and Fashion-MNIST files are read from ``../shared/data`` beside the repository.
Downloads are served by a local ``http.server`` on 127.0.0.1 (``conftest.py``); any other
URL fails the test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from insitu.data import (
    ENV_VAR,
    IDX_FILES,
    SOURCES,
    Dataset,
    candidate_paths,
    load_dataset,
    locate_file,
    sha256_file,
)
from insitu.errors import ConfigError, DataError, UnknownNameError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LABELS = "train-labels-idx1-ubyte.gz"  # the smallest file (28 KB), for cheap lookup tests
Serve = Callable[..., str]  # the conftest's serve fixture: folder -> base URL


@pytest.fixture(scope="module")
def shared() -> Path:
    """The folder holding the original files; the tests need it and do not skip without it."""
    for folder in ("mnist", "fashion_mnist"):
        for filename in IDX_FILES.values():
            if not (SHARED / folder / filename).is_file():
                pytest.fail(
                    f"real data file {SHARED / folder / filename} is missing; the data tests "
                    f"expect the original MNIST and Fashion-MNIST files in {SHARED}/<dataset>/"
                )
    return SHARED


@pytest.fixture(autouse=True)
def offline_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private HOME (so ~/.cache stays clean) and no INSITU_DATA (conftest: no internet)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return home


def link_files(src: Path, dest: Path, names: list[str] | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names or list(IDX_FILES.values()):
        (dest / name).symlink_to(src / name)
    return dest


def corrupt_copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def row_digests(x: torch.Tensor) -> list[bytes]:
    """Sorted digests of the rows: equal lists mean equal multisets of rows, exactly."""
    return sorted(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x.numpy())


# --- digits ------------------------------------------------------------------------------


def test_digits_shapes_range_and_stratified_split() -> None:
    d = load_dataset("digits")
    assert (d.name, d.n_classes, d.image_shape, d.n_features) == ("digits", 10, (8, 8), 64)
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.x_val.shape == (0, 64) and d.y_val.shape == (0,)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    assert set(d.y_train.tolist()) == set(range(10))
    assert torch.bincount(d.y_test, minlength=10).tolist() == [
        36,
        36,
        35,
        37,
        36,
        37,
        36,
        36,
        35,
        36,
    ]


def test_digits_split_never_changes() -> None:
    a, b = load_dataset("digits", seed=1), load_dataset("digits", seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    # Pinned: a change here changes every published digits result.
    assert a.y_train[:10].tolist() == [3, 9, 1, 3, 1, 9, 4, 4, 2, 8]
    assert a.y_test[:10].tolist() == [7, 6, 3, 7, 7, 3, 2, 8, 9, 3]


def test_dataset_is_frozen_and_has_a_short_repr() -> None:
    d = load_dataset("digits", limit_train=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"  # type: ignore[misc]
    assert repr(d) == (
        "Dataset(name='digits', train=5, val=0, test=360, n_features=64, n_classes=10, "
        "image_shape=(8, 8))"
    )


def test_dataset_rejects_inconsistent_tensors() -> None:
    x, y = torch.zeros(3, 4), torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ConfigError, match="y_val"):
        Dataset("toy", x, y, x, y[:2], x, y, n_classes=2, image_shape=(2, 2))
    with pytest.raises(ConfigError, match="x_train"):
        Dataset("toy", x.double(), y, x, y, x, y, n_classes=2, image_shape=(2, 2))


# --- validation split and limits ---------------------------------------------------------


def test_validation_split_is_deterministic_and_a_partition() -> None:
    full = load_dataset("digits")
    a = load_dataset("digits", validation_fraction=0.2, seed=7)
    b = load_dataset("digits", validation_fraction=0.2, seed=7)
    c = load_dataset("digits", validation_fraction=0.2, seed=8)
    assert len(a.y_val) == round(0.2 * 1437) and len(a.y_train) + len(a.y_val) == 1437
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_val, c.x_val)
    assert torch.equal(a.x_test, full.x_test)  # the test set is never touched
    # Train and validation together are exactly the original training rows.
    together = torch.cat([a.x_train, a.x_val])
    assert row_digests(together) == row_digests(full.x_train)
    assert sorted(torch.cat([a.y_train, a.y_val]).tolist()) == sorted(full.y_train.tolist())


def test_limits_keep_the_first_samples_after_the_split() -> None:
    split = load_dataset("digits", validation_fraction=0.1, seed=3)
    small = load_dataset("digits", validation_fraction=0.1, seed=3, limit_train=50, limit_test=20)
    assert torch.equal(small.x_train, split.x_train[:50])
    assert torch.equal(small.y_test, split.y_test[:20])
    assert torch.equal(small.x_val, split.x_val)
    assert len(load_dataset("digits", limit_test=10_000).y_test) == 360


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validation_fraction": 1.0},
        {"validation_fraction": -0.1},
        {"validation_fraction": float("nan")},
        {"limit_train": 0},
        {"limit_test": -5},
    ],
)
def test_bad_options_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        load_dataset("digits", **kwargs)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_dataset("cifar-10")
    assert (
        str(info.value)
        == "unknown dataset 'cifar-10'; valid datasets: braille, digits, fashion-mnist, mnist"
    )


# --- the real MNIST and Fashion-MNIST files ----------------------------------------------


def test_mnist_real_files(shared: Path) -> None:
    d = load_dataset("mnist", data_dir=shared, download=False)
    assert (d.name, d.n_classes, d.image_shape, d.n_features) == ("mnist", 10, (28, 28), 784)
    assert d.x_train.shape == (60000, 784) and d.y_train.shape == (60000,)
    assert d.x_test.shape == (10000, 784) and d.y_test.shape == (10000,)
    assert d.x_train.dtype == torch.float32 and d.y_test.dtype == torch.int64
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    assert int(d.y_train.min()) == 0 and int(d.y_train.max()) == 9
    # Known facts about MNIST: the first digits, and 6742 ones in the training set.
    assert d.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert d.y_test[0] == 7
    assert torch.bincount(d.y_train)[1] == 6742
    # Pixels are k/255 for integer k.
    k = d.x_test[:100] * 255
    assert torch.equal(k, k.round())


def test_fashion_mnist_real_files(shared: Path) -> None:
    d = load_dataset("fashion-mnist", data_dir=shared, download=False)
    assert d.name == "fashion-mnist" and d.image_shape == (28, 28)
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert float(d.x_test.min()) == 0.0 and float(d.x_test.max()) == 1.0
    # Fashion-MNIST is balanced (6000 / 1000 per class); the first item is an ankle boot (9).
    assert torch.bincount(d.y_train).tolist() == [6000] * 10
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
    assert d.y_train[0] == 9
    assert load_dataset("fashion_mnist", data_dir=shared, download=False).name == "fashion-mnist"


def test_mnist_validation_split(shared: Path) -> None:
    full = load_dataset("mnist", data_dir=shared, download=False)
    a = load_dataset("mnist", data_dir=shared, download=False, validation_fraction=0.1, seed=5)
    b = load_dataset("mnist", data_dir=shared, download=False, validation_fraction=0.1, seed=5)
    assert a.x_train.shape == (54000, 784) and a.x_val.shape == (6000, 784)
    assert torch.equal(a.y_val, b.y_val) and torch.equal(a.x_val, b.x_val)
    together = torch.cat([a.x_train, a.x_val])
    assert row_digests(together) == row_digests(full.x_train)


# --- lookup ------------------------------------------------------------------------------


def test_data_dir_flat_and_dataset_folder_layouts(shared: Path) -> None:
    flat = locate_file("mnist", LABELS, data_dir=shared / "mnist", download=False)
    nested = locate_file("mnist", LABELS, data_dir=shared, download=False)
    assert flat == shared / "mnist" / LABELS
    assert nested == shared / "mnist" / LABELS
    fashion = locate_file("fashion-mnist", LABELS, data_dir=shared, download=False)
    assert fashion == shared / "fashion_mnist" / LABELS


def test_insitu_data_environment_variable(shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(shared))
    d = load_dataset("fashion-mnist", download=False, limit_train=10)
    assert d.x_train.shape == (10, 784)
    monkeypatch.setenv(ENV_VAR, str(shared / "mnist"))
    assert locate_file("mnist", LABELS, download=False) == shared / "mnist" / LABELS


def test_search_order_is_data_dir_then_env_then_cache(
    shared: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline_home: Path
) -> None:
    explicit = link_files(shared / "mnist", tmp_path / "explicit", [LABELS])
    env = link_files(shared / "mnist", tmp_path / "env" / "mnist", [LABELS])
    cache = link_files(shared / "mnist", offline_home / ".cache" / "insitu" / "mnist", [LABELS])
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert candidate_paths("mnist", LABELS, explicit) == [
        explicit / LABELS,
        explicit / "mnist" / LABELS,
        tmp_path / "env" / LABELS,
        env / LABELS,
        cache / LABELS,
    ]
    assert locate_file("mnist", LABELS, data_dir=explicit, download=False) == explicit / LABELS
    assert locate_file("mnist", LABELS, download=False) == env / LABELS
    monkeypatch.delenv(ENV_VAR)
    assert locate_file("mnist", LABELS, download=False) == cache / LABELS


def test_other_datasets_file_in_a_flat_folder_is_skipped_not_called_corrupt(
    shared: Path, tmp_path: Path
) -> None:
    # MNIST and Fashion-MNIST share file names; a flat folder of one is not the other.
    folder = link_files(shared / "fashion_mnist", tmp_path / "flat", [LABELS])
    with pytest.raises(DataError) as info:
        locate_file("mnist", LABELS, data_dir=folder, download=False)
    assert f"{folder / LABELS} (holds the Fashion-MNIST file, skipped)" in str(info.value)


# --- checksums ---------------------------------------------------------------------------


def test_corrupted_file_names_path_and_both_checksums(shared: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    names = [n for n in IDX_FILES.values() if n != LABELS]
    link_files(shared / "mnist", folder, names)
    bad = corrupt_copy(shared / "mnist" / LABELS, folder / LABELS)
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=folder, download=False)
    message = str(info.value)
    assert str(bad) in message
    assert SOURCES["mnist"].known(LABELS).sha256 in message
    assert actual in message
    assert "Delete it" in message and "re-download" in message


def test_corrupted_file_is_reported_even_when_downloads_are_allowed(
    shared: Path, tmp_path: Path, dead_url: str
) -> None:
    bad = corrupt_copy(shared / "mnist" / LABELS, tmp_path / "data" / LABELS)
    with pytest.raises(DataError, match="checksum mismatch"):
        locate_file("mnist", LABELS, data_dir=bad.parent, mirrors=[dead_url])


def test_checksums_are_remembered_until_the_file_changes(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / LABELS
    shutil.copyfile(shared / "mnist" / LABELS, path)
    digest = sha256_file(path)
    assert digest == SOURCES["mnist"].known(LABELS).sha256

    def no_hashing(*args: object) -> object:
        raise AssertionError("rehashed a file that did not change")

    monkeypatch.setattr(hashlib, "file_digest", no_hashing)
    assert sha256_file(path) == digest
    assert locate_file("mnist", LABELS, data_dir=tmp_path, download=False) == path
    monkeypatch.undo()
    corrupt_copy(shared / "mnist" / LABELS, path)  # new content, new size/mtime key
    assert sha256_file(path) != digest


# --- missing files and downloads ---------------------------------------------------------


def test_missing_offline_lists_every_place_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_home: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    (tmp_path / "mine").mkdir()  # a data_dir must exist; an empty one is searched
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=tmp_path / "mine", download=False)
    message = str(info.value)
    name = "train-images-idx3-ubyte.gz"
    for place in (
        tmp_path / "mine" / name,
        tmp_path / "mine" / "mnist" / name,
        tmp_path / "env" / name,
        tmp_path / "env" / "mnist" / name,
        offline_home / ".cache" / "insitu" / "mnist" / name,
    ):
        assert str(place) in message
    for url in SOURCES["mnist"].urls(name):
        assert url in message
    assert "download=False" in message
    assert "--data-dir" in message and ENV_VAR in message


def test_download_into_the_user_cache(
    shared: Path, offline_home: Path, serve: Serve, dead_url: str
) -> None:
    d = load_dataset("mnist", mirrors=[dead_url, serve(shared / "mnist")], limit_test=100)
    cache = offline_home / ".cache" / "insitu" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(IDX_FILES.values())  # no temp files
    for name in IDX_FILES.values():
        assert sha256_file(cache / name) == SOURCES["mnist"].known(name).sha256
    assert d.x_train.shape == (60000, 784) and d.y_train[0] == 5
    # Now cached: found again without any network.
    assert locate_file("mnist", LABELS, download=False) == cache / LABELS


def test_download_into_data_dir(
    shared: Path, tmp_path: Path, offline_home: Path, serve: Serve
) -> None:
    url = serve(shared / "fashion_mnist")
    path = locate_file("fashion-mnist", LABELS, data_dir=tmp_path / "d", mirrors=[url])
    assert path == tmp_path / "d" / "fashion_mnist" / LABELS
    assert sha256_file(path) == SOURCES["fashion-mnist"].known(LABELS).sha256
    assert not (offline_home / ".cache").exists()


def test_corrupted_download_is_rejected_and_leaves_nothing(
    shared: Path, tmp_path: Path, serve: Serve
) -> None:
    served = tmp_path / "served"
    corrupt_copy(shared / "mnist" / LABELS, served / LABELS)
    dest = tmp_path / "d"
    url = serve(served)
    with pytest.raises(DataError) as info:
        locate_file("mnist", LABELS, data_dir=dest, mirrors=[url])
    message = str(info.value)
    served_sha256 = hashlib.sha256((served / LABELS).read_bytes()).hexdigest()
    assert f"{url}{LABELS}: SHA256 hash of downloaded file" in message
    assert SOURCES["mnist"].known(LABELS).sha256 in message and served_sha256 in message
    assert "not found" in message  # still says where it looked and how to get the file
    # pooch made the folder to download into; no file, whole or partial, was left in it.
    assert [p for p in dest.rglob("*") if not p.is_dir()] == []


def test_failed_download_reports_each_mirror(tmp_path: Path, serve: Serve, dead_url: str) -> None:
    # Nothing listens on the first mirror; the second serves a folder without the file (404).
    url = serve(tmp_path)
    with pytest.raises(DataError) as info:
        locate_file("mnist", LABELS, data_dir=tmp_path / "d", mirrors=[dead_url, url])
    message = str(info.value)
    assert "404" in message and "Connection refused" in message
