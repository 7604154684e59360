"""N-MNIST: MNIST digits recorded by an event camera, read from the original binary files.

Orchard, Jayawant, Cohen, Thakor (2015), "Converting static image datasets to spiking
neuromorphic datasets using saccades", Frontiers in Neuroscience 9:437. An ATIS sensor on a
pan-tilt unit makes three saccades (about 100 ms each) in front of each MNIST digit shown on a
monitor; every brightness change is an event. The full dataset (60,000 train / 10,000 test,
folders ``Train/<digit>/<id>.bin`` and ``Test/...``, CC BY-SA 4.0) lives at Mendeley Data,
https://data.mendeley.com/datasets/468j46mzdv/1 (DOI 10.17632/468j46mzdv.1), linked from the
project page https://www.garrickorchard.com/datasets/n-mnist . Each of its sample files is in
the format read by :func:`read_nmnist_events`.

File format: a flat list of events, 5 bytes (40 bits) each, big-endian bit packing:

* bits 39-32 (byte 0): x address in pixels, 0..33;
* bits 31-24 (byte 1): y address in pixels, 0..33;
* bit 23 (top bit of byte 2): polarity, 1 for ON (brighter), 0 for OFF (darker);
* bits 22-0 (rest of byte 2, bytes 3 and 4): timestamp in microseconds from the start of
  the recording (so at most 2**23 - 1 us, about 8.4 s; a recording lasts about 0.3 s).

:func:`load_nmnist` reads the small real subset kept in a folder ``nmnist_small/``: 1000
training samples ``1.bs2``..``1000.bs2`` (MNIST training image ``id - 1``) and 100 test
samples ``60001.bs2``..``60100.bs2`` (MNIST test image ``id - 60001``), labels in
``train1K.txt`` and ``test100.txt`` (a ``#sample #class`` header line, then one
``<id> <label>`` pair per line), and a ``SHA256SUMS`` manifest of every file. The manifest's
own sha256 is pinned here (:data:`NMNIST_SMALL_MANIFEST_SHA256`), so each file used is checked
against a digest that traces back to this code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.data.checksums import verify_sha256
from insitu.data.events import events_to_frame_batch
from insitu.data.sources import ENV_VAR, check_data_dir, default_cache_dir
from insitu.data.spikes import SpikeDataset
from insitu.errors import ConfigError, DataError, check_range

__all__ = [
    "NMNIST_CLASSES",
    "NMNIST_DOI_URL",
    "NMNIST_FOLDER",
    "NMNIST_HOME",
    "NMNIST_LABEL_FILES",
    "NMNIST_MANIFEST",
    "NMNIST_SENSOR",
    "NMNIST_SMALL_MANIFEST_SHA256",
    "NmnistEvents",
    "decode_nmnist_events",
    "load_nmnist",
    "locate_nmnist",
    "nmnist_split_files",
    "read_nmnist_events",
    "read_nmnist_manifest",
]

#: Sensor size (height = y, width = x) in pixels.
NMNIST_SENSOR: tuple[int, int] = (34, 34)
NMNIST_CLASSES = 10
#: Sub-folder holding the small subset, under a data folder or ``~/.cache/insitu``.
NMNIST_FOLDER = "nmnist_small"
#: The checksum manifest of the subset: ``<sha256>  ./<file>`` per line.
NMNIST_MANIFEST = "SHA256SUMS"
#: sha256 of the subset's ``SHA256SUMS`` (1100 samples and the two label files).
NMNIST_SMALL_MANIFEST_SHA256 = "373aa1f98ad578c90367b22297c03a3537bc1259f76bd5634a839e00d1d5f84d"
#: Split -> label file of the subset.
NMNIST_LABEL_FILES: dict[str, str] = {"train": "train1K.txt", "test": "test100.txt"}
#: Where the full dataset lives.
NMNIST_HOME = "https://www.garrickorchard.com/datasets/n-mnist"
NMNIST_DOI_URL = "https://doi.org/10.17632/468j46mzdv.1"

_EVENT_BYTES = 5
_SAMPLE_SUFFIX = ".bs2"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class NmnistEvents:
    """The events of one recording, one array entry per event, in file order.

    ``x`` (pixel column) and ``y`` (pixel row) are uint8, ``p`` the polarity as uint8
    (1 ON, 0 OFF), ``t_us`` the timestamp in microseconds as int64. ``len()`` is the number
    of events.
    """

    x: npt.NDArray[np.uint8]
    y: npt.NDArray[np.uint8]
    p: npt.NDArray[np.uint8]
    t_us: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.t_us.shape[0])


def decode_nmnist_events(data: bytes, *, source: str = "<bytes>") -> NmnistEvents:
    """Decode N-MNIST event bytes (see the module docstring for the layout).

    ``source`` names the origin in error messages.

    Raises:
        DataError: the length is not a multiple of 5 bytes (a truncated or foreign file).
    """
    if len(data) % _EVENT_BYTES:
        raise DataError(
            f"{source}: not an N-MNIST event file: {len(data)} bytes is not a multiple of "
            f"{_EVENT_BYTES} (5 bytes per event); the file is truncated or of another format"
        )
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, _EVENT_BYTES)
    b2 = raw[:, 2].astype(np.int64)
    t_us = ((b2 & 0x7F) << 16) | (raw[:, 3].astype(np.int64) << 8) | raw[:, 4].astype(np.int64)
    return NmnistEvents(
        x=raw[:, 0].copy(),
        y=raw[:, 1].copy(),
        p=(raw[:, 2] >> 7).astype(np.uint8),
        t_us=t_us,
    )


def read_nmnist_events(path: str | os.PathLike[str]) -> NmnistEvents:
    """Read one N-MNIST sample file (``.bin`` of the full dataset, ``.bs2`` of the subset).

    Raises:
        DataError: the file cannot be read or its size is not a multiple of 5 bytes; the
            message names the file.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read N-MNIST file: {exc.strerror or exc}") from exc
    return decode_nmnist_events(data, source=str(p))


