"""A spiking run on tonic's N-MNIST pipeline from the shipped config: it trains in the loop,
records where its data came from, and refuses bad tonic options in one line."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import tonic
import yaml

from insitu import cli
from insitu.errors import ConfigError
from insitu.experiments.config import make_spiking_config, read_config_file
from insitu.experiments.spiking_run import train_spiking

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CONFIG = ROOT / "configs" / "in_the_loop_nmnist_tonic.yaml"
# The smoke settings the config's header gives, plus a little more training to see it learn.
TINY: dict[str, Any] = {
    "data_dir": str(SHARED),
    "epochs": 4,
    "limit_train": 40,
    "limit_test": 20,
    "hidden": [16],
    "batch_size": 10,
}


@pytest.fixture(scope="module")
def shared() -> Path:
    if not (SHARED / "nmnist_small" / "SHA256SUMS").is_file():
        pytest.fail(f"the tests expect the N-MNIST subset in {SHARED}/nmnist_small")
    return SHARED


def tiny(**changes: Any) -> dict[str, Any]:
    values = read_config_file(CONFIG)
    values.update(TINY)
    values.update(changes)
    return values


def comparable(rows: list[dict[str, float]]) -> list[dict[str, float | None]]:
    """Metric rows without wall time, NaN (epoch 0's loss) as None so rows compare equal."""
    return [{k: None if math.isnan(v) else v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_the_shipped_tonic_config_trains_in_the_loop(shared: Path, tmp_path: Path) -> None:
    cfg = make_spiking_config(tiny())
    assert cfg.dataset == "tonic:nmnist" and cfg.algorithm == "in-the-loop"
    result = train_spiking(cfg, tmp_path / "run", progress=False)
    rows = result.rows
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4]
    losses = [r["loss_mean"] for r in rows[1:]]
    assert losses[-1] < 0.5 * losses[0], losses
    assert rows[-1]["train_acc_mean"] > rows[0]["train_acc_mean"]  # it learns
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "finished" and s["dataset"] == "tonic:nmnist"
    assert s["layers"] == [256, 16, 10]  # 16 x 16 pixels, polarities merged
    assert s["events"]["emulation_step"] > 0  # the forward passes ran on the chip
    p = s["dataset_provenance"]
    assert p["library"] == "tonic" and p["tonic_version"] == tonic.__version__
    assert "Downsample" in p["transform"] and "MergePolarities" in p["transform"]
    assert "time_window=10000" in p["transform"]
    assert p["samples"] == {"train": 40, "test": 20} == s["dataset_sizes"]
    assert len(p["samples_sha256"]["train"]) == 64
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["dataset"] == "tonic:nmnist" and written["dataset_options"]["size"] == 16


def test_same_frames_same_run_as_insitus_own_reader(shared: Path, tmp_path: Path) -> None:
    # Without downsampling, tonic's frames are insitu's reader's, so the two runs are one run.
    common = {"epochs": 1, "limit_train": 20, "limit_test": 10, "hidden": [8], "time_steps": 12}
    frames = {"dt_us": 25000, "polarity": False}
    via_tonic = train_spiking(
        make_spiking_config(tiny(**common, dataset_options=frames)),
        tmp_path / "tonic",
        progress=False,
    )
    own = train_spiking(
        make_spiking_config(tiny(**common, dataset="nmnist", dataset_options=frames)),
        tmp_path / "own",
        progress=False,
    )
    assert comparable(via_tonic.rows) == comparable(own.rows)
    assert via_tonic.summary["layers"] == own.summary["layers"] == [34 * 34, 8, 10]
    assert "dataset_provenance" in via_tonic.summary


def test_cli_runs_the_config_into_a_folder_without_colons(
    shared: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["insitu", "spiking", str(CONFIG), "--runs", str(tmp_path), "--quiet"]
    for key, value in {**TINY, "epochs": 1, "hidden": "[8]"}.items():
        args += ["--set", f"{key}={value}"]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    assert "test accuracy" in capsys.readouterr().out
    (run,) = tmp_path.iterdir()
    assert run.name.endswith("in-the-loop-tonic-nmnist") and ":" not in run.name
    assert (run / "summary.json").is_file()


def test_bad_tonic_option_fails_at_config_time() -> None:
    with pytest.raises(ConfigError, match=r"size = 99 must be a whole number of pixels"):
        make_spiking_config({"dataset": "tonic:nmnist", "dataset_options": {"size": 99}})
    with pytest.raises(ConfigError, match=r"unknown spiking dataset 'tonic:dvs'"):
        make_spiking_config({"dataset": "tonic:dvs"})


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("dataset_options.size=99", "size = 99 must be a whole number of pixels in [1, 34]"),
        ("dataset_options.bins=3", "unknown option 'bins' for dataset 'tonic:nmnist'"),
        ("dataset_options.dt_us=0.5", "dt_us = 0.5 must be a whole number of microseconds"),
    ],
)
def test_cli_bad_tonic_option_is_one_line_exit_2(
    setting: str,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    args = ["insitu", "spiking", str(CONFIG), "--set", setting, "--out", str(out)]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps at the terminal's width
    assert err.startswith("error: ") and named in err and err.count("error") == 1, err
    assert "Traceback" not in err and not out.exists()
