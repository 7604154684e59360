"""Downloads through pooch: mirrors in order, checked before they land, nothing half-written.

Served by ``http.server`` on 127.0.0.1 (the ``serve`` fixture in ``conftest.py``); the
``local_downloads_only`` fixture records every URL asked for and fails any other host.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from insitu.data import SOURCES, download_file, locate_file
from insitu.data.download import MirrorError, fetch, read_url
from insitu.errors import DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LABELS = "train-labels-idx1-ubyte.gz"  # 28 KB
LABELS_SHA256 = SOURCES["mnist"].known(LABELS).sha256
Serve = Callable[..., str]


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A folder holding the real MNIST training labels, to be served."""
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copyfile(SHARED / "mnist" / LABELS, folder / LABELS)
    return folder


@pytest.fixture(autouse=True)
def private_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("INSITU_DATA", raising=False)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


class _HalfHandler(SimpleHTTPRequestHandler):
    """Announces the whole file, sends half of it, then drops the connection."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def copyfile(self, source: Any, outputfile: Any) -> None:
        data = source.read()
        outputfile.write(data[: len(data) // 2])
        self.close_connection = True


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A local port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_fetch_keeps_the_bytes_only_when_their_hash_matches(
    served: Path, tmp_path: Path, serve: Serve
) -> None:
    url = serve(served) + LABELS
    path = fetch(url, LABELS_SHA256, tmp_path / "d" / LABELS)
    assert path == tmp_path / "d" / LABELS
    assert path.read_bytes() == (served / LABELS).read_bytes()
    with pytest.raises(MirrorError) as info:
        fetch(url, "0" * 64, tmp_path / "e" / LABELS)
    message = str(info.value)
    assert message.startswith(f"{url}: SHA256 hash of downloaded file")
    assert "0" * 64 in message and LABELS_SHA256 in message and "\n" not in message
    assert files_under(tmp_path / "e") == []


def test_a_file_already_there_with_the_right_hash_is_not_downloaded_again(
    served: Path, tmp_path: Path, local_downloads_only: list[str]
) -> None:
    target = tmp_path / LABELS
    shutil.copyfile(served / LABELS, target)
    # Nothing listens here: a download attempt would fail.
    assert fetch("http://127.0.0.1:9/" + LABELS, LABELS_SHA256, target) == target
    assert local_downloads_only == []


def test_a_cut_off_download_leaves_no_file_and_the_next_mirror_is_used(
    served: Path, tmp_path: Path, serve: Serve, local_downloads_only: list[str]
) -> None:
    half, whole = serve(served, _HalfHandler), serve(served)
    dest = tmp_path / "d"
    with pytest.raises(MirrorError, match=r"IncompleteRead|Connection broken"):
        fetch(half + LABELS, LABELS_SHA256, dest / LABELS)
    assert files_under(dest) == []  # neither the target nor pooch's temporary file
    path = download_file("mnist", LABELS, dest, mirrors=[half, whole])
    assert local_downloads_only == [half + LABELS, half + LABELS, whole + LABELS]
    assert files_under(dest) == [path]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LABELS_SHA256


def test_mirrors_are_tried_in_order_until_one_serves_the_right_bytes(
    served: Path, tmp_path: Path, serve: Serve, dead_url: str, local_downloads_only: list[str]
) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / LABELS).write_bytes(b"not the MNIST labels")
    mirrors = [dead_url, serve(corrupt), serve(tmp_path / "empty-or-missing"), serve(served)]
    path = locate_file("mnist", LABELS, data_dir=tmp_path, mirrors=mirrors)
    assert path == tmp_path / "mnist" / LABELS
    assert local_downloads_only == [m + LABELS for m in mirrors]
    # A later mirror is not asked once one has served the file.
    local_downloads_only.clear()
    assert locate_file("mnist", LABELS, data_dir=tmp_path, mirrors=mirrors) == path
    assert local_downloads_only == []


def test_a_silent_mirror_times_out_with_a_one_line_reason(tmp_path: Path, silent_url: str) -> None:
    with pytest.raises(MirrorError) as info:
        fetch(silent_url + LABELS, LABELS_SHA256, tmp_path / LABELS, timeout=0.3)
    message = str(info.value)
    assert message.startswith(silent_url + LABELS) and "timed out" in message
    assert "\n" not in message and files_under(tmp_path) == []


def test_offline_every_mirror_is_named_with_how_it_failed(
    tmp_path: Path, dead_url: str, silent_url: str
) -> None:
    with pytest.raises(DataError) as info:
        download_file("mnist", LABELS, tmp_path, mirrors=[dead_url, silent_url], timeout=0.3)
    lines = str(info.value).splitlines()
    assert lines[0] == f"could not download MNIST {LABELS!r}:"
    assert lines[1].startswith(f"  - {dead_url}{LABELS}: ") and "Connection refused" in lines[1]
    assert lines[2].startswith(f"  - {silent_url}{LABELS}: ") and "timed out" in lines[2]
    assert len(lines) == 3


def test_a_folder_that_cannot_be_made_stops_the_download(
    served: Path, tmp_path: Path, serve: Serve, local_downloads_only: list[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data folder should be")
    url = serve(served)
    with pytest.raises(DataError, match="cannot write") as info:
        download_file("mnist", LABELS, blocker / "mnist", mirrors=[url, url])
    assert not isinstance(info.value, MirrorError)  # not a mirror's fault: no other is tried
    assert str(blocker / "mnist" / LABELS) in str(info.value)
    assert local_downloads_only == []


def test_read_url_returns_the_bytes_or_a_mirror_error(
    served: Path, serve: Serve, dead_url: str
) -> None:
    url = serve(served)
    assert read_url(url + LABELS) == (served / LABELS).read_bytes()
    with pytest.raises(MirrorError, match="404"):
        read_url(url + "md5sums.txt")
    with pytest.raises(MirrorError, match="Connection refused"):
        read_url(dead_url + "md5sums.txt")
