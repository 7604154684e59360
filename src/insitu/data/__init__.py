"""Datasets for in-situ training: bundled 8x8 digits, MNIST and Fashion-MNIST.

MNIST is by LeCun, Bottou, Bengio, Haffner (1998); Fashion-MNIST by Xiao, Rasul, Vollgraf
(2017). Both are read from their original IDX files, checked against published sha256.
"""

from __future__ import annotations

from insitu.data.datasets import DATASET_NAMES, Dataset, load_dataset
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
    "DATASET_NAMES",
    "ENV_VAR",
    "IDX_DTYPES",
    "IDX_FILES",
    "SOURCES",
    "Dataset",
    "DatasetSource",
    "KnownFile",
    "candidate_paths",
    "clear_caches",
    "clear_hash_cache",
    "clear_idx_cache",
    "default_cache_dir",
    "download_file",
    "load_dataset",
    "locate_dataset",
    "locate_file",
    "parse_idx",
    "read_idx",
    "sha256_file",
    "verify_file",
]


def clear_caches() -> None:
    """Forget every parsed array and remembered checksum held in this process."""
    clear_idx_cache()
    clear_hash_cache()
