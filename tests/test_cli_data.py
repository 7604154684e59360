"""``insitu train/run --data module:attribute``: your own torch data from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from insitu.data import content_sha256, import_data
from test_cli import flat, run_main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--epochs", "1", "--instances", "1", "--quiet"]

USER_DATA = """
import torch
from torch.utils.data import DataLoader, TensorDataset

def make(seed={seed}):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(40, 2, 3, generator=g)
    y = (x.sum((1, 2)) > 3).long()
    return TensorDataset(x[:30], y[:30]), DataLoader(TensorDataset(x[30:], y[30:]))
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding two data modules, ``mine`` and ``other`` (other samples)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    tag = uuid.uuid4().hex[:8]  # fresh module names: nothing cached from another test
    (tmp_path / f"mine_{tag}.py").write_text(USER_DATA.format(seed=0))
    (tmp_path / f"other_{tag}.py").write_text(USER_DATA.format(seed=1))
    return tmp_path


def names(workdir: Path) -> tuple[str, str]:
    mine = next(workdir.glob("mine_*.py")).stem
    return f"{mine}:make", f"{mine.replace('mine', 'other')}:make"


def test_train_and_resume_on_data_named_by_an_import_path(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, other = names(workdir)
    out = workdir / "run"
    args = ["train", "--data", mine, *SMALL, "--out", str(out)]
    code, stdout, err = run_main(args, monkeypatch, capsys)
    assert code == 0, err
    assert "test accuracy" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == mine
    assert summary["dataset_sizes"] == {"train": 30, "test": 10}
    assert summary["dataset_sha256"] == content_sha256(import_data(mine))
    assert json.loads((out / "dataset.json").read_text())["sha256"] == summary["dataset_sha256"]

    code, _, err = run_main(["run", "--resume", str(out), "--quiet"], monkeypatch, capsys)
    assert code == 2
    assert "without its data" in flat(err) and f"resume it with `--data {mine}`" in flat(err)
    code, _, err = run_main(
        ["run", "--resume", str(out), "--data", other, "--quiet"], monkeypatch, capsys
    )
    assert code == 2 and "with different data" in flat(err)
    assert "Traceback" not in err
    code, stdout, _ = run_main(
        ["run", "--resume", str(out), "--data", mine, "--quiet"], monkeypatch, capsys
    )
    assert code == 0 and "test accuracy" in stdout


def test_run_a_config_file_on_data_named_by_an_import_path(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, _ = names(workdir)
    config = workdir / "cfg.yaml"
    config.write_text(yaml.safe_dump({"epochs": 1, "instances": 1, "hidden": [3]}))
    runs = workdir / "runs"
    args = ["run", str(config), "--data", mine, "--runs", str(runs), "--quiet"]
    code, _, err = run_main(args, monkeypatch, capsys)
    assert code == 0, err
    (made,) = runs.iterdir()
    assert made.name.endswith(f"-{mine.replace(':', '-')}")  # named after the data
    assert json.loads((made / "summary.json").read_text())["layers"] == [6, 3, 2]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--data", "{mine}"], "expected module:attribute (e.g. mypkg.data:make_data)"),
        (["train", "--data", "nowhere_xyz:make"], "no module named 'nowhere_xyz'"),
        (["train", "--data", "{mine}:nothing"], "has no attribute 'nothing'"),
        (["train", "--data", "{mine}:make", "--dataset", "mnist"], "not both"),
        (["run", "{spiking}", "--data", "{mine}:make"], "a spiking run takes its dataset"),
    ],
)
def test_bad_data_options_exit_2_in_one_line(
    workdir: Path,
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spiking = workdir / "spiking.yaml"
    spiking.write_text("kind: spiking\n")
    mine = names(workdir)[0].split(":")[0]
    filled = [a.format(mine=mine, spiking=spiking) for a in args]
    code, _, err = run_main([*filled, "--out", str(workdir / "run")], monkeypatch, capsys)
    assert code == 2
    assert words in flat(err)
    assert "Traceback" not in err
    assert not (workdir / "run").exists()


def test_the_example_trains_from_the_installed_command_in_the_repository_root(
    tmp_path: Path,
) -> None:
    script = Path(sys.executable).parent / "insitu"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    out = tmp_path / "run"
    spec = "examples.own_dataset:make_data"
    done = subprocess.run(
        [str(script), "train", "--data", spec, *SMALL, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,  # modules of the working directory import, as with python -m
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == spec and summary["dataset_sizes"] == {"train": 300, "test": 150}
