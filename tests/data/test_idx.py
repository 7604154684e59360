"""IDX parser: hand-written files, every type code, gzip, caching and malformed input."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insitu.data import idx
from insitu.data.idx import IDX_DTYPES, parse_idx, read_idx
from insitu.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# type code -> (big-endian struct letter, numpy dtype) used to write test files by hand.
CODES: dict[int, tuple[str, np.dtype[Any]]] = {
    0x08: ("B", np.dtype(np.uint8)),
    0x09: ("b", np.dtype(np.int8)),
    0x0B: ("h", np.dtype(np.int16)),
    0x0C: ("i", np.dtype(np.int32)),
    0x0D: ("f", np.dtype(np.float32)),
    0x0E: ("d", np.dtype(np.float64)),
}


def encode(code: int, shape: tuple[int, ...], values: Sequence[float]) -> bytes:
    """IDX bytes written with struct alone, independent of the parser under test."""
    letter = CODES[code][0]
    header = struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{len(values)}{letter}", *values)


def test_uint8_three_dims_roundtrip_raw_file(tmp_path: Path) -> None:
    values = list(range(24))
    path = tmp_path / "cube-idx3-ubyte"
    path.write_bytes(encode(0x08, (2, 3, 4), values))
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.shape == (2, 3, 4)
    assert array[1, 2, 3] == 23  # C order: last index fastest
    np.testing.assert_array_equal(array.ravel(), values)


def test_literal_bytes_labels_file(tmp_path: Path) -> None:
    # Header spelled out: magic 0x00000801 (uint8, 1 dim), count 3, then the labels.
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x03" + b"\x05\x00\x04")
    np.testing.assert_array_equal(read_idx(path), [5, 0, 4])


def test_gzipped_file_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    payload = encode(0x08, (3, 2), [1, 2, 3, 4, 5, 255])
    (tmp_path / "a.gz").write_bytes(gzip.compress(payload))
    (tmp_path / "b.bin").write_bytes(gzip.compress(payload))  # gzip without .gz suffix
    (tmp_path / "c.gz").write_bytes(payload)  # raw despite the suffix
    for name in ("a.gz", "b.bin", "c.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), [[1, 2], [3, 4], [5, 255]])


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_type_code_roundtrips_in_native_order(tmp_path: Path, code: int) -> None:
    values: list[float] = [-3, 0, 1, 7, 100, -128] if code != 0x08 else [0, 1, 7, 100, 200, 255]
    if code in (0x0D, 0x0E):
        values = [-1.5, 0.0, 0.25, 3.0e3, 1.0e-3, 7.0]
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(encode(code, (3, 2), values)))
    array = read_idx(path)
    assert array.dtype == CODES[code][1]  # native byte order, not big-endian
    assert array.dtype.isnative
    np.testing.assert_allclose(array.ravel(), np.array(values, dtype=CODES[code][1]))


def test_the_tests_cover_every_known_type_code() -> None:
    assert set(IDX_DTYPES) == set(CODES)


@settings(max_examples=40, deadline=None)
@given(
    code=st.sampled_from(sorted(CODES)),
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
)
def test_parse_matches_struct_encoding(code: int, shape: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    dtype = CODES[code][1]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        expected = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=dtype)
    else:
        expected = rng.standard_normal(n).astype(dtype)
    array = parse_idx(encode(code, shape, expected.tolist()))
    assert array.shape == shape
    np.testing.assert_array_equal(array.ravel(), expected)


def test_arrays_are_cached_read_only_and_refreshed_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "v.idx"
    path.write_bytes(encode(0x08, (2,), [1, 2]))
    first = read_idx(path)
    assert read_idx(path) is first  # served from the in-process cache
    assert read_idx(tmp_path / "." / "v.idx") is first  # keyed by the resolved path
    with pytest.raises(ValueError):
        first[0] = 9  # shared between callers, so it must not be writable
    path.write_bytes(encode(0x08, (3,), [7, 8, 9]))
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])
    idx.clear_idx_cache()
    assert read_idx(path) is not first


def test_real_mnist_headers() -> None:
    mnist = SHARED / "mnist"
    assert mnist.is_dir(), f"the shared MNIST files are missing: expected them in {mnist}"
    images = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert labels[0] == 7  # the first MNIST test digit is a 7


GOOD = encode(0x08, (2, 2), [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + GOOD[4:], "bad magic"),
        (b"\x00\x07\x08\x01" + GOOD[4:], "bad magic"),
        (b"\x00\x00\x0a\x02" + GOOD[4:], "unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02", "truncated IDX header"),
        (GOOD[:-1], "truncated"),
        (GOOD + b"\x00", "trailing bytes"),
        (gzip.compress(GOOD)[:-6], "gzip"),
    ],
    ids=[
        "empty",
        "two-bytes",
        "magic-first-byte",
        "magic-second-byte",
        "type-code",
        "short-header",
        "short-data",
        "trailing-data",
        "truncated-gzip",
    ],
)
def test_malformed_files_raise_data_error_naming_the_file(
    tmp_path: Path, data: bytes, needle: str
) -> None:
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert needle in message


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.idx"
    with pytest.raises(DataError, match=r"nope\.idx"):
        read_idx(path)
