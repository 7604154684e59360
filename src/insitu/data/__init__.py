"""Datasets for in-situ training: bundled 8x8 digits, MNIST, Fashion-MNIST and Braille,
spike encoders, the event datasets N-MNIST and SHD, and any torch ``Dataset`` of your own.

MNIST is by LeCun, Bottou, Bengio, Haffner (1998); Fashion-MNIST by Xiao, Rasul, Vollgraf
(2017). Both are read from their original IDX files, checked against published sha256
(:mod:`insitu.data.checksums`), found on disk or downloaded with pooch
(:mod:`insitu.data.sources`, :mod:`insitu.data.download`).
The Braille reconstruction task (Yi, Kendall, Williams, Kumar, Nature Electronics 2022) is
generated; see :mod:`insitu.data.braille`.

Spiking data (:class:`SpikeDataset`, shape (N, T, F)): images (resized in
:mod:`insitu.data.images`) through the encoders of :mod:`insitu.data.encoders` (latency code
of Cramer et al. 2022, PNAS; rate code), events binned by :mod:`insitu.data.events`, N-MNIST
(Orchard et al. 2015; :mod:`insitu.data.nmnist`) and the Spiking Heidelberg Digits (Cramer
et al. 2022, IEEE TNNLS; :mod:`insitu.data.shd`), read from their original formats, and
tonic's event datasets and transforms (``tonic:nmnist``; :mod:`insitu.data.tonic_source`).

Your own data: :func:`from_torch` reads a map-style ``torch.utils.data.Dataset`` (or a
``DataLoader``) of ``(x, y)`` pairs into a :class:`Dataset`; :func:`import_data` finds one by an
import path (``mypkg.data:make_data``, as ``insitu train --data`` does); runs record its
:func:`content_sha256`.
"""

from __future__ import annotations

from insitu.data.braille import (
    CELLS,
    IMAGE_SHAPE,
    LETTER_DOTS,
    MIN_HAMMING_DISTANCE,
    NAMES,
    PATTERN_BITS,
    clean_patterns,
    distort,
    exact_reconstruction,
    make_braille,
    name_pattern,
)
from insitu.data.checksums import clear_hash_cache, sha256_file, verify_sha256
from insitu.data.datasets import DATASET_NAMES, Dataset, check_dataset_options, load_dataset
from insitu.data.encoders import latency_encode, latency_spike_times, rate_encode
from insitu.data.events import events_to_frame_batch, events_to_frames, jitter_channels
from insitu.data.idx import IDX_DTYPES, clear_idx_cache, parse_idx, read_idx
from insitu.data.images import resize_images
from insitu.data.nmnist import (
    NMNIST_SENSOR,
    NmnistEvents,
    decode_nmnist_events,
    load_nmnist,
    locate_nmnist,
    read_nmnist_events,
)
from insitu.data.shd import (
    SHD_CHANNELS,
    SHD_CLASSES,
    ShdEvents,
    load_shd,
    locate_shd,
    read_shd,
    shd_channels,
)
from insitu.data.sources import (
    ENV_VAR,
    IDX_FILES,
    SOURCES,
    DatasetSource,
    KnownFile,
    candidate_paths,
    check_data_dir,
    default_cache_dir,
    download_file,
    locate_dataset,
    locate_file,
    search_paths,
    verify_file,
)
from insitu.data.spikes import SpikeDataset, latency_coded
from insitu.data.tonic_source import TONIC_DATASETS, TonicNmnist, load_tonic
from insitu.data.torch_dataset import as_dataset, content_sha256, from_torch, import_data

__all__ = [
    "CELLS",
    "DATASET_NAMES",
    "ENV_VAR",
    "IDX_DTYPES",
    "IDX_FILES",
    "IMAGE_SHAPE",
    "LETTER_DOTS",
    "MIN_HAMMING_DISTANCE",
    "NAMES",
    "NMNIST_SENSOR",
    "PATTERN_BITS",
    "SHD_CHANNELS",
    "SHD_CLASSES",
    "SOURCES",
    "TONIC_DATASETS",
    "Dataset",
    "DatasetSource",
    "KnownFile",
    "NmnistEvents",
    "ShdEvents",
    "SpikeDataset",
    "TonicNmnist",
    "as_dataset",
    "candidate_paths",
    "check_data_dir",
    "check_dataset_options",
    "clean_patterns",
    "clear_caches",
    "clear_hash_cache",
    "clear_idx_cache",
    "content_sha256",
    "decode_nmnist_events",
    "default_cache_dir",
    "distort",
    "download_file",
    "events_to_frame_batch",
    "events_to_frames",
    "exact_reconstruction",
    "from_torch",
    "import_data",
    "jitter_channels",
    "latency_coded",
    "latency_encode",
    "latency_spike_times",
    "load_dataset",
    "load_nmnist",
    "load_shd",
    "load_tonic",
    "locate_dataset",
    "locate_file",
    "locate_nmnist",
    "locate_shd",
    "make_braille",
    "name_pattern",
    "parse_idx",
    "rate_encode",
    "read_idx",
    "read_nmnist_events",
    "read_shd",
    "resize_images",
    "search_paths",
    "sha256_file",
    "shd_channels",
    "verify_file",
    "verify_sha256",
]


def clear_caches() -> None:
    """Forget every parsed array and remembered checksum held in this process."""
    clear_idx_cache()
    clear_hash_cache()
