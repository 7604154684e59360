"""N-MNIST: the event format, the real subset in ../shared/data/nmnist_small, and its checks."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from insitu.data import (
    ENV_VAR,
    NMNIST_SENSOR,
    decode_nmnist_events,
    load_nmnist,
    locate_nmnist,
    read_nmnist_events,
)
from insitu.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


# Only the folders a test names are searched (conftest's private_home).
pytestmark = pytest.mark.usefixtures("private_home")


def label_pairs(path: Path) -> list[tuple[int, int]]:
    """Parsed independently of the loader: skip the header, split each line."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#")
    return [(int(a), int(b)) for a, b in (line.split() for line in lines[1:] if line.strip())]


def copy_subset(subset: Path, dest: Path, train: int = 3, test: int = 2) -> Path:
    """The manifest, both label files and the first few samples of each split."""
    dest.mkdir(parents=True)
    for name in ("SHA256SUMS", "train1K.txt", "test100.txt"):
        shutil.copy(subset / name, dest / name)
    for sample_id in list(range(1, train + 1)) + list(range(60001, 60001 + test)):
        shutil.copy(subset / f"{sample_id}.bs2", dest / f"{sample_id}.bs2")
    return dest


def rewrite_manifest(folder: Path) -> None:
    """A manifest that matches the folder's current files (for tests that bypass the pin)."""
    lines = []
    for path in sorted(folder.iterdir()):
        if path.name != "SHA256SUMS":
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  ./{path.name}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_decode_hand_written_records() -> None:
    t = 0x3ABCDE  # 23-bit timestamp: 3849438 us
    data = bytes([12, 30, 0x80 | 0x3A, 0xBC, 0xDE, 0, 33, 0x00, 0x00, 0x01])
    events = decode_nmnist_events(data)
    assert len(events) == 2
    assert events.x.tolist() == [12, 0] and events.y.tolist() == [30, 33]
    assert events.p.tolist() == [1, 0]
    assert events.t_us.tolist() == [t, 1] and t == 3849438
    # The top bit of byte 2 is the polarity, not part of the time.
    off = decode_nmnist_events(bytes([1, 2, 0x7F, 0xFF, 0xFF]))
    assert off.p.tolist() == [0] and off.t_us.tolist() == [2**23 - 1]


def test_read_real_file(subset: Path) -> None:
    path = subset / "1.bs2"
    events = read_nmnist_events(path)
    assert len(events) == path.stat().st_size // 5 > 1000
    height, width = NMNIST_SENSOR
    assert int(events.x.max()) < width and int(events.y.max()) < height
    assert set(events.p.tolist()) == {0, 1}
    steps = np.diff(events.t_us)
    assert (steps < 0).mean() < 0.01  # time runs forwards (recorded in order)
    assert 0 <= events.t_us[0] < 50_000 and 200_000 < events.t_us[-1] < 400_000  # ~0.3 s


def test_truncated_file_is_named(tmp_path: Path, subset: Path) -> None:
    bad = tmp_path / "7.bs2"
    bad.write_bytes((subset / "1.bs2").read_bytes()[:12])
    with pytest.raises(DataError, match=r"7\.bs2.*multiple of 5"):
        read_nmnist_events(bad)
    with pytest.raises(DataError, match=r"nope\.bs2"):
        read_nmnist_events(tmp_path / "nope.bs2")


def test_whole_subset_loads_with_the_label_files_labels(subset: Path) -> None:
    ds = load_nmnist(SHARED, polarity=False, dtype=torch.bool)
    train, test = label_pairs(subset / "train1K.txt"), label_pairs(subset / "test100.txt")
    assert len(train) == 1000 and len(test) == 100
    assert ds.x_train.shape == (1000, 70, 34 * 34) and ds.x_test.shape == (100, 70, 34 * 34)
    assert ds.y_train.tolist() == [label for _, label in train]
    assert ds.y_test.tolist() == [label for _, label in test]
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the first MNIST training digits
    assert ds.input_shape == (34, 34) and ds.dt_s == pytest.approx(0.005)
    assert ds.x_train.dtype == torch.bool and bool(ds.x_train.any(dim=(1, 2)).all())


