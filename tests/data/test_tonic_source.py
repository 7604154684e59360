"""tonic's N-MNIST pipeline (tonic reads the files, tonic's transforms make the frames) against
insitu's own reader of the same files in ../shared/data/nmnist_small."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tonic
import torch

from insitu.data import load_nmnist, load_tonic, read_nmnist_events
from insitu.data.nmnist import NMNIST_SMALL_MANIFEST_SHA256
from insitu.data.tonic_source import TonicNmnist, nmnist_transform, tonic_options
from insitu.errors import ConfigError, DataError, UnknownNameError

N_TRAIN, N_TEST = 12, 6


# Only the folders a test names are searched (conftest's private_home).
pytestmark = pytest.mark.usefixtures("private_home")


def both(subset: Path, time_steps: int = 35, **options: Any) -> tuple[Any, Any]:
    """The same samples through tonic and through insitu's reader (same dt_us and polarity)."""
    via_tonic = load_tonic(
        "tonic:nmnist",
        subset,
        time_steps=time_steps,
        limit_train=N_TRAIN,
        limit_test=N_TEST,
        options=options,
    )
    own = {k: options[k] for k in ("dt_us", "polarity") if k in options}
    via_insitu = load_nmnist(
        subset, time_steps=time_steps, limit_train=N_TRAIN, limit_test=N_TEST, **own
    )
    return via_tonic, via_insitu


@pytest.mark.parametrize("polarity", [True, False])
def test_tonic_frames_equal_insitus_own_reader(subset: Path, polarity: bool) -> None:
    # 35 steps of 7 ms: 245 ms, so the recordings' last events (up to 336 ms) are cut in both.
    ours, theirs = both(subset, time_steps=35, dt_us=7000, polarity=polarity)
    assert ours.input_shape == theirs.input_shape
    assert ours.dt_s == theirs.dt_s == pytest.approx(7e-3)
    assert torch.equal(ours.y_train, theirs.y_train) and torch.equal(ours.y_test, theirs.y_test)
    assert torch.equal(ours.x_train, theirs.x_train)
    assert torch.equal(ours.x_test, theirs.x_test)
    assert 0 < float(ours.x_train.mean()) < 0.5  # real, sparse spikes, not two empty tensors


def test_downsampling_to_half_size_ors_each_2x2_block(subset: Path) -> None:
    # size 17 = 34 / 2: tonic's Downsample truncates x * 0.5, so pixel (x, y) -> (x//2, y//2);
    # a downsampled pixel spikes in a step where any of its four source pixels does.
    ours, theirs = both(subset, time_steps=30, size=17)
    assert ours.input_shape == (2, 17, 17) and ours.n_inputs == 578
    full = theirs.x_train.reshape(N_TRAIN, 30, 2, 17, 2, 17, 2)
    pooled = full.amax(dim=(4, 6)).reshape(N_TRAIN, 30, 578)
    assert torch.equal(ours.x_train, pooled)


def test_sizes_that_do_not_divide_fit_the_picture(subset: Path) -> None:
    ds = load_tonic(
        "tonic:nmnist",
        subset,
        time_steps=10,
        limit_train=4,
        limit_test=2,
        options={"size": 16, "polarity": False, "dt_us": 30000},
    )
    assert ds.input_shape == (16, 16) and ds.x_train.shape == (4, 10, 256)
    pictures = ds.x_train.reshape(4, 10, 16, 16)
    assert bool(pictures[..., 15, :].any()) and bool(pictures[..., :, 15].any())  # edge reached


def test_per_recording_time_bins_follow_tonics_rule(subset: Path) -> None:
    # dt_us null: tonic's n_time_bins cuts each recording from its first event in T windows of
    # (last - first) // T microseconds; insitu's reader bins from t = 0. Checked against the
    # events insitu decodes, binned by that rule.
    steps = 20
    ds = load_tonic(
        "tonic:nmnist",
        subset,
        time_steps=steps,
        limit_train=3,
        limit_test=1,
        options={"dt_us": None},
    )
    assert ds.dt_s is None
    for i, sample_id in enumerate((1, 2, 3)):
        ev = read_nmnist_events(subset / f"{sample_id}.bs2")
        window = (int(ev.t_us[-1]) - int(ev.t_us[0])) // steps
        step = (ev.t_us - ev.t_us[0]) // window
        keep = step < steps
        expected = torch.zeros(steps, 2 * 34 * 34, dtype=torch.bool)
        channel = ev.p.astype(np.int64) * 1156 + ev.y.astype(np.int64) * 34 + ev.x
        expected[torch.from_numpy(step[keep]), torch.from_numpy(channel[keep])] = True
        assert torch.equal(ds.x_train[i].bool(), expected)
    fixed = load_tonic("tonic:nmnist", subset, time_steps=steps, limit_train=3, limit_test=1)
    assert not torch.equal(ds.x_train, fixed.x_train)  # a different framing, said in the docs


