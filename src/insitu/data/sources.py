"""Where the downloadable datasets live, how to find them on disk, and how to check them.

Known datasets:

* MNIST: LeCun, Bottou, Bengio, Haffner (1998), "Gradient-based learning applied to
  document recognition", Proc. IEEE 86(11):2278-2324; files from LeCun, Cortes, Burges.
* Fashion-MNIST: Xiao, Rasul, Vollgraf (2017), "Fashion-MNIST: a novel image dataset for
  benchmarking machine learning algorithms", arXiv:1708.07747 (MIT licence).

Each is the four original gzipped IDX files, checked against their published sha256.
A file is looked for, in order, in ``data_dir``, in ``$INSITU_DATA`` and in the user cache
``~/.cache/insitu/<folder>/``; in the first two both ``<dir>/<file>`` and
``<dir>/<folder>/<file>`` are accepted. A file found nowhere is downloaded from its
canonical home (when allowed) with pooch (:mod:`insitu.data.download`), which checks it
before it takes its name. Files found on disk are checked here, offline, with a
one-line error naming both checksums when they differ.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from insitu.data.checksums import mismatch_error, sha256_file
from insitu.data.download import DOWNLOAD_TIMEOUT_S, MirrorError, fetch
from insitu.errors import DataError, UnknownNameError

__all__ = [
    "ENV_VAR",
    "IDX_FILES",
    "SOURCES",
    "DatasetSource",
    "KnownFile",
    "candidate_paths",
    "check_data_dir",
    "default_cache_dir",
    "download_file",
    "locate_dataset",
    "locate_file",
    "search_paths",
    "verify_file",
]

#: Environment variable naming a folder that holds the original data files.
ENV_VAR = "INSITU_DATA"

#: Role -> file name; the same four names for MNIST and Fashion-MNIST.
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class KnownFile:
    """One published file and its published sha256."""

    filename: str
    sha256: str


@dataclass(frozen=True)
class DatasetSource:
    """A downloadable dataset: its files, checksums, local folder name and mirrors."""

    name: str
    title: str
    folder: str
    citation: str
    files: tuple[KnownFile, ...]
    mirrors: tuple[str, ...]

    def known(self, filename: str) -> KnownFile:
        """The entry for ``filename``; UnknownNameError if the dataset has no such file."""
        for f in self.files:
            if f.filename == filename:
                return f
        raise UnknownNameError(f"{self.title} file", filename, (f.filename for f in self.files))

    def urls(self, filename: str, mirrors: Sequence[str] | None = None) -> list[str]:
        """Download URLs for ``filename``, one per mirror, in the order they are tried."""
        bases = self.mirrors if mirrors is None else tuple(mirrors)
        return [base.rstrip("/") + "/" + filename for base in bases]


SOURCES: dict[str, DatasetSource] = {
    "mnist": DatasetSource(
        name="mnist",
        title="MNIST",
        folder="mnist",
        citation="LeCun, Bottou, Bengio, Haffner (1998), Proc. IEEE 86(11):2278-2324",
        # Published sha256 of the original files (the md5s match those torchvision pins).
        files=(
            KnownFile(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            KnownFile(
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            KnownFile(
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            KnownFile(
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ),
        # The S3 mirror first: the original site often refuses automated downloads.
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSource(
        name="fashion-mnist",
        title="Fashion-MNIST",
        folder="fashion_mnist",
        citation="Xiao, Rasul, Vollgraf (2017), arXiv:1708.07747",
        files=(
            KnownFile(
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            KnownFile(
                "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            KnownFile(
                "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            KnownFile(
                "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}


def _source(name: str) -> DatasetSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownNameError("downloadable dataset", name, SOURCES) from None


def default_cache_dir() -> Path:
    """The user cache root, ``~/.cache/insitu``; each dataset has a sub-folder in it."""
    return Path.home() / ".cache" / "insitu"


def check_data_dir(data_dir: str | os.PathLike[str] | None) -> None:
    """Raise DataError if a given ``data_dir`` is not an existing folder.

    The search would otherwise pass over it to ``$INSITU_DATA`` and the cache, and a run
    would record a folder its data never came from.
    """
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(
            f"data folder {path} {what}; give a folder holding the dataset files "
            f"(or an empty one to download into), or leave data_dir out to search "
            f"${ENV_VAR} and {default_cache_dir()}"
        )


def search_paths(
    folder: str, filename: str, data_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Every path where ``filename`` of a dataset kept in sub-folder ``folder`` is looked for.

    In order: ``data_dir/filename``, ``data_dir/folder/filename``, the same two under
    ``$INSITU_DATA``, then ``~/.cache/insitu/folder/filename``. Each place is listed once.
    """
    paths: list[Path] = []
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    for root in roots:
        paths += [root / filename, root / folder / filename]
    paths.append(default_cache_dir() / folder / filename)
    return list(dict.fromkeys(paths))  # data_dir may equal $INSITU_DATA: list each place once


