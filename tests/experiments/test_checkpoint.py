"""Checkpoint and resume: a run killed mid-epoch and resumed ends bit-identical to one never
interrupted (in a subprocess killed with SIGKILL, and in-process for every learning rule)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from insitu.errors import ConfigError
from insitu.experiments import make_config, train
from insitu.experiments import run as run_module
from insitu.experiments.checkpoint import CHECKPOINT_NAME, load_checkpoint


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def metrics_without_wall(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(fh)]


def summary_without_wall(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k != "wall_s"}


def assert_same_run(a: Path, b: Path) -> None:
    rows = metrics_without_wall(a)
    assert rows, "no epochs recorded"
    # One row per epoch from the untrained network's on: a resumed run does not measure it again.
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))
    assert rows == metrics_without_wall(b)
    assert summary_without_wall(a) == summary_without_wall(b)


class Interrupted(Exception):
    """Stands for the process dying right after a checkpoint is written."""


def interrupt_after(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    original = run_module.save_checkpoint
    count = {"n": 0}

    def saving_then_dying(run_dir: Path, ckpt: Any) -> Path:
        path = original(run_dir, ckpt)
        count["n"] += 1
        if count["n"] == saves:
            raise Interrupted
        return path

    monkeypatch.setattr(run_module, "save_checkpoint", saving_then_dying)


# -- SIGKILL in a subprocess -------------------------------------------------------------------

KILL_CONFIG = {
    "dataset": "digits",
    "hidden": [16],
    "limit_train": 1000,
    "limit_test": 100,
    "epochs": 2,
    "instances": 2,
    "lr": 0.3,
    "seed": 3,
    "checkpoint_every": 7,
}


def kill_at_first_checkpoint_and_resume(
    start: list[str], resume: list[str], killed: Path, batches_per_epoch: int
) -> subprocess.CompletedProcess[str]:
    """Run the CLI command ``start``, SIGKILL it once its first checkpoint lands (mid-epoch,
    checked), then run ``resume`` to the end; returns the resumed command's outcome."""
    script = Path(sys.executable).parent / "insitu"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [str(script), *start], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / CHECKPOINT_NAME).exists():
            assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr}"
            assert time.monotonic() < deadline, "no checkpoint appeared within 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    ckpt = load_checkpoint(killed)
    assert ckpt is not None and ckpt.progress is not None, "the kill should land mid-epoch"
    assert ckpt.epochs_done == 0 and 0 < ckpt.progress.batches < batches_per_epoch

    resumed = subprocess.run(
        [str(script), *resume], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "test accuracy" in resumed.stdout
    assert not (killed / CHECKPOINT_NAME).exists()  # removed once the run is done
    assert not [p.name for p in killed.iterdir() if p.name.startswith(".")]
    return resumed


def test_run_killed_mid_epoch_resumes_bit_identical(tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(KILL_CONFIG))
    killed = tmp_path / "killed"
    kill_at_first_checkpoint_and_resume(
        ["run", str(config), "--out", str(killed), "--quiet"],
        ["run", "--resume", str(killed), "--quiet"],
        killed,
        batches_per_epoch=100,
    )

    reference = tmp_path / "reference"
    train(make_config(KILL_CONFIG), reference, console=quiet(), progress=False)
    assert_same_run(killed, reference)
    assert [r["epoch"] for r in metrics_without_wall(killed)] == ["0", "1", "2"]


# -- every learning rule, interrupted in-process -----------------------------------------------


def small(algorithm: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "algorithm": algorithm,
        "dataset": "digits",
        "hidden": [8],
        "limit_train": 120,
        "limit_test": 40,
        "epochs": 3,
        "instances": 2,
        "lr": 0.2,
        "seed": 1,
        "checkpoint_every": 5,
    }
    values.update(changes)
    return values


@pytest.mark.parametrize(
    ("algorithm", "saves"),
    [
        ("analog-sgd", 2),  # mid-epoch 1
        ("analog-sgd", 4),  # the end of epoch 1 (12 batches per epoch: saves at 5, 10, 12)
        ("software", 5),
        ("transfer", 9),  # the last epoch: transfer programs its chip at the end
        ("progressive", 3),
        ("activity-difference", 2),
        ("activity-difference-float", 6),
    ],
)
def test_interrupted_run_resumes_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str, saves: int
) -> None:
    cfg = make_config(small(algorithm))
    reference = tmp_path / "reference"
    train(cfg, reference, console=quiet(), progress=False)
    with monkeypatch.context() as patch:
        interrupt_after(patch, saves)
        with pytest.raises(Interrupted):
            train(cfg, tmp_path / "run", console=quiet(), progress=False)
    assert (tmp_path / "run" / CHECKPOINT_NAME).exists()
    assert not (tmp_path / "run" / "summary.json").exists()
    result = train(cfg, tmp_path / "run", console=quiet(), progress=False, resume=True)
    assert result.summary["status"] == "finished"
    assert_same_run(tmp_path / "run", reference)


def test_checkpointing_does_not_change_the_run(tmp_path: Path) -> None:
    train(make_config(small("analog-sgd")), tmp_path / "a", console=quiet(), progress=False)
    train(
        make_config(small("analog-sgd", checkpoint_every=None)),
        tmp_path / "b",
        console=quiet(),
        progress=False,
    )
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_of_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    cfg = make_config(small("software", epochs=1))
    run_dir = tmp_path / "run"
    train(cfg, run_dir, console=quiet(), progress=False)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    result = train(cfg, run_dir, console=quiet(), progress=False, resume=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert result.summary["status"] == "finished"
    assert [r["epoch"] for r in result.rows] == [0, 1]


def test_run_stopped_before_its_first_checkpoint_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(small("analog-sgd", epochs=1))
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(Interrupted):
            train(cfg, tmp_path / "run", console=quiet(), progress=False)
    (tmp_path / "run" / CHECKPOINT_NAME).unlink()
    train(cfg, tmp_path / "run", console=quiet(), progress=False, resume=True)
    train(cfg, tmp_path / "reference", console=quiet(), progress=False)
    assert_same_run(tmp_path / "run", tmp_path / "reference")


def test_resume_with_another_config_is_refused(tmp_path: Path) -> None:
    cfg = make_config(small("software", epochs=1))
    train(cfg, tmp_path / "run", console=quiet(), progress=False)
    with pytest.raises(ConfigError, match="lr"):
        train(
            make_config(small("software", epochs=1, lr=0.5)),
            tmp_path / "run",
            console=quiet(),
            progress=False,
            resume=True,
        )
    with pytest.raises(ConfigError, match="not a run directory"):
        train(cfg, tmp_path / "nothing", console=quiet(), progress=False, resume=True)


def test_damaged_checkpoint_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = make_config(small("software"))
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(Interrupted):
            train(cfg, tmp_path / "run", console=quiet(), progress=False)
    (tmp_path / "run" / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        train(cfg, tmp_path / "run", console=quiet(), progress=False, resume=True)
