"""Spiking runs: config validation, the run directory, the ``insitu spiking`` command."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from test_checkpoint import (  # the crossbar runs' checks and interruption
    Interrupted,
    assert_same_run,
    interrupt_after,
    kill_at_first_checkpoint_and_resume,
    metrics_without_wall,
)

from insitu import cli
from insitu.data import SpikeDataset
from insitu.errors import ConfigError
from insitu.experiments.checkpoint import CHECKPOINT_NAME, load_checkpoint
from insitu.experiments.config import make_spiking_config
from insitu.experiments.spiking_run import load_spiking_dataset, train_spiking

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def _toy(n: int = 64) -> SpikeDataset:
    """Two classes told apart by which half of 12 channels fires."""
    g = torch.Generator().manual_seed(0)

    def split(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 2, (m,), generator=g)
        x = torch.zeros(m, 16, 12, dtype=torch.bool)
        for b in range(m):
            times = torch.randint(0, 6, (6,), generator=g)
            x[b, times, torch.arange(6) + 6 * int(y[b])] = True
        return x, y

    xt, yt = split(n)
    xs, ys = split(32)
    return SpikeDataset("toy", xt, yt, xs, ys, 2, None, (12,))


def test_bad_configs_fail_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="algorithm"):
        make_spiking_config({"algorithm": "backprop"})
    with pytest.raises(ConfigError, match="time_steps"):
        make_spiking_config({"time_steps": 0})
    with pytest.raises(ConfigError, match="unknown neuron parameter"):
        make_spiking_config({"neuron": {"tau_mem": 3.0}})
    with pytest.raises(ConfigError, match="tau_m"):
        make_spiking_config({"readout_neuron": {"tau_m": -1.0}})
    with pytest.raises(ConfigError, match="unknown spiking option"):
        make_spiking_config({"algorithm_options": {"momentum": 0.9}})
    with pytest.raises(ConfigError, match="mismatch"):
        make_spiking_config({"mismatch": 5.0})
    with pytest.raises(ConfigError, match="colour"):
        make_spiking_config({"colour": "red"})


def test_mismatch_and_readout_neuron_reach_the_chip() -> None:
    cfg = make_spiking_config(
        {"mismatch": 0.3, "readout_neuron": {"synapse_gain": 0.001}, "hidden": [20]}
    )
    chip = cfg.chip_config(12, 3)
    assert chip.sizes == (12, 20, 3)
    assert chip.neuron_params(0).sigma_tau_m == 0.3
    assert chip.neuron_params(1).synapse_gain == 0.001
    assert chip.neuron_params(1).sigma_threshold == 0.3


def test_run_directory_holds_metrics_summary_model_and_plots(tmp_path: Path) -> None:
    cfg = make_spiking_config(
        {
            "algorithm": "in-the-loop",
            "hidden": [10],
            "time_steps": 16,
            "epochs": 4,
            "batch_size": 8,
            "instances": 2,
            "algorithm_options": {"lr": 1e-2},
        }
    )
    result = train_spiking(cfg, tmp_path / "run", progress=False, dataset=_toy())
    run = tmp_path / "run"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]  # 0: untrained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["events"]["neuron_step"] > 0
    assert summary["energy"]["joules_per_train_sample"] > 0
    assert summary["eval_events"]["neuron_step"] < summary["events"]["neuron_step"]
    assert summary["test_acc_mean"] >= 0.8
    assert float(rows[-1]["chip_samples"]) > 4 * 64  # training plus evaluation on the chip
    # Epoch 0: the untrained network, evaluated; no training loss yet; only the evaluation
    # (64 training and 32 test samples, two instances) has run on the chip.
    assert rows[0]["loss_mean"] == "nan" and rows[0]["loss_std"] == "nan"
    assert float(rows[0]["chip_samples"]) == 2 * (64 + 32)
    assert 0.0 <= float(rows[0]["test_acc_mean"]) < summary["test_acc_mean"]
    assert summary["epochs_completed"] == 4 and summary["train_samples"] == 4 * 64
    assert summary["eval_samples"] == 5 * (64 + 32)
    # Five evaluations of 2 x 96 samples of 16 steps, the untrained one among them.
    assert summary["eval_events"]["emulation_step"] == 5 * 2 * 96 * 16
    for name in ("learning_curve.png", "chip_activity.png", "model.pt", "config.yaml"):
        assert (run / name).stat().st_size > 0
    state = torch.load(run / "model.pt", weights_only=False)
    assert len(state["weights"]) == 2
    assert result.trainer is not None
    with pytest.raises(ConfigError, match="already holds files"):
        train_spiking(cfg, run, progress=False, dataset=_toy())


def test_cli_spiking_on_real_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (SHARED / "mnist").is_dir(), f"the tests expect MNIST in {SHARED}/mnist"
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"algorithm": "snn-software", "hidden": [16], "epochs": 1, "limit_train": 300}
        )
    )
    out = tmp_path / "run"
    args = ["insitu", "spiking", str(config), "--out", str(out), "--quiet"]
    args += ["--set", f"data_dir={SHARED}", "--set", "limit_test=100"]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "test accuracy" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layers"] == [256, 16, 10]
    assert summary["dataset"] == "mnist-latency"


def test_cli_spiking_bad_value_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["insitu", "spiking", "--set", "algorithm=magic", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "magic" in err and "in-the-loop" in err
    assert not out.exists()


def test_augmentation_needs_pictures(tmp_path: Path) -> None:
    cfg = make_spiking_config({"hidden": [4], "time_steps": 16, "augment_shift": 1})
    with pytest.raises(ConfigError, match="augment_shift"):
        train_spiking(cfg, tmp_path / "run", progress=False, dataset=_toy())
    assert not (tmp_path / "run").exists()
    pictures = _toy()
    pictures = SpikeDataset(
        "toy", pictures.x_train, pictures.y_train, pictures.x_test, pictures.y_test, 2, None, (3, 4)
    )
    result = train_spiking(cfg, tmp_path / "ok", progress=False, dataset=pictures)
    assert result.summary["status"] == "finished"


def test_digits_are_embedded_latency_coded_8x8() -> None:
    cfg = make_spiking_config({"dataset": "digits", "time_steps": 20, "limit_test": 50})
    ds = load_spiking_dataset(cfg)  # no data_dir, no download: shipped with scikit-learn
    assert ds.name == "digits-latency"
    assert ds.input_shape == (8, 8) and ds.n_inputs == 64 and ds.n_classes == 10
    assert ds.x_train.shape == (1437, 20, 64) and len(ds.y_test) == 50
    # One latency spike per pixel above threshold at most, and dark pixels stay silent.
    assert int(ds.x_train.sum(1).max()) == 1
    assert 0 < float(ds.x_train.float().sum((1, 2)).mean()) < 64


@pytest.mark.parametrize("raw", ["nan", "1e9", "abc"])
def test_cli_bad_option_value_is_one_line_naming_field_and_range(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["insitu", "spiking", "--set", f"algorithm_options.lr={raw}", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps at the terminal's width
    assert err.startswith("error: algorithm_options.lr = ") and err.count("error") == 1, err
    assert err.endswith("(0, 1]") and "Traceback" not in err
    assert not out.exists()


# -- deploy: the software accuracy before the chip ---------------------------------------------


def test_deploy_reports_the_software_accuracy_before_the_chip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    values = {"hidden": [10], "time_steps": 16, "epochs": 2, "batch_size": 8, "instances": 2}
    values |= {"mismatch": 0.5, "algorithm_options": {"lr": 1e-2}}
    deploy, software = (
        train_spiking(
            make_spiking_config({**values, "algorithm": name}),
            tmp_path / name,
            progress=False,
            dataset=_toy(),
        )
        for name in ("deploy", "snn-software")
    )
    s = deploy.summary
    # Deploy trains exactly as the software rule does: the same weights, the same accuracy.
    assert s["software_test_acc"] == software.summary["test_acc"]
    assert s["software_test_acc_mean"] == pytest.approx(software.summary["test_acc_mean"])
    assert s["software_test_acc"] != s["test_acc"]  # the chip's mismatch shows
    assert "software_test_acc_mean" not in software.summary
    saved = json.loads((tmp_path / "deploy" / "summary.json").read_text())
    assert saved["software_test_acc_std"] == s["software_test_acc_std"]

    config = tmp_path / "deploy.yaml"
    config.write_text(yaml.safe_dump({**values, "algorithm": "deploy", "dataset": "digits"}))
    args = ["insitu", "spiking", str(config), "--quiet", "--out", str(tmp_path / "cli")]
    args += ["--set", "limit_train=64", "--set", "limit_test=32", "--set", "epochs=1"]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    line = capsys.readouterr().out.splitlines()[0]
    chip = f"{100 * summary['test_acc_mean']:.2f} ± {100 * summary['test_acc_std']:.2f} %"
    sw = summary["software_test_acc_mean"], summary["software_test_acc_std"]
    assert f"software {100 * sw[0]:.2f} ± {100 * sw[1]:.2f} % -> chip {chip}" in line


# -- checkpoints and resume ----------------------------------------------------------------------


def _pictures() -> SpikeDataset:
    """The toy task laid out as 3 x 4 pictures, so augment_shift (and its generator) is used."""
    toy = _toy()
    return SpikeDataset("toy", toy.x_train, toy.y_train, toy.x_test, toy.y_test, 2, None, (3, 4))


def _resumable(algorithm: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "algorithm": algorithm,
        "hidden": [10],
        "time_steps": 16,
        "epochs": 3,
        "batch_size": 8,  # 8 batches per epoch
        "instances": 2,
        "mismatch": 0.2,
        "augment_shift": 1,
        "checkpoint_every": 3,
        "algorithm_options": {"lr": 1e-2},
    }
    return values | changes


def _assert_same_spiking_run(a: Path, b: Path) -> None:
    """Metrics (but wall time), summary (but wall time) and the final state bit for bit."""
    assert_same_run(a, b)
    ma, mb = (torch.load(p / "model.pt", weights_only=True) for p in (a, b))
    assert all(torch.equal(x, y) for x, y in zip(ma["weights"], mb["weights"], strict=True))
    assert ma["optimizer"]["state"].keys() == mb["optimizer"]["state"].keys()
    for k, st in ma["optimizer"]["state"].items():
        assert all(torch.equal(st[name], mb["optimizer"]["state"][k][name]) for name in st)
    assert (ma["chip"] is None) == (mb["chip"] is None)
    if ma["chip"] is not None:
        assert torch.equal(ma["chip"]["generator"], mb["chip"]["generator"])
        assert ma["chip"]["log"] == mb["chip"]["log"]


@pytest.mark.parametrize(
    ("algorithm", "saves", "mid_epoch"),
    [
        ("in-the-loop", 2, True),  # saves at steps 3, 6, the end of epoch 1 (8), 9, ...
        ("in-the-loop", 3, False),
        ("deploy", 5, True),
    ],
)
def test_interrupted_spiking_run_resumes_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str, saves: int, mid_epoch: bool
) -> None:
    cfg = make_spiking_config(_resumable(algorithm))
    reference = tmp_path / "reference"
    train_spiking(cfg, reference, progress=False, dataset=_pictures())
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, saves)  # the runner's save, dying after `saves`
        with pytest.raises(Interrupted):
            train_spiking(cfg, run, progress=False, dataset=_pictures())
    ckpt = load_checkpoint(run)
    assert ckpt is not None and not (run / "summary.json").exists()
    assert (ckpt.progress is not None) == mid_epoch
    assert "augment_shift" in ckpt.generators
    result = train_spiking(cfg, run, progress=False, dataset=_pictures(), resume=True)
    assert result.summary["status"] == "finished"
    assert [r["epoch"] for r in result.rows] == [0, 1, 2, 3]
    assert not (run / CHECKPOINT_NAME).exists()
    _assert_same_spiking_run(run, reference)


def test_spiking_resume_of_finished_or_other_runs(tmp_path: Path) -> None:
    cfg = make_spiking_config(_resumable("in-the-loop", epochs=1))
    run = tmp_path / "run"
    train_spiking(cfg, run, progress=False, dataset=_pictures())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = train_spiking(cfg, run, progress=False, dataset=_pictures(), resume=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert [r["epoch"] for r in result.rows] == [0.0, 1.0]
    other = make_spiking_config(_resumable("in-the-loop", epochs=1, mismatch=0.3))
    with pytest.raises(ConfigError, match=r"mismatch: 0\.2 -> 0\.3"):
        train_spiking(other, run, progress=False, dataset=_pictures(), resume=True)
    # The checkpoint period may change on resume, as for crossbar runs.
    again = make_spiking_config(_resumable("in-the-loop", epochs=1, checkpoint_every=5))
    train_spiking(again, run, progress=False, dataset=_pictures(), resume=True)
    with pytest.raises(ConfigError, match="not a run directory"):
        train_spiking(cfg, tmp_path / "none", progress=False, dataset=_pictures(), resume=True)


# SIGKILL in a subprocess: the embedded digits, so the command needs no data files.
KILL_CONFIG = {
    "kind": "spiking",
    "algorithm": "in-the-loop",
    "dataset": "digits",
    "hidden": [16],
    "time_steps": 10,
    "mismatch": 0.3,
    "limit_train": 400,
    "limit_test": 100,
    "epochs": 2,
    "batch_size": 32,  # 13 batches per epoch
    "instances": 2,
    "augment_shift": 1,
    "seed": 3,
    "checkpoint_every": 3,
    "algorithm_options": {"lr": 5e-3},
}


@pytest.mark.parametrize("command", ["spiking", "run"])
def test_spiking_run_killed_mid_epoch_resumes_bit_identical(tmp_path: Path, command: str) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(KILL_CONFIG))
    killed = tmp_path / "killed"
    # `insitu run` routes a spiking run directory by the kind in its config.yaml.
    kill_at_first_checkpoint_and_resume(
        ["spiking", str(config), "--out", str(killed), "--quiet"],
        [command, "--resume", str(killed), "--quiet"],
        killed,
        batches_per_epoch=13,
    )

    reference = tmp_path / "reference"
    train_spiking(make_spiking_config(KILL_CONFIG), reference, progress=False)
    _assert_same_spiking_run(killed, reference)
    assert len(metrics_without_wall(killed)) == 3  # epochs 0, 1, 2
