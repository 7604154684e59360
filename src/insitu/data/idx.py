"""Reader for the IDX format, the container of the original MNIST files.

IDX is described on the MNIST page (LeCun, Cortes, Burges; data of LeCun et al. 1998,
"Gradient-based learning applied to document recognition", Proc. IEEE 86(11)) and is
reused unchanged by Fashion-MNIST (Xiao, Rasul, Vollgraf 2017). A file is:

* a 4-byte magic number: two zero bytes, a type code, and the number of dimensions;
* one big-endian uint32 per dimension;
* the data, big-endian, in C (row-major) order.

The published files are gzipped; both gzipped and raw files are read, told apart by the
gzip magic bytes rather than by the file name.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from insitu.errors import DataError

__all__ = ["IDX_DTYPES", "clear_idx_cache", "parse_idx", "read_idx"]

#: IDX type code -> numpy dtype as stored in the file (big-endian for multi-byte types).
IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, *, source: str = "<bytes>") -> npt.NDArray[Any]:
    """Decode raw (already decompressed) IDX bytes into an array in native byte order.

    ``source`` names the origin in error messages. The result is read-only.

    Raises:
        DataError: bad magic number, unknown type code, or a header or data section
            that is shorter or longer than the header promises.
    """
    if len(data) < 4:
        raise DataError(
            f"{source}: not an IDX file: only {len(data)} bytes, too short for a header"
        )
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise DataError(
            f"{source}: not an IDX file: bad magic number 0x{data[:4].hex()} "
            "(an IDX file starts with two zero bytes)"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{source}: unknown IDX type code 0x{code:02X}; known codes: {known}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
            f"the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    stored = IDX_DTYPES[code]
    expected = stored.itemsize * int(np.prod(shape, dtype=np.int64))
    found = len(data) - header_len
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise DataError(
            f"{source}: IDX file {what}: shape {tuple(shape)} of {stored.name} needs "
            f"{expected} data bytes, found {found}"
        )
    array = np.frombuffer(data, dtype=stored, offset=header_len).reshape(shape)
    if stored.byteorder == ">":  # multi-byte types: convert once so callers get native order
        array = array.astype(stored.newbyteorder("="))
    array.setflags(write=False)
    return array


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read an IDX file, gzipped or raw, into a read-only numpy array.

    Parsed arrays are cached in-process, keyed by the resolved path together with the
    file's size and modification time, so a second load of the same file costs nothing
    while a replaced file is read afresh. The array is read-only because it is shared
    between callers; copy it before changing it.

    Raises:
        DataError: the file cannot be read, is not valid gzip, or is not valid IDX;
            the message names the file.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        st = resolved.stat()
    except OSError as exc:
        raise DataError(f"{resolved}: cannot read IDX file: {exc.strerror or exc}") from exc
    return _read_idx_cached(str(resolved), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _read_idx_cached(path: str, size: int, mtime_ns: int) -> npt.NDArray[Any]:
    # size and mtime_ns are part of the key only, so that an edited file misses the cache.
    del size, mtime_ns
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file: {exc.strerror or exc}") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: corrupt or truncated gzip data ({exc}); "
                "delete the file and fetch it again"
            ) from exc
    return parse_idx(raw, source=path)


def clear_idx_cache() -> None:
    """Forget every array cached by :func:`read_idx`."""
    _read_idx_cached.cache_clear()
