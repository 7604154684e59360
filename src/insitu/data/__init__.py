"""Datasets for in-situ training: bundled 8x8 digits, MNIST, Fashion-MNIST and Braille.

MNIST is by LeCun, Bottou, Bengio, Haffner (1998); Fashion-MNIST by Xiao, Rasul, Vollgraf
(2017). Both are read from their original IDX files, checked against published sha256.
The Braille reconstruction task (Yi, Kendall, Williams, Kumar, Nature Electronics 2022) is
generated; see :mod:`insitu.data.braille`.
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
from insitu.data.datasets import DATASET_NAMES, Dataset, check_dataset_options, load_dataset
from insitu.data.idx import IDX_DTYPES, clear_idx_cache, parse_idx, read_idx
from insitu.data.sources import (
    ENV_VAR,
    IDX_FILES,
    SOURCES,
    DatasetSource,
    KnownFile,
    candidate_paths,
    clear_hash_cache,
    default_cache_dir,
    download_file,
    locate_dataset,
    locate_file,
    sha256_file,
    verify_file,
)

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
    "PATTERN_BITS",
    "SOURCES",
    "Dataset",
    "DatasetSource",
    "KnownFile",
    "candidate_paths",
    "check_dataset_options",
    "clean_patterns",
    "clear_caches",
    "clear_hash_cache",
    "clear_idx_cache",
    "default_cache_dir",
    "distort",
    "download_file",
    "exact_reconstruction",
    "load_dataset",
    "locate_dataset",
    "locate_file",
    "make_braille",
    "name_pattern",
    "parse_idx",
    "read_idx",
    "sha256_file",
    "verify_file",
]


def clear_caches() -> None:
    """Forget every parsed array and remembered checksum held in this process."""
    clear_idx_cache()
    clear_hash_cache()
