"""`insitu energy RUN_DIR` on a tiny real run; every summary carries the energy totals."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from insitu import cli
from insitu.energy import energy_report, get_profile, price, profile_names
from insitu.experiments import RunResult, make_config, train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WIDE = {"COLUMNS": "200"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env=WIDE)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """analog-sgd on 100 digits for one epoch, two chip instances."""
    values = {
        "dataset": "digits",
        "hidden": [8],
        "limit_train": 100,
        "limit_test": 50,
        "epochs": 1,
        "instances": 2,
        "seed": 0,
    }
    run_dir = tmp_path_factory.mktemp("energy") / "run"
    console = Console(file=io.StringIO())
    return train(make_config(values), run_dir, console=console, progress=False)


def summary_of(run: RunResult) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((run.run_dir / "summary.json").read_text())
    return loaded


def test_summary_carries_energy_totals_of_training_and_evaluation(run: RunResult) -> None:
    s = summary_of(run)
    assert s["energy"]["profile"] == "ecram-enode"  # ecram-organic is van de Burgt's ENODe
    # Training and evaluation events add up to all events.
    for kind, total in s["events"].items():
        assert s["train_events"].get(kind, 0.0) + s["eval_events"].get(kind, 0.0) == (
            pytest.approx(total)
        )
    assert s["eval_events"]["device_pulse"] == 0.0  # evaluating never programs
    assert s["eval_samples"] == 2 * (100 + 50)  # the untrained chip (epoch 0), then epoch 1
    steady = {k: v - s["setup_events"].get(k, 0.0) for k, v in s["train_events"].items()}
    per_sample = price(steady, get_profile("ecram-enode")).total_joules / (2 * 100)
    assert s["energy"]["joules_per_train_sample"] == pytest.approx(per_sample)
    assert per_sample > 0
    # Programming the initial weights (write-verify) is setup, reported once per chip.
    assert s["setup_events"]["device_read"] > 0
    setup = price(s["setup_events"], get_profile("ecram-enode")).total_joules / 2
    assert s["energy"]["setup_joules_per_chip"] == pytest.approx(setup)
    assert s["energy"]["gpu_over_chip"]["train_energy"] > 0


def test_doubling_the_training_samples_doubles_the_training_cost(
    run: RunResult, tmp_path: Path
) -> None:
    values = {**run.config.model_dump(), "limit_train": 200}
    twice = train(
        make_config(values), tmp_path / "twice", console=Console(file=io.StringIO()), progress=False
    )
    one, two = summary_of(run)["energy"], summary_of(twice)["energy"]
    assert summary_of(twice)["train_samples"] == 2 * summary_of(run)["train_samples"]
    # Reads and update cycles per sample are fixed by the network: time doubles exactly.
    total_one = one["seconds_per_train_sample"] * 100
    total_two = two["seconds_per_train_sample"] * 200
    assert total_two == pytest.approx(2 * total_one, rel=1e-9)
    # Energy depends on how many pulses the errors ask for: it doubles up to that spread.
    assert two["joules_per_train_sample"] * 200 == pytest.approx(
        2 * one["joules_per_train_sample"] * 100, rel=0.3
    )
    # The setup (initial programming) does not grow with the samples.
    assert two["setup_joules_per_chip"] == pytest.approx(one["setup_joules_per_chip"], rel=0.3)


def test_energy_command_prints_and_saves_the_report(run: RunResult) -> None:
    result = invoke("energy", str(run.run_dir))
    assert result.exit_code == 0, result.output
    assert "per train sample" in result.stdout and "ecram-enode" in result.stdout
    report = json.loads((run.run_dir / "energy-ecram-enode-h100.json").read_text())
    assert (run.run_dir / "energy-ecram-enode-h100.png").read_bytes().startswith(PNG_MAGIC)
    s = summary_of(run)
    assert report["per_train_sample"]["joules"] == pytest.approx(
        s["energy"]["joules_per_train_sample"]
    )
    by_kind = report["per_train_sample"]["by_kind"]
    assert sum(v["joules"] for v in by_kind.values()) == pytest.approx(
        report["per_train_sample"]["joules"]
    )
    assert by_kind["device_pulse"]["joules"] > 0
    assert report["gpu"]["utilisation"] == 0.5 and "700 W" in report["gpu"]["source"]
    # A second report never overwrites the first.
    again = invoke("energy", str(run.run_dir))
    assert again.exit_code != 0
    assert "already exists" in str(again.exception)


def test_energy_command_with_another_profile_and_folder(run: RunResult, tmp_path: Path) -> None:
    result = invoke(
        "energy", str(run.run_dir), "--profile", "taox-memristor", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    taox = json.loads((tmp_path / "energy-taox-memristor-h100.json").read_text())
    enode = energy_report(summary_of(run), profile=get_profile("ecram-enode"), batch_size=10)
    # TaOx pulses (15 pJ, assumed) cost more than ENODe pulses (10 pJ, published).
    assert taox["per_train_sample"]["joules"] > enode["per_train_sample"]["joules"]


def test_bad_profile_name_is_one_clear_error(
    run: RunResult, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["insitu", "energy", str(run.run_dir), "--profile", "nope"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown energy profile 'nope'" in err
    for name in profile_names():
        assert name in err


def test_profiles_listing_shows_every_preset_and_its_sources() -> None:
    result = invoke("energy", "--profiles")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for name in profile_names():
        assert name in text
    details = []
    for name in profile_names():  # every price and its source, one profile at a time
        shown = invoke("energy", "--profiles", "--profile", name)
        assert shown.exit_code == 0
        details.append(" ".join(shown.stdout.split()))
    for cited in ("Melianas", "van de Burgt", "Cramer", "Horowitz", "ASSUMPTION"):
        assert cited in " ".join(details)


def test_a_folder_without_a_run_is_refused(tmp_path: Path) -> None:
    result = invoke("energy", str(tmp_path))
    assert result.exit_code != 0
    assert "no summary.json" in str(result.exception)
    missing = invoke("energy")
    assert "give a run directory" in str(missing.exception)


def test_old_summaries_without_split_events_are_priced_with_a_note(run: RunResult) -> None:
    s = summary_of(run)
    old = {k: s[k] for k in ("layers", "instances", "train_samples", "events")}
    report = energy_report(old, profile=get_profile("ecram-enode"), batch_size=10)
    assert report["notes"] and "overestimate" in report["notes"][0]
    assert report["per_inference"]["joules"] is None


def test_a_spiking_run_is_priced_with_brainscales2_and_a_bptt_reference(tmp_path: Path) -> None:
    # What the runner writes for a spiking chip: time_steps, events of the spiking kinds.
    summary = {
        "device": "ecram-organic",
        "layers": [256, 246, 10],
        "instances": 1,
        "train_samples": 100,
        "time_steps": 5,
        "events": {"emulation_step": 1000.0, "host_bytes_in": 6.5e5},
        "train_events": {"emulation_step": 500.0, "host_bytes_in": 6.5e5},
        "setup_events": {},
        "eval_events": {"emulation_step": 500.0},
        "eval_samples": 100,
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "config.yaml").write_text("batch_size: 20\n")
    result = invoke("energy", str(tmp_path))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "energy-brainscales2-h100.json").read_text())
    assert report["time_steps"] == 5 and report["batch_size"] == 20
    # 5 steps of 1.7 us at 200 mW per image
    assert report["per_inference"]["joules"] == pytest.approx(5 * 1.7e-6 * 0.2)
    assert report["per_inference"]["seconds"] == pytest.approx(5 * 1.7e-6)
    # Training: 5 steps per sample plus 6,500 weight bytes per sample over a 1 GB/s link.
    assert report["per_train_sample"]["seconds"] == pytest.approx(5 * 1.7e-6 + 6500e-9)
    # The GPU reference is backprop through time: T times the MLP's synaptic FLOPs and more.
    p = 256 * 246 + 246 * 10
    assert report["gpu"]["per_train_sample"]["flops"] > 5 * 6 * p