def test_spike_tensor_matches_the_events(subset: Path) -> None:
    ds = load_nmnist(subset, time_steps=40, dt_us=5000, limit_train=3, limit_test=2)
    assert ds.x_train.shape == (3, 40, 2 * 34 * 34) and ds.x_test.shape == (2, 40, 2312)
    assert ds.input_shape == (2, 34, 34) and ds.x_train.dtype == torch.float32
    for index, sample_id in enumerate((1, 2, 3)):
        ev = read_nmnist_events(subset / f"{sample_id}.bs2")
        expected = torch.zeros(40, 2, 34, 34)
        keep = ev.t_us < 40 * 5000
        for t, p, y, x in zip(
            (ev.t_us[keep] // 5000).tolist(),
            ev.p[keep].tolist(),
            ev.y[keep].tolist(),
            ev.x[keep].tolist(),
            strict=True,
        ):
            expected[t, p, y, x] = 1.0
        assert torch.equal(ds.x_train[index], expected.reshape(40, 2312))
    # The test split starts at 60001.bs2.
    first_test = read_nmnist_events(subset / "60001.bs2")
    assert ds.x_test[0].sum() > 0 and len(first_test) > 0


def test_corrupted_file_fails_its_checksum(tmp_path: Path, subset: Path) -> None:
    folder = copy_subset(subset, tmp_path / "nmnist_small")
    load_nmnist(tmp_path, limit_train=3, limit_test=2)  # the intact copy loads
    data = bytearray((folder / "2.bs2").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "2.bs2").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"2\.bs2.*checksum mismatch"):
        load_nmnist(tmp_path, limit_train=3, limit_test=2)


def test_truncated_file_in_the_subset(tmp_path: Path, subset: Path) -> None:
    folder = copy_subset(subset, tmp_path / "nmnist_small")
    (folder / "3.bs2").write_bytes((subset / "3.bs2").read_bytes()[:-2])
    with pytest.raises(DataError, match=r"3\.bs2.*checksum mismatch"):
        load_nmnist(folder, limit_train=3, limit_test=2)
    # With a manifest rewritten to match, the pin catches the manifest instead ...
    rewrite_manifest(folder)
    with pytest.raises(DataError, match=r"SHA256SUMS.*checksum mismatch"):
        load_nmnist(folder, limit_train=3, limit_test=2)
    # ... and trusting it leaves the format check to find the truncation.
    with pytest.raises(DataError, match=r"3\.bs2.*multiple of 5"):
        load_nmnist(folder, limit_train=3, limit_test=2, manifest_sha256=None)


def test_file_missing_or_unlisted(tmp_path: Path, subset: Path) -> None:
    folder = copy_subset(subset, tmp_path / "nmnist_small", train=2)
    with pytest.raises(DataError, match=r"3\.bs2: missing"):
        load_nmnist(folder, limit_train=3, limit_test=2)
    (folder / "1.bs2").unlink()
    rewrite_manifest(folder)
    with pytest.raises(DataError, match=r"1\.bs2: not listed"):
        load_nmnist(folder, limit_train=1, limit_test=1, manifest_sha256=None)


def test_malformed_label_file(tmp_path: Path, subset: Path) -> None:
    folder = copy_subset(subset, tmp_path / "nmnist_small")
    (folder / "train1K.txt").write_text("#sample #class\n1\t5\n2 x\n")
    rewrite_manifest(folder)
    with pytest.raises(DataError, match=r"train1K\.txt:3"):
        load_nmnist(folder, limit_train=1, limit_test=1, manifest_sha256=None)


def test_missing_folder_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        locate_nmnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "nmnist_small" / "SHA256SUMS") in message
    assert ENV_VAR in message and "10.17632/468j46mzdv" in message


def test_found_through_the_environment(monkeypatch: pytest.MonkeyPatch, subset: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(SHARED))
    assert locate_nmnist() == subset


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"time_steps": 0}, "time_steps"),
        ({"dt_us": 0}, "dt_us"),
        ({"limit_train": 0}, "limit_train"),
        ({"dtype": torch.float64}, "dtype"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_nmnist(SHARED, **kwargs)  # type: ignore[arg-type]
