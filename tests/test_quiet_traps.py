"""Mistakes that used to pass quietly: each now fails with one line naming it, or is recorded
as it really happened."""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from insitu import cli
from insitu.algorithms import Trainer, make_trainer
from insitu.data import SpikeDataset, content_sha256, load_dataset, load_nmnist, load_shd
from insitu.devices import device_names, get_device
from insitu.energy import get_profile, profile_names
from insitu.errors import ConfigError, DataError
from insitu.experiments import make_config, train
from insitu.experiments.config import load_config, make_spiking_config
from insitu.experiments.energy import run_energy_report
from insitu.experiments.spiking_run import train_spiking
from insitu.hardware import CrossbarChip

WIDE = {"COLUMNS": "200"}


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """The console entry point as the shell calls it: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["insitu", *args])
    monkeypatch.setenv("COLUMNS", "400")  # one error line stays one line
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


# -- spiking rules and datasets asked of `insitu train` ---------------------------------------


@pytest.mark.parametrize("name", ["in-the-loop", "deploy", "snn-software"])
def test_a_spiking_rule_given_to_train_points_to_spiking(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"algorithm": name})
    assert f"`insitu spiking --set algorithm={name}`" in str(info.value)


@pytest.mark.parametrize("name", ["nmnist", "shd"])
def test_a_spiking_dataset_given_to_train_points_to_spiking(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_main(
        ["train", "--dataset", name, "--quiet", "--out", str(tmp_path / "r")], monkeypatch, capsys
    )
    assert code == 2
    assert err.strip() == (
        f"error: invalid configuration: dataset: {name} is a spiking dataset: use "
        f"`insitu spiking --set dataset={name}` (crossbar datasets: digits, mnist, "
        "fashion-mnist, braille)"
    )
    assert not (tmp_path / "r").exists()


# -- a data folder that does not exist --------------------------------------------------------


def test_a_missing_data_dir_is_named_by_every_loader(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    for load in (
        lambda: load_dataset("mnist", data_dir=missing, download=False),
        lambda: load_dataset("digits", data_dir=missing),
        lambda: load_nmnist(missing),
        lambda: load_shd(missing),
    ):
        with pytest.raises(DataError, match=f"data folder {missing} does not exist"):
            load()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset("digits", data_dir=a_file)


@pytest.mark.parametrize("command", ["train", "spiking"])
def test_a_missing_data_dir_stops_a_run_before_its_directory(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere"
    run = tmp_path / "run"
    args = [command, "--set", f"data_dir={missing}", "--quiet", "--out", str(run)]
    code, out, err = run_main(args, monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: data folder {missing} does not exist;")
    assert len(err.strip().splitlines()) == 1
    assert not run.exists()


# -- shapes named as the user gave them --------------------------------------------------------


def _trainer(instances: int = 1) -> Trainer:
    cfg = make_config({"hidden": [3], "instances": instances})
    return make_trainer("analog-sgd", cfg.chip_config(5, 2), instances=instances, seed=0, lr=0.1)


def test_a_wrong_feature_count_is_named_without_the_bias_column() -> None:
    trainer = _trainer()
    with pytest.raises(ConfigError) as info:
        trainer.predict(torch.zeros(2, 6))
    assert str(info.value) == (
        "layer 0 input has 6 features; this layer takes 5 "
        "(expected shape (batch, 5) or (1, batch, 5))"
    )


def test_a_wrong_instance_count_and_a_wrong_rank_are_named() -> None:
    trainer = _trainer(instances=2)
    with pytest.raises(ConfigError, match=r"for 3 chip instances; this chip has 2"):
        trainer.predict(torch.zeros(3, 4, 5))
    with pytest.raises(ConfigError, match=r"has shape \(5,\); expected shape \(batch, 5\)"):
        trainer.predict(torch.zeros(5))


def test_a_tile_names_its_own_width() -> None:
    cfg = make_config({"hidden": [3], "instances": 1})
    chip = CrossbarChip(cfg.chip_config(5, 2), instances=1)
    out = chip.read(0, torch.zeros(4, 5))
    assert out.shape == (1, 4, 3)
    with pytest.raises(
        ConfigError, match="read_transposed input has 2 features; this layer takes 3"
    ):
        chip.tiles[0].read_transposed(torch.zeros(4, 2))


# -- data given in Python is recorded as such ---------------------------------------------------


def test_a_dataset_given_in_python_is_recorded_by_its_own_name(tmp_path: Path) -> None:
    digits = load_dataset("digits", limit_train=40, limit_test=20)
    mine = dataclasses.replace(digits, name="my-digits")
    cfg = make_config({"epochs": 1, "instances": 1, "hidden": [4]})
    result = train(cfg, tmp_path / "run", progress=False, dataset=mine)

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dataset"] == "my-digits"
    assert summary["dataset_source"] == "given in Python"
    assert summary["dataset_sizes"] == {"train": 40, "test": 20}
    assert result.summary == summary

    text = (tmp_path / "run" / "config.yaml").read_text()
    assert text.startswith(
        "# data given in Python: dataset 'my-digits', 40 train / 20 test samples, "
        f"sha256 {content_sha256(mine)}; the `dataset` field below was not used\n"
    )
    dataset_line = next(line for line in text.splitlines() if line.startswith("dataset:"))
    assert (
        dataset_line
        == "dataset: digits  # NOT USED: the run trained on 'my-digits', given in Python"
    )
    assert load_config(tmp_path / "run" / "config.yaml") == cfg  # still a valid config


def test_a_dataset_from_the_config_is_recorded_as_such(tmp_path: Path) -> None:
    cfg = make_config(
        {"epochs": 1, "instances": 1, "hidden": [4], "limit_train": 30, "limit_test": 10}
    )
    train(cfg, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dataset"] == "digits"
    assert summary["dataset_source"] == "config"
    assert summary["dataset_sizes"] == {"train": 30, "test": 10}
    assert "NOT USED" not in (tmp_path / "run" / "config.yaml").read_text()


# -- an energy profile of the other chip kind ---------------------------------------------------


def _toy_spikes() -> SpikeDataset:
    """Two classes told apart by which half of 12 channels fires (16 steps)."""
    g = torch.Generator().manual_seed(0)

    def split(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 2, (m,), generator=g)
        x = torch.zeros(m, 16, 12, dtype=torch.bool)
        for b in range(m):
            x[b, torch.randint(0, 6, (6,), generator=g), torch.arange(6) + 6 * int(y[b])] = True
        return x, y

    (xt, yt), (xs, ys) = split(16), split(8)
    return SpikeDataset("toy", xt, yt, xs, ys, 2, None, (12,))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny spiking run and a tiny crossbar run."""
    root = tmp_path_factory.mktemp("runs")
    spiking_cfg = make_spiking_config(
        {"hidden": [6], "time_steps": 16, "epochs": 1, "batch_size": 8, "eval_train_limit": 8}
    )
    train_spiking(spiking_cfg, root / "spiking", progress=False, dataset=_toy_spikes())
    crossbar_cfg = make_config(
        {"epochs": 1, "instances": 1, "hidden": [4], "limit_train": 30, "limit_test": 10}
    )
    train(crossbar_cfg, root / "crossbar", progress=False)
    return root / "spiking", root / "crossbar"