def _folder_candidates(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    folders = [f for root in roots for f in (root, root / NMNIST_FOLDER)]
    folders.append(default_cache_dir() / NMNIST_FOLDER)
    return list(dict.fromkeys(folders))


def locate_nmnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the N-MNIST subset: the first of ``data_dir``,
    ``data_dir/nmnist_small``, ``$INSITU_DATA``, ``$INSITU_DATA/nmnist_small`` and
    ``~/.cache/insitu/nmnist_small`` that holds a ``SHA256SUMS`` manifest.

    Raises:
        DataError: no such folder; the message lists every place searched.
    """
    looked: list[str] = []
    for folder in _folder_candidates(data_dir):
        if (folder / NMNIST_MANIFEST).is_file():
            return folder
        looked.append(f"{folder / NMNIST_MANIFEST} (not found)")
    env_note = "" if os.environ.get(ENV_VAR) else f" ({ENV_VAR} is not set)"
    raise DataError(
        f"N-MNIST subset not found. Looked in{env_note}:\n"
        + "\n".join(f"  - {line}" for line in looked)
        + f"\nPoint --data-dir or {ENV_VAR} at a folder holding the '{NMNIST_FOLDER}/' subset "
        "(the .bs2 samples, train1K.txt, test100.txt and SHA256SUMS; the project's shared data "
        f"has one). The full N-MNIST is at {NMNIST_DOI_URL} (project page {NMNIST_HOME})."
    )


def read_nmnist_manifest(folder: Path, pinned: str | None) -> dict[str, str]:
    """File name -> sha256 from ``folder``'s ``SHA256SUMS``, the manifest itself first checked
    against ``pinned`` (None: trusted as it is).

    Raises:
        DataError: the manifest fails its pin, cannot be read or has a malformed line.
    """
    path = folder / NMNIST_MANIFEST
    if pinned is not None:
        verify_sha256(
            path,
            pinned,
            label="the N-MNIST subset's manifest",
            source="pinned in insitu",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read checksum manifest: {exc}") from exc
    digests: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not _HEX64.fullmatch(parts[0]):
            raise DataError(f"{path}:{number}: expected '<sha256>  <file>', got {line!r}")
        name = parts[1].strip().lstrip("*")
        digests[name.removeprefix("./")] = parts[0].lower()
    return digests


def _check_listed(folder: Path, name: str, digests: Mapping[str, str]) -> Path:
    path = folder / name
    if name not in digests:
        raise DataError(f"{path}: not listed in {folder / NMNIST_MANIFEST}, cannot be checked")
    if not path.is_file():
        raise DataError(f"{path}: missing from the N-MNIST subset (listed in its manifest)")
    verify_sha256(
        path,
        digests[name],
        label=f"N-MNIST file {name!r}",
        origin=str(folder / NMNIST_MANIFEST),
        source="from the manifest",
    )
    return path


def _read_labels(path: Path) -> list[tuple[int, int]]:
    """(sample id, label) pairs of a label file, in file order."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read label file: {exc}") from exc
    pairs: list[tuple[int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split()
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise DataError(f"{path}:{number}: expected '<sample id> <label>', got {line!r}")
        sample, label = int(parts[0]), int(parts[1])
        if label >= NMNIST_CLASSES:
            raise DataError(f"{path}:{number}: label {label} outside [0, {NMNIST_CLASSES})")
        pairs.append((sample, label))
    ids = [sample for sample, _ in pairs]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: a sample id is listed more than once")
    return pairs


def nmnist_split_files(
    folder: Path, split: str, digests: Mapping[str, str], limit: int | None = None
) -> list[tuple[Path, int]]:
    """The (sample file, label) pairs of ``split`` ("train" or "test") in label-file order,
    the first ``limit`` of them; the label file and each sample file checked against
    ``digests`` (from :func:`read_nmnist_manifest`).

    Raises:
        DataError: a file is missing, unlisted or fails its checksum, or a label line is
            malformed; the message names the file.
    """
    label_path = _check_listed(folder, NMNIST_LABEL_FILES[split], digests)
    pairs = _read_labels(label_path)[:limit]
    return [
        (_check_listed(folder, f"{sample_id}{_SAMPLE_SUFFIX}", digests), label)
        for sample_id, label in pairs
    ]


def _load_split(
    folder: Path,
    split: str,
    digests: dict[str, str],
    limit: int | None,
    time_steps: int,
    dt_us: float,
    polarity: bool,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = nmnist_split_files(folder, split, digests, limit)
    height, width = NMNIST_SENSOR
    samples: list[npt.NDArray[Any]] = []
    times: list[npt.NDArray[Any]] = []
    units: list[npt.NDArray[Any]] = []
    for index, (path, _) in enumerate(pairs):
        events = read_nmnist_events(path)
        if len(events) and (int(events.x.max()) >= width or int(events.y.max()) >= height):
            raise DataError(
                f"{path}: events outside the {width}x{height} sensor "
                f"(x up to {int(events.x.max())}, y up to {int(events.y.max())})"
            )
        unit = events.y.astype(np.int64) * width + events.x.astype(np.int64)
        if polarity:
            unit += events.p.astype(np.int64) * (height * width)
        samples.append(np.full(len(events), index, dtype=np.int64))
        times.append(events.t_us)
        units.append(unit)
    n_units = (2 if polarity else 1) * height * width
    x = events_to_frame_batch(
        np.concatenate(samples) if samples else np.zeros(0, np.int64),
        np.concatenate(times) if times else np.zeros(0, np.int64),
        np.concatenate(units) if units else np.zeros(0, np.int64),
        n_samples=len(pairs),
        n_units=n_units,
        dt=dt_us,
        time_steps=time_steps,
        dtype=dtype,
    )
    y = torch.tensor([label for _, label in pairs], dtype=torch.int64)
    return x, y


def load_nmnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    time_steps: int = 70,
    dt_us: float = 5000,
    polarity: bool = True,
    limit_train: int | None = None,
    limit_test: int | None = None,
    dtype: torch.dtype = torch.float32,
    manifest_sha256: str | None = NMNIST_SMALL_MANIFEST_SHA256,
) -> SpikeDataset:
    """Load the N-MNIST subset (1000 train / 100 test) as dense spike tensors.

    Events are binned in time from the start of the recording: an event at ``t_us`` lands in
    step ``t_us // dt_us``; events at or after ``time_steps * dt_us`` are dropped. The default
    70 steps of 5 ms (350 ms) cover whole recordings (about 300 ms; at most 336 ms in the
    subset). Events of one pixel and polarity in one step merge into one spike.

    Args:
        data_dir: a folder holding ``nmnist_small/`` (or the subset's files directly);
            see :func:`locate_nmnist` for the other places searched.
        time_steps: T, steps per sample.
        dt_us: step length in microseconds.
        polarity: keep ON and OFF events apart: F = 2 * 34 * 34 channels, channel
            ``p * 1156 + y * 34 + x`` (``input_shape`` (2, 34, 34)); else both polarities
            share a channel: F = 34 * 34, channel ``y * 34 + x`` (``input_shape`` (34, 34)).
        limit_train, limit_test: load only the first this many samples of each label file
            (only their files are read and checked).
        dtype: float32 or bool. Memory is N * T * F * (4 or 1) bytes: the whole subset at the
            defaults takes 0.7 GB as float32, 0.18 GB as bool.
        manifest_sha256: the expected sha256 of the folder's ``SHA256SUMS``; the default is the
            subset's. None trusts whatever manifest the folder holds (for another subset).

    Returns:
        a :class:`~insitu.data.spikes.SpikeDataset` named ``"nmnist"`` with labels from the
        label files, in their order, and ``dt_s = dt_us * 1e-6``.

    Raises:
        ConfigError: a bad argument.
        DataError: the folder is missing, a file fails its checksum, or a file is malformed;
            the message names the file.
    """
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise ConfigError(f"time_steps = {time_steps!r} must be a positive integer")
    check_range("dt_us", dt_us, low=0.0, low_open=True)
    if dt_us == float("inf"):
        raise ConfigError("dt_us must be finite")
    for label, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ConfigError(f"{label} = {limit!r} must be a positive number of samples or None")
    if dtype not in (torch.float32, torch.bool):
        raise ConfigError(f"dtype must be torch.float32 or torch.bool, got {dtype}")

    check_data_dir(data_dir)
    folder = locate_nmnist(data_dir)
    digests = read_nmnist_manifest(folder, manifest_sha256)
    x_train, y_train = _load_split(
        folder, "train", digests, limit_train, time_steps, dt_us, polarity, dtype
    )
    x_test, y_test = _load_split(
        folder, "test", digests, limit_test, time_steps, dt_us, polarity, dtype
    )
    height, width = NMNIST_SENSOR
    return SpikeDataset(
        name="nmnist",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=NMNIST_CLASSES,
        dt_s=float(dt_us) * 1e-6,
        input_shape=(2, height, width) if polarity else (height, width),
    )
