"""Downloads in the data tests: served by http.server on 127.0.0.1, never from the internet."""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from insitu.data import ENV_VAR, download

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SUBSET = SHARED / "nmnist_small"


@pytest.fixture(scope="module")
def subset() -> Path:
    """The real N-MNIST subset; the tests need it and do not skip without it."""
    for name in ("SHA256SUMS", "train1K.txt", "test100.txt", "1.bs2", "60001.bs2"):
        if not (SUBSET / name).is_file():
            pytest.fail(f"real data file {SUBSET / name} is missing; expected the N-MNIST subset")
    return SUBSET


@pytest.fixture
def private_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No INSITU_DATA and an empty HOME, so only the folders a test names are searched."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(ENV_VAR, raising=False)


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files like http.server, without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(folder, handler=QuietHandler)`` serves ``folder`` on 127.0.0.1; returns its URL.

    Every server started in a test is shut down when the test ends.
    """
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path, handler_class: type[SimpleHTTPRequestHandler] = QuietHandler) -> str:
        handler = functools.partial(handler_class, directory=str(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def dead_url() -> str:
    """A local URL nothing listens on, standing in for an unreachable mirror."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def local_downloads_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any download from outside 127.0.0.1; return the URLs asked for, in order."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    asked: list[str] = []
    real_downloader = download._downloader

    def local_only(timeout: float) -> Callable[[str, Any, Any], None]:
        inner = real_downloader(timeout)

        def fetch(url: str, output_file: Any, pooch: Any) -> None:
            asked.append(url)
            assert url.startswith("http://127.0.0.1:"), f"a test tried to reach {url}"
            inner(url, output_file, pooch)

        return fetch

    monkeypatch.setattr(download, "_downloader", local_only)
    return asked