@pytest.mark.parametrize(
    ("kind", "profile", "fits"),
    [
        ("spiking", "ecram-polymer", "brainscales2"),
        ("crossbar", "brainscales2", "ecram-enode, ecram-polymer, taox-memristor"),
    ],
)
def test_a_profile_of_the_other_chip_kind_is_refused(
    two_runs: tuple[Path, Path],
    kind: str,
    profile: str,
    fits: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = two_runs[0] if kind == "spiking" else two_runs[1]
    code, out, err = run_main(["energy", str(run), "--profile", profile], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: energy profile {profile!r} does not price this {kind} run:")
    assert err.strip().endswith(f"profiles that price a {kind} run: {fits}")
    assert not list(run.glob("energy-*"))


def test_a_profile_of_the_right_kind_prices_the_run(two_runs: tuple[Path, Path]) -> None:
    report, json_path, _ = run_energy_report(two_runs[0], profile="brainscales2")
    assert json_path.is_file()
    assert report["per_train_sample"]["joules"] > 0


# -- the Braille task's own metric ---------------------------------------------------------------


def test_train_prints_exact_restoration_for_a_task_with_target_patterns(tmp_path: Path) -> None:
    run = tmp_path / "braille"
    args = ["train", "--dataset", "braille", "--algorithm", "software", "--hidden", "16"]
    args += ["--epochs", "5", "--lr", "0.5", "--instances", "3", "--quiet", "--out", str(run)]
    args += ["--set", "limit_train=90", "--set", "limit_test=45"]
    result = CliRunner().invoke(cli.app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    exact = json.loads((run / "summary.json").read_text())["test_exact_reconstruction"]
    assert len(exact) == 3
    assert max(exact) > 0  # something restored, so the numbers printed mean something
    mean, std = 100 * statistics.fmean(exact), 100 * statistics.pstdev(exact)
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"exact restoration {mean:.2f} ± {std:.2f} % of test patterns")
    assert "(class accuracy " in line


def test_train_prints_plain_accuracy_for_classification(tmp_path: Path) -> None:
    args = ["train", "--epochs", "1", "--instances", "1", "--hidden", "4", "--quiet"]
    args += ["--out", str(tmp_path / "r"), "--set", "limit_train=30", "--set", "limit_test=10"]
    result = CliRunner().invoke(cli.app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("test accuracy ")
    assert "exact restoration" not in result.stdout


# -- listings that fit an 80-column terminal ----------------------------------------------------


def _at_80_columns(*args: str) -> list[str]:
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    return lines


def test_devices_lists_one_line_per_preset_in_80_columns() -> None:
    lines = _at_80_columns("devices")
    names = device_names()
    assert len(lines) <= len(names) + 8  # title, header, rule, blank lines, the pointer
    for name in names:
        assert sum(line.split()[:1] == [name] for line in lines) == 1
    assert lines[-1] == "every parameter and its source: insitu devices show NAME"


@pytest.mark.parametrize("name", device_names())
def test_devices_show_gives_every_parameter_and_the_source(name: str) -> None:
    text = " ".join(" ".join(_at_80_columns("devices", "show", name)).split())
    params = get_device(name)
    for f in dataclasses.fields(params):
        assert f.name in text
    assert " ".join(params.source.split()) in text


def test_energy_profiles_lists_at_most_three_lines_per_profile_in_80_columns() -> None:
    lines = _at_80_columns("energy", "--profiles")
    assert len(lines) <= 3 * len(profile_names()) + 6
    for name in profile_names():
        row = next(line for line in lines if line.split()[:1] == [name])
        assert ("spiking" if name == "brainscales2" else "crossbar") in row
    assert lines[-1] == "every price with its source: insitu energy --profiles --profile NAME"


@pytest.mark.parametrize("name", profile_names())
def test_energy_profile_details_give_every_priced_kind_with_its_sources(name: str) -> None:
    text = " ".join(" ".join(_at_80_columns("energy", "--profiles", "--profile", name)).split())
    for kind, cost in get_profile(name):
        assert kind in text
        if not cost.joules.source.startswith("not applicable"):
            assert " ".join(cost.joules.source.split()) in text
            assert " ".join(cost.seconds.source.split()) in text


def test_a_crossbar_config_refuses_a_spiking_profile() -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"energy_profile": "brainscales2"})
    assert str(info.value) == (
        "invalid configuration: energy_profile: energy profile brainscales2 prices spiking "
        "chips, so this crossbar run would cost 0 J; crossbar profiles: ecram-enode, "
        "ecram-polymer, taox-memristor"
    )
    assert make_config({"energy_profile": "taox-memristor"}).energy_profile == "taox-memristor"


def test_a_spiking_config_refuses_a_crossbar_profile() -> None:
    with pytest.raises(ConfigError) as info:
        make_spiking_config({"energy_profile": "ecram-polymer"})
    assert str(info.value) == (
        "invalid configuration: energy_profile: energy profile ecram-polymer prices crossbar "
        "chips, so this spiking run would cost 0 J; spiking profiles: brainscales2"
    )


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("algorithm", "analog-sgd", "`insitu train --algorithm analog-sgd`"),
        ("dataset", "braille", "`insitu train --dataset braille`"),
    ],
)
def test_a_crossbar_rule_or_dataset_given_to_spiking_points_to_train(
    field: str, value: str, hint: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_spiking_config({field: value})
    assert hint in str(info.value)


def test_a_spiking_dataset_given_in_python_is_recorded_by_its_own_name(
    two_runs: tuple[Path, Path],
) -> None:
    summary = json.loads((two_runs[0] / "summary.json").read_text())
    assert summary["dataset"] == "toy"
    assert summary["dataset_source"] == "given in Python"
    assert summary["dataset_sizes"] == {"train": 16, "test": 8}
    text = (two_runs[0] / "config.yaml").read_text()
    assert text.startswith("# data given in Python: dataset 'toy', 16 train / 8 test samples")
    assert "dataset: mnist  # NOT USED: the run trained on 'toy'" in text


def test_a_run_energy_report_fits_80_columns_and_says_it_in_words(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = _at_80_columns("energy", str(two_runs[1]), "--out", str(tmp_path))
    text = " ".join(lines)
    assert "Per training sample the chip is " in text and " energy than the NVIDIA H100" in text
    rows = [line.split()[:4] for line in lines if line.strip().startswith(("energy", "time"))]
    assert [r[:3] for r in rows[:4]] == [
        ["energy", "per", "train"],
        ["time", "per", "train"],
        ["energy", "per", "inference"],
        ["time", "per", "inference"],
    ]
