"""The runner: what a run directory holds, refusing to overwrite, divergence, reproducibility."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from insitu.algorithms import AnalogSGD
from insitu.errors import ConfigError, DivergenceError
from insitu.experiments import RunResult, load_config, make_config, train
from insitu.experiments.crossbar_run import METRIC_FIELDS
from insitu.experiments.run import accuracy_text, new_run_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FILES = {
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "learning_curve.png",
    "conductance_histogram.png",
}
# Real MNIST files, beside the repository (never downloaded by the tests).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def small(**changes: Any) -> dict[str, Any]:
    """A run that takes about a second: 200 training digits, 100 test digits, 2 epochs."""
    values: dict[str, Any] = {
        "dataset": "digits",
        "hidden": [16],
        "limit_train": 200,
        "limit_test": 100,
        "epochs": 2,
        "instances": 2,
        "lr": 0.3,
        "seed": 0,
    }
    values.update(changes)
    return values


def read_metrics(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return summary


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One analog-sgd run on organic ECRAM, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("runs") / "first"
    return train(make_config(small()), run_dir, console=quiet(), progress=False)


# -- the run directory -------------------------------------------------------------------------


def test_run_directory_holds_exactly_the_run_files(finished: RunResult) -> None:
    # Atomic writes leave no temporary files behind.
    assert {p.name for p in finished.run_dir.iterdir()} == RUN_FILES


def test_config_yaml_is_the_resolved_config(finished: RunResult) -> None:
    assert load_config(finished.run_dir / "config.yaml") == finished.config


def test_metrics_csv_has_one_row_per_epoch_after_the_untrained_one(finished: RunResult) -> None:
    header, rows = read_metrics(finished.run_dir)
    assert header == list(METRIC_FIELDS)
    assert [int(float(r["epoch"])) for r in rows] == [0, 1, 2]
    values = [{k: float(v) for k, v in row.items()} for row in rows]
    for row in values:
        for key in ("train_acc_mean", "test_acc_mean"):
            assert 0.0 <= row[key] <= 1.0
        assert row["test_acc_std"] >= 0 and row["array_reads"] > 0
    # Epoch 0 is the untrained chip: measured (near chance for 10 digits), no loss yet.
    untrained, *trained = values
    assert math.isnan(untrained["loss_mean"]) and math.isnan(untrained["loss_std"])
    assert untrained["test_acc_mean"] < 0.3
    for row in trained:
        assert all(math.isfinite(v) for v in row.values())
        assert row["loss_mean"] > 0 and row["loss_std"] >= 0 and row["device_pulses"] > 0
    pulses = [row["device_pulses"] for row in values]
    assert pulses[0] < pulses[1] < pulses[2]  # cumulative counts
    # The CSV holds the numbers the run returned.
    for row, kept in zip(values, finished.rows, strict=True):
        for key in METRIC_FIELDS:
            assert row[key] == pytest.approx(kept[key], rel=1e-12, nan_ok=True)


def test_the_untrained_evaluation_is_an_evaluation(finished: RunResult) -> None:
    summary = read_summary(finished.run_dir)
    untrained = finished.rows[0]
    # Before epoch 1 the chip has only been set up: its pulses are the setup's.
    assert untrained["device_pulses"] == summary["setup_events"].get("device_pulse", 0.0)
    # Three evaluations (epochs 0, 1, 2) of 200 training and 100 test samples.
    assert summary["eval_samples"] == 3 * (200 + 100)
    reads = summary["eval_events"]["array_read"]
    assert reads + summary["train_events"]["array_read"] == summary["events"]["array_read"]
    # The array reads at epoch 0 are the setup's and those of one evaluation (of three alike).
    setup_reads = summary["setup_events"].get("array_read", 0.0)
    assert untrained["array_reads"] == pytest.approx(setup_reads + reads / 3)


def test_summary_json_describes_the_finished_run(finished: RunResult) -> None:
    summary = read_summary(finished.run_dir)
    assert summary["status"] == "finished"
    assert summary["message"] == ""
    assert summary["algorithm"] == "analog-sgd"
    assert summary["device"] == "ecram-organic"
    assert summary["dataset"] == "digits"
    assert summary["layers"] == [64, 16, 10]
    assert summary["instances"] == 2
    assert summary["epochs_completed"] == 2
    assert summary["train_samples"] == 2 * 200
    assert isinstance(summary["test_acc"], list) and len(summary["test_acc"]) == 2
    assert all(0.0 <= a <= 1.0 for a in summary["test_acc"])
    assert summary["test_acc_mean"] == pytest.approx(sum(summary["test_acc"]) / 2)
    assert summary["events"]["device_pulse"] > 0
    assert summary == finished.summary
    assert finished.final_test_acc == summary["test_acc"]


@pytest.mark.parametrize("name", ["learning_curve.png", "conductance_histogram.png"])
def test_plots_are_png_files(finished: RunResult, name: str) -> None:
    data = (finished.run_dir / name).read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000


def test_second_run_into_the_same_directory_is_refused(finished: RunResult) -> None:
    before = snapshot(finished.run_dir)
    with pytest.raises(ConfigError, match="already holds files"):
        train(make_config(small(seed=1)), finished.run_dir, console=quiet(), progress=False)
    assert snapshot(finished.run_dir) == before


def test_empty_and_missing_directories_are_used(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = make_config(small(algorithm="software", epochs=1, limit_train=50, limit_test=20))
    train(cfg, empty, console=quiet(), progress=False)
    nested = tmp_path / "a" / "b" / "c"
    train(cfg, nested, console=quiet(), progress=False)
    for run_dir in (empty, nested):
        # Software has no chip, so no conductance histogram.
        assert {p.name for p in run_dir.iterdir()} == RUN_FILES - {"conductance_histogram.png"}


def test_a_directory_left_by_a_start_killed_mid_write_is_used(tmp_path: Path) -> None:
    # A run (a sweep trial, say) killed while writing its config leaves only the temporary.
    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    (run_dir / ".config.yaml.k1ll3d").write_text("algorithm: anal")
    cfg = make_config(small(algorithm="software", epochs=1, limit_train=50, limit_test=20))
    train(cfg, run_dir, console=quiet(), progress=False)
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES - {"conductance_histogram.png"}
    # Anything else in the directory is an earlier run's, and stays untouched.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds files"):
        train(cfg, other, console=quiet(), progress=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_new_run_dir_never_reuses_a_directory(tmp_path: Path) -> None:
    cfg = make_config(small())
    made = {new_run_dir(tmp_path, cfg) for _ in range(3)}
    assert len(made) == 3
    for path in made:
        assert path.is_dir() and path.parent == tmp_path
        assert "analog-sgd-ecram-organic-digits" in path.name


# -- divergence --------------------------------------------------------------------------------


def test_divergence_keeps_completed_epochs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The loss turns NaN in the second epoch (200 samples / batches of 10 = 20 per epoch).
    original = AnalogSGD.train_batch
    calls = {"n": 0}

    def failing(self: AnalogSGD, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = original(self, x, y)
        return loss if calls["n"] <= 20 else torch.full_like(loss, math.nan)

    monkeypatch.setattr(AnalogSGD, "train_batch", failing)
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError) as info:
        train(make_config(small(epochs=3)), run_dir, console=quiet(), progress=False)
    assert "epoch 2" in str(info.value)
    assert str(run_dir) in str(info.value)  # says where the metrics are

    header, rows = read_metrics(run_dir)
    assert header == list(METRIC_FIELDS)
    assert [int(float(r["epoch"])) for r in rows] == [0, 1]
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged"
    assert "NaN" in summary["message"]
    assert summary["epochs_completed"] == 1
    assert summary["train_samples"] == 200
    assert len(summary["test_acc"]) == 2  # the accuracies of the last completed epoch
    assert (run_dir / "learning_curve.png").read_bytes().startswith(PNG_MAGIC)
    assert (run_dir / "conductance_histogram.png").read_bytes().startswith(PNG_MAGIC)


def test_real_divergence_in_the_first_epoch(tmp_path: Path) -> None:
    # A linear network with a huge learning rate overflows to inf within a few batches.
    cfg = make_config(small(algorithm="software", activation="identity", lr=10.0, epochs=2))
    run_dir = tmp_path / "run"
    with pytest.raises(DivergenceError, match="NaN or infinite"):
        train(cfg, run_dir, console=quiet(), progress=False)
    header, rows = read_metrics(run_dir)
    assert header == list(METRIC_FIELDS)
    assert [int(float(r["epoch"])) for r in rows] == [0]  # only the untrained network
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged"
    assert summary["epochs_completed"] == 0 and summary["train_samples"] == 0
    # What was measured last is the untrained network's accuracy.
    assert summary["test_acc_mean"] == pytest.approx(float(rows[0]["test_acc_mean"]))
    assert (run_dir / "learning_curve.png").read_bytes().startswith(PNG_MAGIC)


# -- reproducibility ---------------------------------------------------------------------------


def _without_wall(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def _summary_without_wall(run_dir: Path) -> dict[str, Any]:
    return {k: v for k, v in read_summary(run_dir).items() if k != "wall_s"}


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    values = small(limit_train=100, limit_test=50, hidden=[8], seed=5)
    dirs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    train(make_config(values), dirs[0], console=quiet(), progress=False)
    train(make_config(values), dirs[1], console=quiet(), progress=False)
    train(make_config({**values, "seed": 6}), dirs[2], console=quiet(), progress=False)
    a, b, c = (_without_wall(read_metrics(d)[1]) for d in dirs)
    assert a == b
    assert a != c
    assert _summary_without_wall(dirs[0]) == _summary_without_wall(dirs[1])
    assert (dirs[0] / "config.yaml").read_bytes() == (dirs[1] / "config.yaml").read_bytes()


# -- real data ---------------------------------------------------------------------------------


def test_train_on_real_mnist_files(tmp_path: Path) -> None:
    assert (SHARED_DATA / "mnist").is_dir(), f"MNIST files expected under {SHARED_DATA}"
    cfg = make_config(
        {
            "algorithm": "software",
            "dataset": "mnist",
            "data_dir": str(SHARED_DATA / "mnist"),
            "hidden": [16],
            "epochs": 1,
            "instances": 1,
            "limit_train": 300,
            "limit_test": 100,
            "lr": 0.5,
        }
    )
    result = train(cfg, tmp_path / "mnist", console=quiet(), progress=False)
    assert result.summary["layers"] == [784, 16, 10]
    assert result.summary["status"] == "finished"
    assert result.summary["test_acc_mean"] > 0.2  # well above chance after 300 samples


# -- reconstruction targets --------------------------------------------------------------------


def test_braille_run_trains_to_target_patterns(tmp_path: Path) -> None:
    cfg = make_config(
        small(
            algorithm="activity-difference-float",
            dataset="braille",
            dataset_options={"train_per_class": 60, "test_per_class": 20, "flip_rate": 0.1},
            hidden=[32],
            limit_train=None,
            limit_test=None,
            epochs=4,
            lr=0.5,
            algorithm_options={"layer_lr": [2, 1]},
        )
    )
    result = train(cfg, tmp_path / "braille", console=quiet(), progress=False)
    summary = result.summary
    assert summary["layers"] == [60, 32, 60]  # the output is the 60-dot pattern, not 9 classes
    exact = summary["test_exact_reconstruction"]
    assert len(exact) == 2
    assert min(exact) > 0.5
    # A pattern restored exactly decodes to its name, so accuracy is at least the exact share.
    assert min(summary["test_acc"]) >= min(exact)


def test_bad_dataset_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="flips"):
        make_config(small(dataset="braille", dataset_options={"flips": 0.1}))
    with pytest.raises(ConfigError, match="takes no options"):
        make_config(small(dataset="digits", dataset_options={"flip_rate": 0.1}))
    cfg = make_config(small(dataset="braille", dataset_options={"flip_rate": 0.9}))
    with pytest.raises(ConfigError, match="flip_rate"):
        train(cfg, tmp_path / "bad", console=quiet(), progress=False)
    assert not (tmp_path / "bad").exists()  # nothing written for a run that cannot start


def test_lr_decay_scales_the_rate_every_epoch(tmp_path: Path) -> None:
    cfg = make_config(small(algorithm="software", epochs=3, lr=0.4, lr_decay=0.5))
    result = train(cfg, tmp_path / "decay", console=quiet(), progress=False)
    assert result.trainer is not None
    assert result.trainer.lr == pytest.approx(0.4 * 0.5**2)
    with pytest.raises(ConfigError, match="lr_decay"):
        make_config(small(lr_decay=1.5))


def test_transfer_records_its_software_accuracy_before_the_chip(tmp_path: Path) -> None:
    transfer = train(
        make_config(small(algorithm="transfer", device="reram-taox")),
        tmp_path / "transfer",
        console=quiet(),
        progress=False,
    ).summary
    software = train(
        make_config(small(algorithm="software", device="reram-taox")),
        tmp_path / "software",
        console=quiet(),
        progress=False,
    ).summary
    # Its software weights are a software run's (same seed); the chip's accuracy is its own.
    assert transfer["software_test_acc"] == software["test_acc"]
    assert transfer["software_test_acc_mean"] == pytest.approx(software["test_acc_mean"])
    assert transfer["test_acc"] != transfer["software_test_acc"]
    line = accuracy_text(transfer)
    assert line.startswith("software ") and " -> chip " in line
    assert "software_test_acc" not in software  # only train-then-write rules have the gap