def test_denoise_only_removes_spikes(subset: Path) -> None:
    kept = load_tonic("tonic:nmnist", subset, time_steps=20, limit_train=3, limit_test=1)
    clean = load_tonic(
        "tonic:nmnist",
        subset,
        time_steps=20,
        limit_train=3,
        limit_test=1,
        options={"denoise_us": 2000},
    )
    assert bool((clean.x_train <= kept.x_train).all())
    assert 0 < float(clean.x_train.sum()) < float(kept.x_train.sum())


def test_provenance_names_tonic_transform_and_files(subset: Path) -> None:
    ds = load_tonic(
        "tonic:nmnist", subset, time_steps=8, limit_train=5, limit_test=2, options={"size": 16}
    )
    p = ds.provenance
    assert p is not None
    assert p["library"] == "tonic" and p["tonic_version"] == tonic.__version__
    assert "Downsample" in p["transform"] and "ToFrame" in p["transform"]
    assert "target_size=(16, 16)" in p["transform"] and "n_time_bins" in p["transform"]
    assert p["manifest_sha256"] == NMNIST_SMALL_MANIFEST_SHA256
    assert p["samples"] == {"train": 5, "test": 2}
    more = load_tonic("tonic:nmnist", subset, time_steps=8, limit_train=6, limit_test=2)
    assert more.provenance is not None
    assert more.provenance["samples_sha256"]["train"] != p["samples_sha256"]["train"]
    assert more.provenance["samples_sha256"]["test"] == p["samples_sha256"]["test"]


def test_the_dataset_speaks_tonics_protocol(subset: Path) -> None:
    ds = TonicNmnist(subset, train=False, limit=3)
    events, label = ds[0]
    assert len(ds) == 3 and label == 7  # 60001: MNIST test image 0, a seven
    assert set(events.dtype.names) == {"x", "y", "t", "p"}
    own = read_nmnist_events(subset / "60001.bs2")
    assert np.array_equal(events["t"], own.t_us) and np.array_equal(events["x"], own.x)
    # Any tonic transform works on it, e.g. tonic's own ToFrame by event count.
    framed = TonicNmnist(
        subset,
        train=False,
        limit=1,
        transform=tonic.transforms.ToFrame(ds.sensor_size, event_count=500),
    )
    frames, _ = framed[0]
    assert frames.shape[1:] == (2, 34, 34) and int(frames[0].sum()) == 500


def test_a_corrupted_file_fails_its_checksum(subset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "nmnist_small"
    copy.mkdir()
    for name in ("SHA256SUMS", "train1K.txt", "test100.txt", "1.bs2", "2.bs2", "60001.bs2"):
        shutil.copy(subset / name, copy / name)
    data = bytearray((copy / "2.bs2").read_bytes())
    data[7] ^= 0x01
    (copy / "2.bs2").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"2\.bs2"):
        load_tonic("tonic:nmnist", tmp_path, time_steps=4, limit_train=2, limit_test=1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"sise": 16}, "unknown option 'sise' for dataset 'tonic:nmnist'; valid options: dt_us"),
        ({"size": 0}, "size = 0 must be a whole number of pixels in [1, 34]"),
        ({"size": 35}, "size = 35 must be"),
        ({"size": True}, "size = True must be"),
        ({"dt_us": 2.5}, "dt_us = 2.5 must be a whole number of microseconds >= 1, or null"),
        ({"dt_us": 0}, "dt_us = 0 must be"),
        ({"polarity": "yes"}, "polarity = 'yes' must be true or false"),
        ({"denoise_us": -1}, "denoise_us = -1 must be a positive time"),
        ({"denoise_us": float("inf")}, "denoise_us = inf must be"),
    ],
)
def test_bad_tonic_options_are_one_line_errors(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        tonic_options("tonic:nmnist", options)
    message = str(info.value)
    assert named in message and "\n" not in message


def test_unknown_tonic_dataset_and_bad_steps() -> None:
    with pytest.raises(UnknownNameError, match="tonic:nmnist"):
        tonic_options("tonic:dvsgesture", {})
    with pytest.raises(ConfigError, match="time_steps = 0"):
        nmnist_transform(tonic_options("tonic:nmnist"), 0)


def test_missing_tonic_says_how_to_install(subset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tonic", None)  # `import tonic` fails as if not installed
    with pytest.raises(ConfigError, match=r"need the tonic package: pip install 'insitu\[tonic\]'"):
        load_tonic("tonic:nmnist", subset, time_steps=4, limit_train=1, limit_test=1)
