"""The ``insitu`` command line: listings, plots, training runs, config files, errors, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

import insitu
from insitu import cli
from insitu.algorithms import algorithm_names
from insitu.devices import device_names

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WIDE = {"COLUMNS": "200"}  # rich wraps at the terminal width; keep names on one line
# A training run of a second or two.
SMALL = ["--epochs", "1", "--instances", "1", "--set", "limit_train=100", "--set", "limit_test=50"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env=WIDE)


def flat(text: str) -> str:
    """Whitespace collapsed, so wrapped lines read as one."""
    return " ".join(text.split())


def run_main(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Call the console entry point as the shell would; returns (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["insitu", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


# -- listings ----------------------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"insitu {insitu.__version__}"


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage" in result.output
    for command in ("train", "demo", "devices", "algorithms"):
        assert command in result.output


def test_devices_lists_every_preset() -> None:
    result = invoke("devices")
    assert result.exit_code == 0, result.output
    for name in device_names():
        assert name in result.stdout


def test_algorithms_lists_every_rule() -> None:
    result = invoke("algorithms")
    assert result.exit_code == 0, result.output
    assert {"software", "transfer", "analog-sgd"} <= set(algorithm_names())
    for name in algorithm_names():
        assert name in result.stdout


def test_devices_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "tmp" / "x.png"
    result = invoke("devices", "plot", "ecram-liwo3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert str(out) in flat(result.stdout)


def test_devices_plot_unknown_preset_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(
        ["devices", "plot", "unobtainium", "--out", str(tmp_path / "x.png")], monkeypatch, capsys
    )
    assert code == 2
    assert "unobtainium" in flat(err)
    for name in device_names():
        assert name in flat(err)
    assert not (tmp_path / "x.png").exists()


# -- errors become one line and exit status 2 --------------------------------------------------


def test_train_unknown_device_exits_2_listing_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "run"
    code, _, err = run_main(
        ["train", "--device", "nope", "--out", str(out_dir)], monkeypatch, capsys
    )
    assert code == 2
    message = flat(err)
    assert "error" in message and "nope" in message
    for name in device_names():
        assert name in message
    assert "Traceback" not in err
    assert not out_dir.exists()  # nothing is written for an invalid config


def test_train_bad_periphery_setting_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(["train", "--set", "periphery.adc_bits=0"], monkeypatch, capsys)
    assert code == 2
    assert "adc_bits" in flat(err)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "lr"], "key=value"),
        (["--set", "lr.x=1"], "lr"),
        (["--set", "no_such_field=1"], "no_such_field"),
        (["--lr", "-1"], "lr"),
        (["--algorithm", "magic"], "analog-sgd"),
        (["--dataset", "imagenet"], "fashion-mnist"),
        (["--activation", "softplus"], "activation"),
    ],
)
def test_train_invalid_options_exit_2(
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_main(["train", *args], monkeypatch, capsys)
    assert code == 2
    assert words in flat(err)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "words"),
    [("lr: [0.1\n", "not valid YAML"), ("- 1\n- 2\n", "mapping"), (None, "does not exist")],
)
def test_train_bad_config_file_exits_2(
    tmp_path: Path,
    content: str | None,
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "cfg.yaml"
    if content is not None:
        path.write_text(content)
    code, _, err = run_main(["train", "--config", str(path)], monkeypatch, capsys)
    assert code == 2
    assert words in flat(err)


def test_entry_point_exit_status(tmp_path: Path) -> None:
    # The installed console script, as a shell runs it.
    script = Path(sys.executable).parent / "insitu"
    assert script.exists(), script
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    ok = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert ok.returncode == 0 and insitu.__version__ in ok.stdout
    bad = subprocess.run(
        [str(script), "train", "--device", "nope", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    for name in device_names():
        assert name in bad.stderr


# -- training ----------------------------------------------------------------------------------


def test_train_writes_a_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke("train", *SMALL, "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "test accuracy" in text
    assert str(out) in text
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics.csv", "summary.json", "learning_curve.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["algorithm"] == "analog-sgd" and summary["instances"] == 1
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["limit_train"] == 100 and cfg["limit_test"] == 50 and cfg["epochs"] == 1


def test_train_refuses_a_used_out_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("earlier work")
    code, _, err = run_main(
        ["train", *SMALL, "--algorithm", "software", "--out", str(out), "--quiet"],
        monkeypatch,
        capsys,
    )
    assert code == 2
    assert "already holds files" in flat(err)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_train_without_out_makes_a_new_run_directory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["train", *SMALL, "--algorithm", "software", "--runs", str(runs), "--quiet"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0
    made = sorted(runs.iterdir())
    assert len(made) == 2  # never the same directory twice
    assert all("software" in p.name for p in made)


def test_config_file_is_honoured_and_explicit_options_override_it(tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "algorithm": "software",
                "hidden": [8],
                "epochs": 3,
                "lr": 0.05,
                "instances": 3,
                "seed": 7,
                "limit_train": 60,
                "limit_test": 30,
                "periphery": {"adc_bits": 6},
            }
        )
    )
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--config",
        str(config),
        "--epochs",
        "1",  # explicit: overrides the file
        "--instances",
        "1",
        "--set",
        "periphery.dac_bits=5",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    used = yaml.safe_load((out / "config.yaml").read_text())
    # From the file, although the command line has its own defaults for them:
    assert used["algorithm"] == "software"
    assert used["hidden"] == [8]
    assert used["lr"] == 0.05
    assert used["seed"] == 7
    assert used["limit_train"] == 60
    assert used["periphery"]["adc_bits"] == 6
    # Given on the command line:
    assert used["epochs"] == 1
    assert used["instances"] == 1
    assert used["periphery"]["dac_bits"] == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_completed"] == 1
    assert summary["layers"] == [64, 8, 10]


# -- the demo ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_shows_the_three_seed_systems(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = invoke("demo", "--quick", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    from insitu.experiments.demo import SYSTEMS

    (stamp_dir,) = out.iterdir()  # one fresh directory per demo
    doc = json.loads((stamp_dir / "demo.json").read_text())
    assert [s["key"] for s in doc["systems"]] == [s.key for s in SYSTEMS]
    for system, saved in zip(SYSTEMS, doc["systems"], strict=True):
        # Each system's table, with the paper's figure beside the measured one.
        assert system.title in text and system.paper_figure in text
        assert saved["measured"].startswith("measured:") and saved["measured"] in text
        assert [r["label"] for r in saved["runs"]] == [r.label for r in system.runs]
        for run in saved["runs"]:
            summary = json.loads((stamp_dir / run["run_dir"] / "summary.json").read_text())
            assert summary["status"] == "finished"
            assert 0 <= run["metric_mean"] <= 100
    braille = next(s for s in doc["systems"] if s["key"] == "braille")
    assert all(r["note"].startswith("worst ") for r in braille["runs"])  # per-name restoration
    ad = json.loads((stamp_dir / braille["runs"][-1]["run_dir"] / "summary.json").read_text())
    per_name = ad["test_exact_reconstruction_per_class"]
    assert len(per_name) == 9  # the test set holds as many patterns of every name
    overall = sum(ad["test_exact_reconstruction"]) / len(ad["test_exact_reconstruction"])
    assert sum(per_name) / 9 == pytest.approx(overall, abs=1e-6)
    spiking = next(s for s in doc["systems"] if s["key"] == "spiking")
    deploy = next(r for r in spiking["runs"] if r["label"].startswith("deploy"))
    assert deploy["note"].startswith("software ")  # the accuracy before writing to the chip
    # The weight-cell table: plain pairs and the cell on the same ReRAM chip, same data.
    cells = next(s for s in doc["systems"] if s["key"] == "cells")
    plain, cell = (
        yaml.safe_load((stamp_dir / r["run_dir"] / "config.yaml").read_text())
        for r in cells["runs"][-2:]
    )
    assert plain["device"] == cell["device"] == "reram-taox"
    assert plain["cell"]["kind"] == "single" and cell["cell"]["kind"] != "single"
    assert cell["algorithm"] == plain["algorithm"] == "analog-sgd"
    # Every chip run priced against the GPU, and one report holding the whole demo.
    assert "chip against a GPU" in text
    chip_runs = [r["label"] for s in doc["systems"] for r in s["runs"]]
    chip_runs = [m for m in chip_runs if m not in ("software", "deploy")]
    assert [r["method"] for r in doc["energy"]] == chip_runs
    for priced in doc["energy"]:
        assert priced["chip_joules"] > 0 and priced["gpu_joules"] > 0
        ratio = priced["gpu_joules"] / priced["chip_joules"]
        assert ratio == pytest.approx(priced["gpu_over_chip_energy"])
    assert (stamp_dir / "demo.png").read_bytes().startswith(PNG_MAGIC)
    report = stamp_dir / "report.html"
    assert f"report: {report}" in text
    page = report.read_text()
    for system in SYSTEMS:
        assert system.title in page


# -- run CONFIG.yaml ---------------------------------------------------------------------------


def test_run_a_config_file_with_sets(tmp_path: Path) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"algorithm": "software", "hidden": [8], "epochs": 3}))
    out = tmp_path / "run"
    sets = ["--set", "epochs=1", "--set", "limit_train=60", "--set", "limit_test=30"]
    result = invoke("run", str(config), *sets, "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert "test accuracy" in flat(result.stdout)
    used = yaml.safe_load((out / "config.yaml").read_text())
    assert used["algorithm"] == "software" and used["epochs"] == 1 and used["hidden"] == [8]
    # Resuming a finished run reports it and writes nothing.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = invoke("run", "--resume", str(out), "--quiet")
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "CONFIG.yaml"),
        (["--resume", "{tmp}"], "not a run directory"),
        (["{tmp}/missing.yaml"], "does not exist"),
        (["{cfg}", "--set", "epochs=0"], "epochs"),
        (["{cfg}", "--resume", "{tmp}", "--out", "{tmp}/x"], "not both"),
    ],
)
def test_run_invalid_use_exits_2(
    tmp_path: Path,
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epochs: 1\n")
    filled = [a.format(tmp=tmp_path, cfg=cfg) for a in args]
    code, _, err = run_main(["run", *filled], monkeypatch, capsys)
    assert code == 2
    assert words in flat(err)
    assert "Traceback" not in err


# -- sweep SWEEP.yaml --------------------------------------------------------------------------


def test_sweep_runs_and_reruns(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "cli",
                "base": {"algorithm": "software", "hidden": [8], "epochs": 1, "instances": 1},
                "fixed": {"limit_train": 60, "limit_test": 30},
                "grid": {"lr": [0.1, 0.5]},
                "seeds": [0],
            }
        )
    )
    out = tmp_path / "out"
    result = invoke("sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "trial-000" in text and "trial-001" in text and "finished" in text
    assert (out / "results.sqlite").is_file() and (out / "results.csv").is_file()
    before = (out / "trial-000" / "summary.json").read_bytes()
    again = invoke("sweep", str(sweep), "--out", str(out), "--quiet")
    assert again.exit_code == 0, again.output
    assert (out / "trial-000" / "summary.json").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "args", "words"),
    [
        ("grid: {lr: [0.1, -2]}\n", [], "trial-001"),
        ("grid: {lrr: [0.1]}\n", [], "lrr"),
        ("grid: {lr: []}\n", [], "no values"),
        ("grid: {lr: [0.1]}\n", ["--backend", "spark"], "spark"),
        ("grid: {lr: [0.1]}\n", ["--address", "auto"], "--backend ray"),
        ("grid: [\n", [], "YAML"),
        ("grid: {lr: [0.1]}\n", ["--backend", "ray", "--address", "auto"], "cannot join"),
        ("grid: {lr: [0.1]}\n", ["--scheduler", "asha"], "--scheduler is a Ray Tune option"),
        ("grid: {lr: [0.1]}\n", ["--num-samples", "3"], "--backend ray-tune"),
        (
            "grid: {lr: [0.1]}\nmetric: energy.total_j\n",
            ["--backend", "ray-tune", "--scheduler", "asha"],
            "known only at the end",
        ),
        ("grid: {lr: [0.1]}\n", ["--backend", "ray-tune", "--scheduler", "pbt"], "fifo, asha"),
    ],
)
def test_sweep_invalid_use_exits_2(
    tmp_path: Path,
    content: str,
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(content)
    out = tmp_path / "out"
    code, _, err = run_main(["sweep", str(sweep), "--out", str(out), *args], monkeypatch, capsys)
    assert code == 2
    assert words in flat(err)
    assert "Traceback" not in err


def test_report_writes_one_html_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert invoke("train", *SMALL, "--algorithm", "software", "--out", str(out), "--quiet")
    result = invoke("report", str(out), "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    code, _, err = run_main(["report", str(tmp_path / "nothing")], monkeypatch, capsys)
    assert code == 2 and "not a directory" in flat(err)
