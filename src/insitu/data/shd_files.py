"""Where the Spiking Heidelberg Digits files are found, and how they are fetched (the data
itself is read by :mod:`insitu.data.shd`).

Cramer, Stradmann, Schemmel, Zenke (2022), IEEE TNNLS 33:2744-2757 (arXiv:1910.07407); CC BY
4.0. No sha256 of the files is published, so a download is checked against the mirror's own
``md5sums.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path

from insitu.data.download import MirrorError, fetch, read_url
from insitu.data.sources import ENV_VAR, default_cache_dir, search_paths
from insitu.errors import ConfigError, DataError

#: Input channels of the cochlea model.
SHD_CHANNELS = 700
SHD_CLASSES = 20
#: Sub-folder holding the files, under a data folder or ``~/.cache/insitu``.
SHD_FOLDER = "shd"
#: Split -> file name (each also accepted with ``.gz`` appended, as distributed).
SHD_FILES: dict[str, str] = {"train": "shd_train.h5", "test": "shd_test.h5"}
#: Download folders, canonical first.
SHD_MIRRORS: tuple[str, ...] = ("https://zenkelab.org/datasets/", "https://compneuro.net/datasets/")
SHD_PAGE = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/"


def locate_shd(split: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The SHD file of ``split`` (``"train"`` or ``"test"``), gunzipped or gzipped.

    Looked for, in order, as ``shd_<split>.h5`` then ``shd_<split>.h5.gz`` in ``data_dir``,
    ``data_dir/shd``, ``$INSITU_DATA``, ``$INSITU_DATA/shd`` and ``~/.cache/insitu/shd``.

    Raises:
        ConfigError: an unknown split.
        DataError: the file is nowhere; the message lists every place searched and says
            how to get the file.
    """
    if split not in SHD_FILES:
        raise ConfigError(f"unknown SHD split {split!r}; valid splits: train, test")
    filename = SHD_FILES[split]
    looked: list[str] = []
    for path in search_paths(SHD_FOLDER, filename, data_dir):
        for candidate in (path, path.with_name(path.name + ".gz")):
            if candidate.is_file():
                return candidate
            looked.append(f"{candidate} (not found)")
    env_note = "" if os.environ.get(ENV_VAR) else f" ({ENV_VAR} is not set)"
    urls = " or ".join(base + filename + ".gz" for base in SHD_MIRRORS)
    raise DataError(
        f"SHD {split} file {filename!r} not found. Looked in{env_note}:\n"
        + "\n".join(f"  - {line}" for line in looked)
        + f"\nTo get it, download {urls} (see {SHD_PAGE}) and put it, gzipped or gunzipped,"
        + f" in one of those places, or point --data-dir or the {ENV_VAR} environment variable"
        + f" at a folder holding it (directly or in a '{SHD_FOLDER}/' sub-folder), or let insitu"
        + " fetch it: load_shd(download=True) (dataset_options.download: true) checks it"
        + " against the mirror's md5sums.txt; pass train_sha256/test_sha256 to pin your copy."
    )


def _published_md5(text: str) -> dict[str, str]:
    """``md5sums.txt`` lines (``<md5>  <file name>``) as file name -> md5."""
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def download_shd(
    split: str,
    dest_dir: str | os.PathLike[str] | None = None,
    *,
    mirrors: tuple[str, ...] = SHD_MIRRORS,
    timeout: float = 300.0,
) -> Path:
    """Fetch ``shd_<split>.h5.gz`` into ``dest_dir`` (default ``~/.cache/insitu/shd``).

    Each mirror's ``md5sums.txt`` is read first; pooch keeps the file only if its md5 matches
    the mirror's listed value, so a failed or corrupted download leaves nothing behind.

    Raises:
        DataError: every mirror failed; the message says how each one failed.
    """
    if split not in SHD_FILES:
        raise ConfigError(f"unknown SHD split {split!r}; valid splits: train, test")
    filename = SHD_FILES[split] + ".gz"
    target = Path(dest_dir or default_cache_dir() / SHD_FOLDER).expanduser() / filename
    failures: list[str] = []
    for base in mirrors:
        try:
            listed = _published_md5(
                read_url(base + "md5sums.txt", timeout=timeout).decode("utf-8", "replace")
            )
            if filename not in listed:
                failures.append(f"{base}md5sums.txt does not list {filename}")
                continue
            return fetch(base + filename, "md5:" + listed[filename], target, timeout=timeout)
        except MirrorError as exc:
            failures.append(str(exc))
    raise DataError(
        f"could not download SHD {filename!r} (see {SHD_PAGE}):\n"
        + "\n".join(f"  - {line}" for line in failures)
    )
