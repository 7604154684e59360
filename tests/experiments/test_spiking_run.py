"""Spiking runs: config validation, the run directory, the ``insitu spiking`` command."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from insitu import cli
from insitu.data import SpikeDataset
from insitu.errors import ConfigError
from insitu.experiments.spiking_config import make_spiking_config
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
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["events"]["neuron_step"] > 0
    assert summary["energy"]["joules_per_train_sample"] > 0
    assert summary["eval_events"]["neuron_step"] < summary["events"]["neuron_step"]
    assert summary["test_acc_mean"] >= 0.8
    assert float(rows[-1]["chip_samples"]) > 4 * 64  # training plus evaluation on the chip
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
