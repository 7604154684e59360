"""SHD loader, on small HDF5 files of the published layout written by the tests themselves."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import requests
import torch

from insitu.data import ENV_VAR, SHD_CHANNELS, load_shd, locate_shd, read_shd, shd_channels
from insitu.errors import ConfigError, DataError

Sample = tuple[Sequence[float], Sequence[int]]


@pytest.fixture(autouse=True)
def private_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(ENV_VAR, raising=False)


def write_shd(path: Path, samples: Sequence[Sample], labels: Sequence[int]) -> Path:
    """An HDF5 file laid out like shd_*.h5: vlen float32 times, vlen uint16 units, labels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        times = spikes.create_dataset(
            "times", (len(samples),), dtype=h5py.vlen_dtype(np.dtype("float32"))
        )
        units = spikes.create_dataset(
            "units", (len(samples),), dtype=h5py.vlen_dtype(np.dtype("uint16"))
        )
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=np.float32)
            units[i] = np.asarray(u, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_group("extra").create_dataset("speaker", data=np.zeros(len(samples), np.uint16))
    return path


def random_samples(n: int, seed: int, spikes: int = 400) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for _ in range(n):
        t = np.sort(rng.uniform(0.0, 0.9, spikes))
        u = rng.integers(0, SHD_CHANNELS, spikes)
        out.append((t.tolist(), u.tolist()))
    return out


@pytest.fixture
def shd_dir(tmp_path: Path) -> Path:
    """A folder with a small training file (3 samples) and test file (2 samples)."""
    folder = tmp_path / "data"
    write_shd(
        folder / "shd" / "shd_train.h5",
        [
            # 70 -> column 0, 79 -> 1, 691 -> 69; 71 and 5 are not kept; 0.5 s is past 50 steps.
            ([0.0125, 0.0305, 0.2555, 0.011, 0.02, 0.5], [70, 79, 691, 71, 5, 70]),
            ([], []),
            ([0.4999], [160]),
        ],
        [3, 19, 0],
    )
    write_shd(folder / "shd" / "shd_test.h5", [([0.001], [70]), ([0.0423], [88])], [7, 11])
    return folder


def test_spikes_land_in_floor_bins_and_kept_channels(shd_dir: Path) -> None:
    ds = load_shd(shd_dir, time_steps=50, dt_s=0.01)
    assert ds.x_train.shape == (3, 50, 70) and ds.x_test.shape == (2, 50, 70)
    assert ds.name == "shd" and ds.n_classes == 20 and ds.input_shape == (70,)
    assert ds.dt_s == pytest.approx(0.01)
    expected = torch.zeros(3, 50, 70)
    expected[0, 1, 0] = 1.0  # t = 0.0125 s, channel 70
    expected[0, 3, 1] = 1.0  # t = 0.0305 s, channel 79
    expected[0, 25, 69] = 1.0  # t = 0.2555 s, channel 691
    expected[2, 49, 10] = 1.0  # t = 0.4999 s, channel 160 = 70 + 9 * 10
    assert torch.equal(ds.x_train, expected)
    assert ds.y_train.tolist() == [3, 19, 0] and ds.y_test.tolist() == [7, 11]
    assert ds.y_train.dtype == torch.int64
    assert ds.x_test.nonzero().tolist() == [[0, 0, 0], [1, 4, 2]]  # channel 88 = 70 + 9 * 2


def test_channel_subsampling_picks_70_79_and_so_on(tmp_path: Path) -> None:
    kept = shd_channels()
    assert len(kept) == 70 and kept[:3] == (70, 79, 88) and kept[-1] == 691
    assert kept == tuple(70 + 9 * k for k in range(70))
    assert shd_channels(0, 1, None) == tuple(range(700))
    # One spike per channel c at time (c + 0.5) steps: the step of each kept spike names c.
    units = np.arange(SHD_CHANNELS)
    sample = (((units + 0.5) * 1e-3).tolist(), units.tolist())
    write_shd(tmp_path / "shd_train.h5", [sample], [0])
    write_shd(tmp_path / "shd_test.h5", [sample], [0])
    ds = load_shd(tmp_path, time_steps=SHD_CHANNELS, dt_s=1e-3)
    steps, columns = ds.x_train[0].nonzero().T.tolist()
    assert columns == list(range(70))
    assert steps == list(kept)


def test_channel_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="only 70"):
        shd_channels(70, 9, 71)
    with pytest.raises(ConfigError, match="channel_step"):
        shd_channels(70, 0, 70)
    with pytest.raises(ConfigError, match="channels"):
        shd_channels(70, 9, 0)
    assert len(shd_channels(0, 10, None)) == 70


def test_jitter_changes_training_data_only_and_is_seeded(tmp_path: Path) -> None:
    write_shd(tmp_path / "shd_train.h5", random_samples(4, seed=1), [0, 1, 2, 3])
    write_shd(tmp_path / "shd_test.h5", random_samples(3, seed=2), [4, 5, 6])
    opts = {"time_steps": 100, "dt_s": 0.01, "channel_start": 0, "channel_step": 1,
            "channels": None}  # fmt: skip
    plain = load_shd(tmp_path, **opts)  # type: ignore[arg-type]
    a = load_shd(tmp_path, jitter_std=3.0, seed=7, **opts)  # type: ignore[arg-type]
    b = load_shd(tmp_path, jitter_std=3.0, seed=7, **opts)  # type: ignore[arg-type]
    c = load_shd(tmp_path, jitter_std=3.0, seed=8, **opts)  # type: ignore[arg-type]
    zero = load_shd(tmp_path, jitter_std=0.0, seed=7, **opts)  # type: ignore[arg-type]
    assert not torch.equal(a.x_train, plain.x_train)
    assert torch.equal(a.x_test, plain.x_test)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert torch.equal(zero.x_train, plain.x_train)
    # Only channels move: a step without spikes (all channels kept here) stays empty.
    assert not (a.x_train.any(dim=2) & ~plain.x_train.any(dim=2)).any()
    moved = (a.x_train != plain.x_train).any(dim=(0, 1)).sum()
    assert moved > 100


