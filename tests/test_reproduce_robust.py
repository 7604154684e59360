"""benchmarks/reproduce_robust.py: its grid, its records, and a second call that reuses them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def robust(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("reproduce_robust")


def test_cell_names_map_to_cell_sections(robust: ModuleType) -> None:
    assert robust.cell_options("plain", 10, 0.7) == {"kind": "single"}
    assert robust.cell_options("ttv2+refresh", 5, 0.6) == {
        "kind": "ttv2",
        "refresh_every": 5,
        "refresh_level": 0.6,
    }


def test_refresh_cells_only_on_one_sided_pairs(robust: ModuleType) -> None:
    args = robust.parse_args(["--devices", "reram-taox", "pcm", "--rules", "analog-sgd"])
    cases = robust.plan(args, [])
    refreshed = {c["device"] for c in cases if c["cell"].endswith("+refresh")}
    assert refreshed == {"pcm"}
    # software once per seed, then every cell on each device for each seed: the 6 kinds on
    # reram-taox, each also with refresh on pcm
    assert sum(c["rule"] == "software" for c in cases) == 2
    assert len(robust.KINDS) == 8 and "agad" in robust.KINDS
    assert len(cases) == 2 + 2 * (8 + 16)  # 8 kinds, each also with refresh on pcm


def test_unknown_device_is_a_usage_error(robust: ModuleType) -> None:
    with pytest.raises(SystemExit) as err:
        robust.parse_args(["--devices", "reram-tox"])
    assert err.value.code == 2


@pytest.mark.slow
def test_runs_write_records_and_a_second_call_reuses_them(
    robust: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--devices", "reram-taox", "--rules", "analog-sgd", "--cells", "plain", "ttv2"]
    argv += ["--seeds", "3", "--epochs", "1", "--instances", "2", "--limit-train", "60"]
    argv += ["--limit-test", "30", "--out", str(tmp_path)]
    robust.main(argv)
    records = json.loads((tmp_path / "robust.json").read_text())
    assert [(r["rule"], r["cell"]) for r in records] == [
        ("software", "-"),
        ("analog-sgd", "plain"),
        ("analog-sgd", "ttv2"),
    ]
    for r in records:
        assert len(r["test_acc"]) == 2 and all(0 <= a <= 1 for a in r["test_acc"])
    plain, cell = records[1], records[2]
    assert plain["pulses_per_sample"] > 0 and cell["joules_per_sample"] > 0
    assert cell["cell_options"]["kind"] == "ttv2"
    table = (tmp_path / "robust.md").read_text()
    assert "| digits | analog-sgd | reram-taox | ttv2 | 3 |" in table
    assert (tmp_path / "accuracy_digits.png").read_bytes().startswith(b"\x89PNG")
    # The same call again trains nothing more; other settings are a new grid.
    capsys.readouterr()
    robust.main(argv)
    assert "[1/" not in capsys.readouterr().out
    assert len(json.loads((tmp_path / "robust.json").read_text())) == 3
    args = robust.parse_args([*argv, "--epochs", "2"])
    assert len(robust.plan(args, records)) == 3
