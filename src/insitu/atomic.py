"""Atomic file writes: a reader sees the old file or the new one, never half of one.

A write that fails for want of space or permission raises one StorageError naming the
directory and what is kept; the temporary it was writing is removed.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from insitu.errors import ConfigError, StorageError

# Faults of the device, not of the writer: these become a StorageError wherever they arise.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
# A writer that loses the errno (torch.save's zip writer raises a bare RuntimeError) is taken
# to have run out of space when less than this, or the previous file's size, is free.
LOW_SPACE_BYTES = 1 << 20


def storage_error(err: OSError, target: Path) -> StorageError:
    """The one-line StorageError for ``err``, met while writing (or making) ``target``."""
    where = target.parent
    if err.errno in NO_SPACE:
        what = "no space left" if err.errno == errno.ENOSPC else "the disk quota is exceeded"
        kept = (
            f"the last complete {target.name} is kept"
            if target.is_file()
            else f"no partial {target.name} is left"
        )
        return StorageError(
            f"{what} on the device holding {where} while writing {target.name}; {kept}",
            where,
            no_space=True,
        )
    reason = err.strerror or type(err).__name__
    if err.errno in NOT_WRITABLE:
        return StorageError(f"cannot write in {where} ({reason.lower()})", where)
    return StorageError(f"cannot write {target} ({reason.lower()})", where)


def _short_of_space(target: Path) -> bool:
    """Whether the device holding ``target`` lacks room for another file of its size."""
    try:
        stat = os.statvfs(target.parent)
        need = max(LOW_SPACE_BYTES, target.stat().st_size if target.is_file() else 0)
    except (OSError, AttributeError):  # AttributeError: no statvfs on this platform
        return False
    return stat.f_bavail * stat.f_frsize < need


def make_dir(path: Path, option: str, need: str = "a directory") -> Path:
    """Make directory ``path`` (and its parents), given by command-line ``option``.

    A file in the way is a ConfigError; a device that refuses is a StorageError.
    """
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                what = f"{option} {path}" if part == path else f"{part} (in {option} {path})"
                raise ConfigError(f"{what} is a file, not a directory: give {need}")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        # The directory that refused is the deepest one that exists.
        existing = next((p for p in path.parents if p.is_dir()), path.parent)
        raise storage_error(err, existing / path.relative_to(existing).parts[0]) from err
    return path


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Writers that want a file name (matplotlib, torch.save) write to the yielded path.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
        os.close(fd)
    except OSError as err:
        raise storage_error(err, target) from err
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as err:
            if err.errno in NO_SPACE | NOT_WRITABLE:
                raise storage_error(err, target) from err
            raise
        except Exception as err:
            if _short_of_space(target):
                raise storage_error(OSError(errno.ENOSPC, str(err)), target) from err
            raise
        try:
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, target)
        except OSError as err:
            raise storage_error(err, target) from err
    finally:
        tmp_path.unlink(missing_ok=True)


def _write(path: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], object]) -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        write(fh)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    _write(path, "wb", lambda fh: fh.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _write(path, "w", lambda fh: fh.write(text))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")