def test_gzipped_file_reads_like_the_original(shd_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gz"
    folder.mkdir()
    for name in ("shd_train.h5", "shd_test.h5"):
        raw = (shd_dir / "shd" / name).read_bytes()
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
    assert locate_shd("train", folder) == folder / "shd_train.h5.gz"
    a = load_shd(shd_dir, time_steps=50, dt_s=0.01)
    b = load_shd(folder, time_steps=50, dt_s=0.01)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_limits_and_read_shd(shd_dir: Path) -> None:
    events = read_shd(shd_dir / "shd" / "shd_train.h5", limit=2)
    assert events.n_samples == 2 and events.sample.tolist() == [0] * 6
    assert events.units.tolist() == [70, 79, 691, 71, 5, 70]
    assert events.times_s.dtype == np.float64
    ds = load_shd(shd_dir, limit_train=1, limit_test=1, time_steps=50)
    assert len(ds.y_train) == 1 and len(ds.y_test) == 1


def test_missing_file_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_shd(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "shd_train.h5") in message
    assert str(tmp_path / "shd" / "shd_train.h5.gz") in message
    assert "https://zenkelab.org/datasets/shd_train.h5.gz" in message
    assert ENV_VAR in message and "sha256" in message


def test_user_supplied_checksum(shd_dir: Path) -> None:
    train = shd_dir / "shd" / "shd_train.h5"
    test = shd_dir / "shd" / "shd_test.h5"
    train_digest = hashlib.sha256(train.read_bytes()).hexdigest()
    test_digest = hashlib.sha256(test.read_bytes()).hexdigest()
    load_shd(shd_dir, time_steps=10, train_sha256=train_digest, test_sha256=test_digest.upper())
    with pytest.raises(DataError, match=r"shd_test\.h5.*checksum mismatch"):
        load_shd(shd_dir, time_steps=10, train_sha256=train_digest, test_sha256="0" * 64)


def test_malformed_files(tmp_path: Path) -> None:
    bad = tmp_path / "shd_train.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("labels", data=np.zeros(1, np.uint8))
    with pytest.raises(DataError, match="spikes/times"):
        read_shd(bad)
    write_shd(bad, [([0.1], [700])], [0])
    with pytest.raises(DataError, match=r"channels outside \[0, 700\)"):
        read_shd(bad)
    write_shd(bad, [([0.1], [3])], [20])
    with pytest.raises(DataError, match="labels outside"):
        read_shd(bad)
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match="HDF5"):
        read_shd(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"time_steps": 0}, "time_steps"),
        ({"dt_s": 0.0}, "dt_s"),
        ({"jitter_std": -1.0}, "jitter_std"),
        ({"channels": 100}, "only 70"),
        ({"limit_test": 0}, "limit_test"),
    ],
)
def test_bad_arguments(shd_dir: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_shd(shd_dir, **kwargs)  # type: ignore[arg-type]


def _serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[str]:
    """Replace the network: URLs ending in a served name get its bytes, others fail."""
    asked: list[str] = []

    def fake_downloader(timeout: float) -> Callable[[str, Any, Any], None]:
        def download(url: str, output_file: Any, pooch: Any) -> None:
            asked.append(url)
            for name, payload in files.items():
                if url.endswith("/" + name):
                    if isinstance(output_file, str):  # pooch's temporary file
                        Path(output_file).write_bytes(payload)
                    else:
                        output_file.write(payload)
                    return
            raise requests.ConnectionError(f"no route to {url}")

        return download

    monkeypatch.setattr("insitu.data.download._downloader", fake_downloader)
    return asked


def test_download_checks_the_mirrors_md5_list(
    shd_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payloads = {
        f"shd_{s}.h5.gz": gzip.compress((shd_dir / "shd" / f"shd_{s}.h5").read_bytes())
        for s in ("train", "test")
    }
    md5s = "".join(
        f"{hashlib.md5(p, usedforsecurity=False).hexdigest()}  {n}\n" for n, p in payloads.items()
    )
    asked = _serve(monkeypatch, {"md5sums.txt": md5s.encode(), **payloads})
    fresh = tmp_path / "fresh"
    fresh.mkdir()  # a data_dir must exist, even to download into
    ds = load_shd(fresh, time_steps=50, download=True)
    assert (fresh / "shd" / "shd_train.h5.gz").is_file()
    assert asked[0].startswith("https://zenkelab.org/datasets/")
    want = load_shd(shd_dir, time_steps=50)
    assert torch.equal(ds.x_train, want.x_train) and torch.equal(ds.y_test, want.y_test)


def test_download_with_wrong_md5_keeps_nothing(
    shd_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = gzip.compress((shd_dir / "shd" / "shd_train.h5").read_bytes())
    _serve(
        monkeypatch, {"md5sums.txt": b"0" * 32 + b"  shd_train.h5.gz\n", "shd_train.h5.gz": payload}
    )
    fresh = tmp_path / "fresh"
    fresh.mkdir()  # a data_dir must exist, even to download into
    with pytest.raises(DataError, match="MD5 hash of downloaded file") as info:
        load_shd(fresh, download=True)
    assert "compneuro.net" in str(info.value)  # every mirror was tried
    assert [p for p in fresh.rglob("*") if not p.is_dir()] == []  # nothing kept, whole or part