def candidate_paths(
    name: str, filename: str, data_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Every path where ``filename`` of dataset ``name`` is looked for, in search order."""
    return search_paths(_source(name).folder, filename, data_dir)


def verify_file(path: str | os.PathLike[str], name: str, filename: str | None = None) -> None:
    """Check a local file of dataset ``name`` against its published sha256.

    ``filename`` defaults to the path's base name.

    Raises:
        DataError: the checksum differs; the message names the file, both checksums and
            what to do about it.
    """
    p = Path(path)
    src = _source(name)
    known = src.known(filename or p.name)
    actual = sha256_file(p)
    if actual != known.sha256:
        label = f"{src.title} {known.filename!r}"
        raise mismatch_error(p, label, known.sha256, actual, src.urls(known.filename))


def download_file(
    name: str,
    filename: str,
    dest_dir: str | os.PathLike[str],
    *,
    mirrors: Sequence[str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Fetch ``filename`` of dataset ``name`` into ``dest_dir`` and return its path.

    Mirrors (by default the dataset's canonical homes) are tried in order, each through
    :func:`insitu.data.download.fetch`: pooch checks the bytes against the published sha256
    before they take the file's name, so a failed or corrupted download leaves nothing behind.

    Raises:
        DataError: every mirror failed (the message says how each one failed), or
            ``dest_dir`` cannot be written.
    """
    src = _source(name)
    known = src.known(filename)
    target = Path(dest_dir).expanduser() / filename
    failures: list[str] = []
    for url in src.urls(filename, mirrors):
        try:
            return fetch(url, known.sha256, target, timeout=timeout)
        except MirrorError as exc:
            failures.append(str(exc))
    raise DataError(
        f"could not download {src.title} {filename!r}:\n"
        + "\n".join(f"  - {line}" for line in failures or ["no mirrors given"])
    )


def locate_file(
    name: str,
    filename: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Path:
    """Find (or fetch) a verified copy of ``filename`` of dataset ``name``; return its path.

    The first existing file in :func:`candidate_paths` order is used and must pass its
    checksum. A file that instead matches another dataset's published file of the same
    name (MNIST and Fashion-MNIST share file names) is skipped, not reported as corrupt.
    When the file is found nowhere and ``download`` is true, it is downloaded into
    ``data_dir/<folder>/`` when ``data_dir`` is given, else into ``~/.cache/insitu/<folder>/``.

    Raises:
        DataError: the file is corrupted, or missing and could not be downloaded; the
            message lists every place searched and how to get the file.
    """
    src = _source(name)
    known = src.known(filename)
    label = f"{src.title} {filename!r}"
    others = {
        other.known(filename).sha256: other.title
        for other in SOURCES.values()
        if other is not src and any(f.filename == filename for f in other.files)
    }
    looked: list[str] = []
    for path in candidate_paths(name, filename, data_dir):
        if not path.is_file():
            looked.append(f"{path} (not found)")
            continue
        actual = sha256_file(path)
        if actual == known.sha256:
            return path
        if actual in others:
            looked.append(f"{path} (holds the {others[actual]} file, skipped)")
            continue
        raise mismatch_error(path, label, known.sha256, actual, src.urls(filename))

    # The mirrors tried, then the canonical homes, which are what a user can fetch by hand.
    urls = list(dict.fromkeys(src.urls(filename, mirrors) + src.urls(filename)))
    reason = "downloading is off (download=False)"
    if download:
        dest = (
            Path(data_dir).expanduser() / src.folder
            if data_dir is not None
            else default_cache_dir() / src.folder
        )
        try:
            return download_file(name, filename, dest, mirrors=mirrors)
        except DataError as exc:
            reason = str(exc)
    env_note = "" if os.environ.get(ENV_VAR) else f" ({ENV_VAR} is not set)"
    raise DataError(
        f"{label} not found. Looked in{env_note}:\n"
        + "\n".join(f"  - {line}" for line in looked)
        + f"\nNot downloaded: {reason}\n"
        + "To get it, download the original file from "
        + " or ".join(urls)
        + f" (sha256 {known.sha256}) and put it in one of those places, or point --data-dir"
        + f" or the {ENV_VAR} environment variable at a folder holding the original files"
        + f" (directly or in a '{src.folder}/' sub-folder)."
    )


def locate_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Verified paths of all four files of ``name``, keyed by role (see :data:`IDX_FILES`)."""
    return {
        role: locate_file(name, filename, data_dir=data_dir, download=download, mirrors=mirrors)
        for role, filename in IDX_FILES.items()
    }
