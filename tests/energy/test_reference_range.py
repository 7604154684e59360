"""Processor references with launch overhead: hand-counted kernels, the roofline as the lower
bound, the assumption ranges ordered, and `insitu energy --range` on a tiny real run."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from insitu import cli
from insitu.energy import (
    CPU_RANGE,
    GPU_RANGE,
    H100_SXM,
    H100_SXM_FP32,
    REFERENCE_RANGES,
    LaunchOverhead,
    batches_work,
    energy_report,
    get_profile,
    gpu_cost,
    kernels_per_batch,
    reference_cost,
    reference_range,
)
from insitu.errors import ConfigError
from insitu.experiments import RunResult, make_config, train

FIVE_US = LaunchOverhead(5e-6, 100.0, "test", host_power_w=20.0)


def test_kernel_counts_by_hand() -> None:
    # MLP 3-2 (one layer): forward 2, backward 4 + update 2, step 4.
    assert kernels_per_batch([3, 2], FIVE_US) == 2 + 6 + 4
    assert kernels_per_batch([3, 2], FIVE_US, train=False) == 2
    # SNN 4-3-2 (two layers), T = 10: forward 2 * 10 * (1 + 4); backward 2 * (10 * (2 + 4) + 2).
    assert kernels_per_batch([4, 3, 2], FIVE_US, time_steps=10) == 100 + 124 + 4
    assert kernels_per_batch([4, 3, 2], FIVE_US, time_steps=10, train=False) == 100


def test_launch_bound_time_and_energy_by_hand() -> None:
    # 8 samples at batch 4: 2 batches of 12 kernels at 5 us = 120 us; the roofline of a 3-2
    # network is nanoseconds, so the launches set the time.
    cost = reference_cost(8, 4, [3, 2], H100_SXM_FP32, FIVE_US)
    busy = gpu_cost(batches_work(8, 4, [3, 2]), H100_SXM_FP32)
    assert busy.seconds < 1e-8
    assert cost.bound == "launch"
    assert cost.seconds == pytest.approx(120e-6)
    expected = busy.joules + (120e-6 - busy.seconds) * 100.0 + 120e-6 * 20.0
    assert cost.joules == pytest.approx(expected)


def test_without_overhead_it_is_the_roofline_and_a_large_network_stays_compute_bound() -> None:
    layers = [784, 100, 10]
    assert reference_cost(10, 10, layers, H100_SXM) == gpu_cost(batches_work(10, 10, layers))
    big = [8192, 8192, 8192]
    tiny = LaunchOverhead(1e-9, 50.0, "test")
    cost = reference_cost(1024, 1024, big, H100_SXM, tiny)
    busy = gpu_cost(batches_work(1024, 1024, big), H100_SXM)
    assert cost.bound == busy.bound != "launch"
    assert cost.seconds == busy.seconds and cost.joules == busy.joules


@pytest.mark.parametrize(
    ("layers", "batch", "steps"),
    [([60, 63, 60], 10, None), ([784, 100, 10], 100, None), ([256, 246, 10], 100, 5)],
)
@pytest.mark.parametrize("name", sorted(REFERENCE_RANGES))
def test_every_range_is_ordered_from_the_roofline_up(
    name: str, layers: list[int], batch: int, steps: int | None
) -> None:
    for train_ in (True, False):
        costs = [
            a.cost(batch, layers, time_steps=steps, train=train_) for a in REFERENCE_RANGES[name]
        ]
        joules = [c.joules for c in costs]
        assert joules == sorted(joules), joules
        assert REFERENCE_RANGES[name][0].overhead is None  # the range starts at a roofline
        for a, c in zip(REFERENCE_RANGES[name], costs, strict=True):
            roofline = reference_cost(
                1.0, a.batch_size or batch, layers, a.processor, time_steps=steps, train=train_
            )
            assert c.joules >= roofline.joules and c.seconds >= roofline.seconds


def test_overhead_values_are_checked() -> None:
    with pytest.raises(ConfigError, match="seconds_per_kernel"):
        LaunchOverhead(0.0, 70.0, "x")
    with pytest.raises(ConfigError, match="waiting_power_w"):
        LaunchOverhead(5e-6, -1.0, "x")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """analog-sgd on 60 digits for one epoch, one chip."""
    values = {
        "dataset": "digits",
        "hidden": [8],
        "limit_train": 60,
        "limit_test": 20,
        "epochs": 1,
        "instances": 1,
        "seed": 0,
    }
    run_dir = tmp_path_factory.mktemp("range") / "run"
    return train(make_config(values), run_dir, console=Console(file=io.StringIO()))


def test_reference_range_ratios_follow_the_chip_cost(run: RunResult) -> None:
    summary = json.loads((run.run_dir / "summary.json").read_text())
    report = energy_report(summary, profile=get_profile("ecram-enode"), batch_size=10)
    rows = reference_range(report, GPU_RANGE)
    assert [r["label"] for r in rows] == [a.label for a in GPU_RANGE]
    chip = report["per_train_sample"]["joules"]
    for r in rows:
        ratio = r["over_chip"]["train_energy"]
        assert ratio == pytest.approx(r["per_train_sample"]["joules"] / chip)
    ratios = [r["over_chip"]["train_energy"] for r in rows]
    assert ratios == sorted(ratios) and ratios[0] < ratios[-1]
    # The roofline row is exactly the report's own H100 reference.
    assert rows[0]["per_train_sample"] == report["gpu"]["per_train_sample"]


def test_energy_command_prints_the_range_within_80_columns(run: RunResult, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app,
        ["energy", str(run.run_dir), "--range", "cpu", "--out", str(tmp_path)],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for a in CPU_RANGE:
        assert a.label in result.stdout
    report = json.loads((tmp_path / "energy-ecram-enode-h100.json").read_text())
    assert [r["label"] for r in report["reference_range"]] == [a.label for a in CPU_RANGE]
    assert "ASSUMPTION" in report["reference_range"][-1]["source"]


def test_unknown_range_is_one_line_and_exit_2(
    run: RunResult, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["insitu", "energy", str(run.run_dir), "--range", "tpu"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'tpu'" in err and "cpu" in err and "gpu" in err
    assert not list(run.run_dir.glob("energy-*tpu*"))
