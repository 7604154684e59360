"""The Spiking Heidelberg Digits (SHD), read from the original HDF5 files.

Cramer, Stradmann, Schemmel, Zenke (2022), "The Heidelberg spiking data sets for the
systematic evaluation of spiking neural networks", IEEE Trans. Neural Netw. Learn. Syst.
33:2744-2757 (doi:10.1109/TNNLS.2020.3044364; arXiv:1910.07407). Spoken digits 0-9 in
English and German (20 classes) from 12 speakers, turned into spikes of 700 channels by a
model of the cochlea and auditory nerve. CC BY 4.0.

Canonical home: https://zenkelab.org/datasets/ (``shd_train.h5.gz``, ``shd_test.h5.gz``;
mirror https://compneuro.net/datasets/; page :data:`SHD_PAGE`). The files are gzipped HDF5;
this module reads them gzipped or gunzipped (``shd_train.h5``, ``shd_test.h5``). Layout:

* ``spikes/times``: one variable-length float array per sample, spike times in seconds;
* ``spikes/units``: one variable-length integer array per sample, the channel (0..699) of
  each spike;
* ``labels``: one integer class (0..19) per sample;
* ``extra/...``: speaker, metadata and label names (not read).

**Checksums.** No sha256 of the SHD files is published. The download folder lists md5 sums
(``md5sums.txt``); public code pins differing md5 values for the same file names, so insitu
pins none: :func:`download_shd` (``load_shd(download=True)``) fetches the mirror's own
``md5sums.txt`` and keeps a download only if it matches. Pass ``train_sha256``/``test_sha256``
to :func:`load_shd` to check a copy against digests you trust (of the file as it lies on disk,
gzipped or not).

**Preprocessing as in Cramer et al. 2022 (PNAS 119(4), e2109194119)** on BrainScaleS-2: only
70 of the 700 channels are used, :func:`shd_channels` ``(70, 9, 70)``: skip the first 70
channels, then every 9th (70, 79, ..., 691). Spikes are binned into
``time_steps`` steps of ``dt_s`` seconds. Training data can be augmented by channel jitter.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.data.checksums import verify_sha256
from insitu.data.events import events_to_frame_batch
from insitu.data.shd_files import (
    SHD_CHANNELS,
    SHD_CLASSES,
    SHD_FILES,
    SHD_FOLDER,
    SHD_MIRRORS,
    SHD_PAGE,
    download_shd,
    locate_shd,
)
from insitu.data.sources import (
    check_data_dir,
)
from insitu.data.spikes import SpikeDataset
from insitu.errors import ConfigError, DataError, check_range

__all__ = [
    "SHD_CHANNELS",
    "SHD_CLASSES",
    "SHD_FILES",
    "SHD_FOLDER",
    "SHD_MIRRORS",
    "SHD_PAGE",
    "ShdEvents",
    "download_shd",
    "load_shd",
    "locate_shd",
    "read_shd",
    "shd_channels",
]

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ShdEvents:
    """The spikes of an SHD file, all samples concatenated.

    ``sample``, ``times_s`` and ``units`` have one entry per spike: the sample index
    (0..N-1, non-decreasing), the time in seconds (float64) and the channel (int64).
    ``labels`` is int64 of shape (N,).
    """

    sample: npt.NDArray[np.int64]
    times_s: npt.NDArray[np.float64]
    units: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int64]

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])


def shd_channels(
    channel_start: int = 70, channel_step: int = 9, channels: int | None = 70
) -> tuple[int, ...]:
    """The channels kept: ``channel_start + k * channel_step`` for k = 0..channels-1.

    ``channels=None`` keeps every such channel below 700. The defaults give the 70 channels
    70, 79, ..., 691 of Cramer et al. 2022 (PNAS); ``(0, 1, None)`` keeps all 700.

    Raises:
        ConfigError: the selection runs past channel 699, or an argument is out of range.
    """
    for name, value, low in (
        ("channel_start", channel_start, 0),
        ("channel_step", channel_step, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} = {value!r} must be an integer")
        check_range(name, value, low=low, high=SHD_CHANNELS - 1)
    available = range(channel_start, SHD_CHANNELS, channel_step)
    if channels is None:
        return tuple(available)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError(f"channels = {channels!r} must be a positive integer or None")
    if channels > len(available):
        raise ConfigError(
            f"channels = {channels}: starting at {channel_start} in steps of {channel_step}, "
            f"only {len(available)} of the {SHD_CHANNELS} SHD channels are available"
        )
    return tuple(available[:channels])


def _dataset(handle: Any, key: str, path: str) -> Any:
    import h5py  # deferred: only SHD needs it

    item = handle.get(key)
    if not isinstance(item, h5py.Dataset):
        raise DataError(
            f"{path}: not an SHD file: no HDF5 dataset {key!r} "
            "(expected spikes/times, spikes/units and labels)"
        )
    return item


def read_shd(path: str | os.PathLike[str], *, limit: int | None = None) -> ShdEvents:
    """Read an SHD HDF5 file, gzipped (as distributed) or not.

    ``limit`` reads only the first this many samples. A gzipped file is decompressed in
    memory (about 3x its size); gunzip it once to load faster.

    Raises:
        DataError: the file cannot be read, is not HDF5, lacks the SHD layout, or holds
            inconsistent data (lengths that differ, channels outside [0, 700), labels
            outside [0, 20), times that are negative or not finite); the message names it.
    """
    import h5py  # deferred: only SHD needs it

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read SHD file: {exc.strerror or exc}") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{p}: corrupt or truncated gzip data ({exc}); fetch the file again"
            ) from exc
    try:
        handle = h5py.File(io.BytesIO(raw), "r")
    except OSError as exc:
        raise DataError(f"{p}: not a readable HDF5 file ({exc})") from exc
    with handle:
        times_ds = _dataset(handle, "spikes/times", str(p))
        units_ds = _dataset(handle, "spikes/units", str(p))
        labels_ds = _dataset(handle, "labels", str(p))
        lengths = {len(times_ds), len(units_ds), len(labels_ds)}
        if len(lengths) != 1:
            raise DataError(
                f"{p}: spikes/times, spikes/units and labels must have one entry per sample, "
                f"got {len(times_ds)}, {len(units_ds)} and {len(labels_ds)}"
            )
        n = len(labels_ds) if limit is None else min(limit, len(labels_ds))
        try:
            times_list = list(times_ds[:n])
            units_list = list(units_ds[:n])
            labels_raw = np.asarray(labels_ds[:n])
        except (OSError, TypeError, ValueError) as exc:
            raise DataError(f"{p}: cannot read the SHD arrays ({exc})") from exc
    counts = np.array([np.size(t) for t in times_list], dtype=np.int64)
    unit_counts = np.array([np.size(u) for u in units_list], dtype=np.int64)
    if not np.array_equal(counts, unit_counts):
        bad = int(np.flatnonzero(counts != unit_counts)[0])
        raise DataError(
            f"{p}: sample {bad} has {counts[bad]} spike times but {unit_counts[bad]} units"
        )
    empty = np.zeros(0, dtype=np.float64)
    times = np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in times_list] + [empty])
    units_any = np.concatenate([np.asarray(u).ravel() for u in units_list] or [empty])
    if units_any.size and not np.issubdtype(units_any.dtype, np.integer):
        raise DataError(f"{p}: spikes/units must hold integers, got {units_any.dtype}")
    units = units_any.astype(np.int64)
    if not np.issubdtype(labels_raw.dtype, np.integer) or labels_raw.ndim != 1:
        raise DataError(
            f"{p}: labels must be a 1-D integer array, got {labels_raw.dtype} {labels_raw.shape}"
        )
    labels = labels_raw.astype(np.int64)
    if units.size and (int(units.min()) < 0 or int(units.max()) >= SHD_CHANNELS):
        raise DataError(f"{p}: spike channels outside [0, {SHD_CHANNELS})")
    if times.size and not (np.isfinite(times).all() and float(times.min()) >= 0.0):
        raise DataError(f"{p}: spike times must be finite and non-negative (seconds)")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= SHD_CLASSES):
        raise DataError(f"{p}: labels outside [0, {SHD_CLASSES})")
    sample = np.repeat(np.arange(n, dtype=np.int64), counts)
    return ShdEvents(sample=sample, times_s=times, units=units, labels=labels)


def _check_limit(label: str, limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{label} = {limit!r} must be a positive number of samples or None")


def _jitter_units(
    units: npt.NDArray[np.int64], std: float, generator: torch.Generator
) -> npt.NDArray[np.int64]:
    """Each unit moved to round(u + std * z); units pushed outside [0, 700) become -1."""
    z = torch.randn(len(units), generator=generator, dtype=torch.float64).numpy()
    moved = np.rint(units + std * z).astype(np.int64)
    moved[(moved < 0) | (moved >= SHD_CHANNELS)] = -1
    return moved


def _frames(
    events: ShdEvents,
    units: npt.NDArray[np.int64],
    kept: tuple[int, ...],
    time_steps: int,
    dt_s: float,
    dtype: torch.dtype,
) -> torch.Tensor:
    lookup = np.full(SHD_CHANNELS + 1, -1, dtype=np.int64)  # index -1 (dropped) stays -1
    lookup[np.asarray(kept)] = np.arange(len(kept))
    channel = lookup[units]
    keep = channel >= 0
    return events_to_frame_batch(
        events.sample[keep],
        events.times_s[keep],
        channel[keep],
        n_samples=events.n_samples,
        n_units=len(kept),
        dt=dt_s,
        time_steps=time_steps,
        dtype=dtype,
    )


def load_shd(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    time_steps: int = 140,
    dt_s: float = 0.01,
    channel_start: int = 70,
    channel_step: int = 9,
    channels: int | None = 70,
    jitter_std: float = 0.0,
    seed: int = 0,
    limit_train: int | None = None,
    limit_test: int | None = None,
    train_sha256: str | None = None,
    test_sha256: str | None = None,
    dtype: torch.dtype = torch.float32,
    download: bool = False,
) -> SpikeDataset:
    """Load SHD as dense spike tensors of shape (N, time_steps, channels).

    A spike at time ``t`` (seconds) in channel ``u`` lands in step ``floor(t / dt_s)`` and, if
    ``u`` is the k-th of :func:`shd_channels`, in column k; spikes in other channels or at or
    after ``time_steps * dt_s`` are dropped, spikes of one channel in one step merge. The
    defaults, 140 steps of 10 ms, span 1.4 s, about the length of the longest recordings
    (check ``read_shd(path).times_s.max()`` on your copy before shortening it).

    Args:
        data_dir: a folder holding the files (see :func:`locate_shd`).
        time_steps: T, steps per sample.
        dt_s: step length in seconds.
        channel_start, channel_step, channels: the channels kept (see :func:`shd_channels`);
            the defaults keep 70 as in Cramer et al. 2022 (PNAS).
        jitter_std: channel-jitter augmentation of the **training** data only: before the
            channels are selected, every training spike moves from channel ``u`` to
            ``round(u + jitter_std * z)``, ``z`` standard normal per spike; spikes moved
            outside [0, 700) are lost. In units of the original 700 channels. One draw, fixed
            by ``seed``; for a fresh draw every epoch use
            :func:`~insitu.data.events.jitter_channels` on the loaded tensor instead.
        seed: seeds the jitter (unused when ``jitter_std`` is 0).
        limit_train, limit_test: read only the first this many samples of each file.
        train_sha256, test_sha256: if given, the file found must have this sha256.
        dtype: float32 or bool.
        download: fetch a missing file (:func:`download_shd`) into ``data_dir/shd`` or the
            cache, checked against the mirror's published md5.

    Returns:
        a :class:`~insitu.data.spikes.SpikeDataset` named ``"shd"`` with 20 classes,
        ``input_shape`` (channels,) and ``dt_s``.

    Raises:
        ConfigError: a bad argument.
        DataError: a file missing (the message says where it looked and how to get it),
            failing a given checksum, or malformed.
    """
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise ConfigError(f"time_steps = {time_steps!r} must be a positive integer")
    check_range("dt_s", dt_s, low=0.0, low_open=True)
    check_range("jitter_std", jitter_std, low=0.0)
    if not (math.isfinite(dt_s) and math.isfinite(jitter_std)):
        raise ConfigError(f"dt_s = {dt_s!r} and jitter_std = {jitter_std!r} must be finite")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed = {seed!r} must be an integer")
    _check_limit("limit_train", limit_train)
    _check_limit("limit_test", limit_test)
    check_data_dir(data_dir)
    if dtype not in (torch.float32, torch.bool):
        raise ConfigError(f"dtype must be torch.float32 or torch.bool, got {dtype}")
    kept = shd_channels(channel_start, channel_step, channels)

    split_x: dict[str, torch.Tensor] = {}
    split_y: dict[str, torch.Tensor] = {}
    for split, limit, digest in (
        ("train", limit_train, train_sha256),
        ("test", limit_test, test_sha256),
    ):
        try:
            path = locate_shd(split, data_dir)
        except DataError:
            if not download:
                raise
            dest = Path(data_dir) / SHD_FOLDER if data_dir is not None else None
            path = download_shd(split, dest)
        if digest is not None:
            verify_sha256(
                path,
                digest,
                label=f"SHD {split} file {path.name!r}",
                origin=SHD_MIRRORS[0] + SHD_FILES[split] + ".gz",
                source="given",
            )
        events = read_shd(path, limit=limit)
        units = events.units
        if split == "train" and jitter_std > 0:
            units = _jitter_units(units, jitter_std, torch.Generator().manual_seed(seed))
        split_x[split] = _frames(events, units, kept, time_steps, dt_s, dtype)
        split_y[split] = torch.from_numpy(events.labels.copy())

    return SpikeDataset(
        name="shd",
        x_train=split_x["train"],
        y_train=split_y["train"],
        x_test=split_x["test"],
        y_test=split_y["test"],
        n_classes=SHD_CLASSES,
        dt_s=float(dt_s),
        input_shape=(len(kept),),
    )
