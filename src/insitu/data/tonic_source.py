"""tonic event datasets and transforms as a spiking input (``dataset: tonic:nmnist``).

tonic (Lenz, Chaney, Shrestha, Oubari, Picaud, Zarrella 2021, "Tonic: event-based datasets and
transformations", Zenodo, doi:10.5281/zenodo.5079802) is how the event-camera field reads its
recordings and turns them into frames. Here tonic reads the N-MNIST files (Orchard et al.
2015; its ``tonic.io.read_mnist_file``) and its transforms make the frames: optionally
``Denoise`` (drop events with no neighbour within ``denoise_us``), ``Downsample`` (to a
``size`` x ``size`` picture, to fit a chip's inputs) and ``MergePolarities``, then ``ToFrame``
into ``time_steps`` frames; a pixel (and polarity) with at least one event in a frame is one
spike. The result is the (N, T, F) :class:`~insitu.data.spikes.SpikeDataset` the spiking chip
takes, with F laid out as (polarity, y, x), as :func:`~insitu.data.nmnist.load_nmnist` lays it.

Why not ``tonic.datasets.NMNIST``: it counts 10,000 extracted ``.bin`` files next to its
``train.zip`` and downloads the 1 GB archives from Mendeley when they are not there, and reads
labels from folder names. The offline subset (``nmnist_small``: ``.bs2`` files, labels in text
files, a pinned checksum manifest) has neither, so :class:`TonicNmnist` is a thin dataset of
tonic's own kind (``ds[i]`` -> ``(events, label)``, ``sensor_size``, ``ordering``, a
``transform``) over those files, each checked against the manifest as insitu's reader checks
them. With ``dt_us`` set, the frames are the same as insitu's reader makes from the same files
(frames start at the recording's start, ``ToFrame(time_window=dt_us, start_time=0, ...)``);
with ``dt_us: null`` tonic's ``ToFrame(n_time_bins=T)`` cuts each recording's own span, first
to last event, into T frames (no fixed time step).

tonic is an optional dependency (``pip install 'insitu[tonic]'``), imported only when a tonic
dataset is loaded.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from insitu.data.checksums import sha256_file
from insitu.data.nmnist import (
    NMNIST_CLASSES,
    NMNIST_MANIFEST,
    NMNIST_SENSOR,
    NMNIST_SMALL_MANIFEST_SHA256,
    locate_nmnist,
    nmnist_split_files,
    read_nmnist_manifest,
)
from insitu.data.sources import check_data_dir
from insitu.data.spikes import SpikeDataset
from insitu.errors import ConfigError, DataError, UnknownNameError

__all__ = [
    "TONIC_DATASETS",
    "TonicNmnist",
    "TonicOptions",
    "load_tonic",
    "nmnist_transform",
    "tonic_options",
]

#: The tonic datasets a spiking run takes (``dataset:`` in its config).
TONIC_DATASETS: tuple[str, ...] = ("tonic:nmnist",)
_INSTALL = "pip install 'insitu[tonic]'"


@dataclass(frozen=True)
class TonicOptions:
    """How tonic turns a recording into frames (``dataset_options`` of a tonic dataset).

    Attributes:
        dt_us: frame length in microseconds, frames from the recording's start; None: tonic's
            ``n_time_bins``, each recording's own first-to-last-event span in T frames.
        size: downsample the 34 x 34 sensor to ``size`` x ``size`` pixels (tonic's
            ``Downsample``); None keeps the sensor's.
        polarity: keep ON and OFF events apart (F = 2 x pixels); False merges them (tonic's
            ``MergePolarities``; F = pixels).
        denoise_us: drop events with no event at a neighbouring pixel within this many
            microseconds before (tonic's ``Denoise``, on the full sensor); None keeps all.
    """

    dt_us: int | None = 5000
    size: int | None = None
    polarity: bool = True
    denoise_us: float | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def tonic_options(name: str, options: Mapping[str, Any] | None = None) -> TonicOptions:
    """``options`` checked for tonic dataset ``name`` (one of :data:`TONIC_DATASETS`).

    Raises:
        UnknownNameError: ``name`` is not a tonic dataset.
        ConfigError: an unknown option or a bad value; the message names it and what would do.
    """
    if name not in TONIC_DATASETS:
        raise UnknownNameError("tonic dataset", name, TONIC_DATASETS)
    given = dict(options or {})
    valid = tuple(TonicOptions.__dataclass_fields__)
    unknown = sorted(repr(k) for k in given if k not in valid)
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for dataset "
            f"{name!r}; valid options: {', '.join(valid)}"
        )
    opts = TonicOptions(**given)
    who = f"dataset {name!r}:"
    if opts.dt_us is not None and not (_is_int(opts.dt_us) and opts.dt_us >= 1):
        raise ConfigError(
            f"{who} dt_us = {opts.dt_us!r} must be a whole number of microseconds >= 1, or null "
            "for tonic's n_time_bins (each recording's own span in time_steps frames)"
        )
    side = NMNIST_SENSOR[1]
    if opts.size is not None and not (_is_int(opts.size) and 1 <= opts.size <= side):
        raise ConfigError(
            f"{who} size = {opts.size!r} must be a whole number of pixels in [1, {side}] (the "
            f"{side}x{side} sensor downsampled), or null to keep the sensor's"
        )
    if not isinstance(opts.polarity, bool):
        raise ConfigError(f"{who} polarity = {opts.polarity!r} must be true or false")
    d = opts.denoise_us
    if d is not None and (
        isinstance(d, bool) or not isinstance(d, int | float) or not (0 < d < math.inf)
    ):
        raise ConfigError(
            f"{who} denoise_us = {d!r} must be a positive time in microseconds, or null"
        )
    return opts


def _tonic() -> Any:
    """The tonic package, or a one-line ConfigError saying how to install it."""
    try:
        import tonic
    except ModuleNotFoundError as err:
        if err.name != "tonic":
            raise
        raise ConfigError(
            f"the tonic datasets ({', '.join(TONIC_DATASETS)}) need the tonic package: {_INSTALL}"
        ) from None
    return tonic


def _picture(opts: TonicOptions) -> tuple[int, int, int]:
    """tonic's sensor size (width, height, polarities) of the frames."""
    height, width = NMNIST_SENSOR
    if opts.size is not None:
        height = width = opts.size
    return (width, height, 2 if opts.polarity else 1)


def nmnist_transform(opts: TonicOptions, time_steps: int) -> Any:
    """The tonic transform (a ``tonic.transforms.Compose``) from N-MNIST events to
    ``time_steps`` frames of event counts, shape (T, polarities, height, width)."""
    if not _is_int(time_steps) or time_steps < 1:
        raise ConfigError(f"time_steps = {time_steps!r} must be a positive integer")
    tt = _tonic().transforms
    height, width = NMNIST_SENSOR
    steps: list[Callable[[Any], Any]] = []
    if opts.denoise_us is not None:
        steps.append(tt.Denoise(filter_time=opts.denoise_us))
    if opts.size is not None:
        steps.append(
            tt.Downsample(sensor_size=(width, height, 2), target_size=(opts.size, opts.size))
        )
    if not opts.polarity:
        steps.append(tt.MergePolarities())
    sensor = _picture(opts)
    if opts.dt_us is None:
        steps.append(tt.ToFrame(sensor_size=sensor, n_time_bins=time_steps))
    else:  # frames from t = 0, as insitu's reader bins: T windows of dt_us
        steps.append(
            tt.ToFrame(
                sensor_size=sensor,
                time_window=opts.dt_us,
                start_time=0,
                end_time=time_steps * opts.dt_us,
            )
        )
    return tt.Compose(steps)


class TonicNmnist:
    """The N-MNIST subset as a tonic dataset: ``ds[i]`` is ``(events, label)``, the events read
    by tonic (a structured array of x, y, t in microseconds, p) and put through ``transform``.

    Args:
        data_dir: where the subset is (see :func:`~insitu.data.nmnist.locate_nmnist`).
        train: the training split (1000 samples), else the test split (100).
        transform: a tonic transform of the events (e.g. :func:`nmnist_transform`).
        limit: only the first this many samples of the split's label file.
        manifest_sha256: the expected sha256 of the subset's manifest (None trusts it).

    Raises:
        DataError: the subset is missing, or a file fails its checksum.
    """

    #: tonic's order: (width, height, polarities).
    sensor_size = (NMNIST_SENSOR[1], NMNIST_SENSOR[0], 2)
    ordering = "xytp"
    classes = NMNIST_CLASSES

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        train: bool = True,
        transform: Callable[[Any], Any] | None = None,
        limit: int | None = None,
        manifest_sha256: str | None = NMNIST_SMALL_MANIFEST_SHA256,
    ) -> None:
        check_data_dir(data_dir)
        self.folder = locate_nmnist(data_dir)
        self.transform = transform
        digests = read_nmnist_manifest(self.folder, manifest_sha256)
        self.samples = nmnist_split_files(self.folder, "train" if train else "test", digests, limit)
        #: sha256 of every sample file, in order (from the checked manifest).
        self.digests = tuple(digests[path.name] for path, _ in self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        tonic = _tonic()
        path, label = self.samples[index]
        events = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
        if self.transform is not None:
            events = self.transform(events)
        return events, label

    def content_sha256(self) -> str:
        """One digest of the split's content: every sample file's sha256 and label, in order."""
        lines = (
            f"{d} {p.name} {y}\n" for d, (p, y) in zip(self.digests, self.samples, strict=True)
        )
        return hashlib.sha256("".join(lines).encode()).hexdigest()


def _spikes(
    ds: TonicNmnist, frame_shape: tuple[int, ...], time_steps: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, F) spikes (a frame count > 0 is a spike) and (N,) labels of every sample."""
    n_inputs = math.prod(frame_shape)
    # Filled in numpy, one tensor at the end: a torch copy per sample costs ~10x more on a
    # busy machine (its threads contend), and loading is tonic's one loop over recordings.
    x = np.zeros((len(ds), time_steps, n_inputs), dtype=np.bool_)
    labels = np.empty(len(ds), dtype=np.int64)
    for i in range(len(ds)):
        frames, labels[i] = ds[i]
        if frames.dtype.names is not None:  # tonic's Compose stops at an empty event stream
            if len(frames):
                raise DataError(f"{ds.samples[i][0]}: the tonic transform left events, not frames")
            continue
        if frames.shape != (time_steps, *frame_shape):
            raise DataError(
                f"{ds.samples[i][0]}: tonic made frames of shape {frames.shape}, expected "
                f"{(time_steps, *frame_shape)}"
            )
        np.greater(frames.reshape(time_steps, n_inputs), 0, out=x[i])
    return torch.from_numpy(x).to(dtype), torch.from_numpy(labels)


def load_tonic(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    time_steps: int,
    limit_train: int | None = None,
    limit_test: int | None = None,
    dtype: torch.dtype = torch.float32,
    options: Mapping[str, Any] | None = None,
) -> SpikeDataset:
    """Tonic dataset ``name`` (``"tonic:nmnist"``) through tonic's transforms as spike trains.

    ``options`` are :class:`TonicOptions` fields. The result's ``provenance`` records the tonic
    version, the transform, the manifest's sha256 and a digest of the samples used.

    Raises:
        ConfigError: a bad option, or tonic is not installed.
        DataError: the files are missing or fail their checksums.
    """
    opts = tonic_options(name, options)
    if dtype not in (torch.float32, torch.bool):
        raise ConfigError(f"dtype must be torch.float32 or torch.bool, got {dtype}")
    for label, limit in (("limit_train", limit_train), ("limit_test", limit_test)):
        if limit is not None and (not _is_int(limit) or limit < 1):
            raise ConfigError(f"{label} = {limit!r} must be a positive number of samples or None")
    transform = nmnist_transform(opts, time_steps)
    train = TonicNmnist(data_dir, train=True, transform=transform, limit=limit_train)
    test = TonicNmnist(data_dir, train=False, transform=transform, limit=limit_test)
    width, height, polarities = _picture(opts)
    shape = (polarities, height, width)
    x_train, y_train = _spikes(train, shape, time_steps, dtype)
    x_test, y_test = _spikes(test, shape, time_steps, dtype)
    provenance = {
        "library": "tonic",
        "tonic_version": _tonic().__version__,
        "reader": "tonic.io.read_mnist_file via insitu.data.tonic_source.TonicNmnist",
        "transform": repr(transform),
        "spike": "a frame count > 0",
        "folder": str(train.folder),
        "manifest_sha256": sha256_file(train.folder / NMNIST_MANIFEST),
        "samples": {"train": len(train), "test": len(test)},
        "samples_sha256": {"train": train.content_sha256(), "test": test.content_sha256()},
    }
    return SpikeDataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=NMNIST_CLASSES,
        dt_s=None if opts.dt_us is None else opts.dt_us * 1e-6,
        input_shape=shape if opts.polarity else shape[1:],
        provenance=provenance,
    )
