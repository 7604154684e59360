"""Sweeps: validated sweep files, trial expansion, the local pool and a real local Ray instance
giving the same results table, re-runs that skip and resume, failures recorded."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from insitu.errors import ConfigError
from insitu.experiments import make_config, train
from insitu.experiments import run as run_module
from insitu.experiments.checkpoint import load_checkpoint
from insitu.experiments.sweep import expand, make_sweep, read_sweep
from insitu.experiments.sweep_results import RESULTS_CSV, RESULTS_DB, read_sqlite
from insitu.experiments.sweep_runner import SWEEP_FILE, SweepResult, run_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# 2 x 2 grid x 2 seeds = 8 tiny trials (1 epoch, 100 digits).
TINY = {
    "name": "tiny",
    "base": {
        "dataset": "digits",
        "hidden": [8],
        "limit_train": 100,
        "limit_test": 50,
        "epochs": 1,
        "instances": 1,
    },
    "grid": {"lr": [0.1, 0.3], "device_overrides.dw_min": [0.001, 0.004]},
    "seeds": [0, 1],
    "metric": "test_acc_mean",
}


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def without_wall(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{c: v for c, v in zip(columns, r, strict=True) if c != "wall_s"} for r in rows]


def sweep_tiny(sweep_dir: Path, **kwargs: Any) -> SweepResult:
    spec = make_sweep(TINY)
    return run_sweep(spec, dict(TINY["base"]), sweep_dir, console=quiet(), progress=False, **kwargs)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return sweep_tiny(tmp_path_factory.mktemp("sweeps") / "local", backend="local", workers=2)


# -- sweep files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"grids": {}}, "grids"),
        ({"grid": {"lr": []}}, "lists no values"),
        ({"grid": {"lr": 0.1}}, "grid"),
        ({"grid": {"seed": [1, 2]}}, "seeds:"),
        ({"random": {"variation": {"low": 0.1, "high": 0.3}}}, "samples"),
        ({"samples": 3}, "random"),
        ({"random": {"variation": {"low": 0.3, "high": 0.1}}, "samples": 2}, "below high"),
        ({"random": {"variation": {"low": 0, "high": 1, "log": True}}, "samples": 2}, "low > 0"),
        ({"random": {"variation": {"choices": []}}, "samples": 2}, "at least one"),
        ({"random": {"variation": {"low": 0.1}}, "samples": 2}, "high"),
        ({"random": {"lr": {"choices": [0.1]}}, "samples": 2}, "both in grid and random"),
        ({"metric": "accuracy"}, "test_acc_mean"),
        ({"mode": "best"}, "mode"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [1, 1]}, "repeat"),
        ({"seeds": [-1]}, "seeds"),
        ({"name": "a b/c"}, "name"),
        ({"retries": -1}, "retries"),
    ],
)
def test_invalid_sweep_names_the_field(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_sweep({**TINY, **changes})
    assert words in " ".join(str(info.value).split())


def test_invalid_trial_config_fails_before_any_work(tmp_path: Path) -> None:
    bad = {**TINY, "grid": {"lr": [0.1, -1.0]}}
    with pytest.raises(ConfigError) as info:
        run_sweep(make_sweep(bad), dict(TINY["base"]), tmp_path / "sweep", console=quiet())
    message = str(info.value)
    assert "trial-002" in message and "lr" in message and "-1.0" in message
    assert not (tmp_path / "sweep").exists()


def test_grid_random_and_seeds_expand_into_trials(tmp_path: Path) -> None:
    spec = make_sweep(
        {
            "base": "base.yaml",
            "fixed": {"periphery.adc_bits": 6},
            "grid": {"hidden": [[4], [8, 4]]},
            "random": {
                "lr": {"low": 0.01, "high": 1.0, "log": True},
                "variation": {"choices": [0.0, 0.1]},
                "update.max_pulses": {"low": 5, "high": 50, "integer": True},
            },
            "samples": 3,
            "seeds": [4, 5],
        }
    )
    (tmp_path / "base.yaml").write_text("algorithm: software\nepochs: 2\n")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    spec2, base = read_sweep(tmp_path / "sweep.yaml")  # the base file, relative to the sweep
    assert spec2 == spec and base == {"algorithm": "software", "epochs": 2}
    trials = expand(spec, base)
    assert len(trials) == 2 * 3 * 2
    assert [t.seed for t in trials[:4]] == [4, 5, 4, 5]
    for t in trials:
        cfg = make_config(t.values)
        assert cfg.algorithm == "software" and cfg.epochs == 2 and cfg.seed == t.seed
        assert cfg.periphery.adc_bits == 6
        assert cfg.hidden == t.params["hidden"]
        assert 0.01 <= cfg.lr <= 1.0 and cfg.lr == t.params["lr"]
        assert cfg.variation in (0.0, 0.1)
        assert isinstance(cfg.update.max_pulses, int) and 5 <= cfg.update.max_pulses <= 50
    # Seeds share the drawn point; the draws themselves differ and repeat with sample_seed.
    assert trials[0].params == trials[1].params
    assert len({t.params["lr"] for t in trials}) == 6
    assert [t.params for t in expand(spec, base)] == [t.params for t in trials]


# -- running: local pool and Ray ---------------------------------------------------------------


def test_local_sweep_writes_table_and_plots(local_sweep: SweepResult) -> None:
    sweep_dir = local_sweep.sweep_dir
    assert [r["status"] for r in local_sweep.rows] == ["finished"] * 8
    assert [r["trial"] for r in local_sweep.rows] == [f"trial-{k:03d}" for k in range(8)]
    for row in local_sweep.rows:
        run_dir = sweep_dir / row["trial"]
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert cfg["lr"] == row["lr"] and cfg["seed"] == row["seed"]
        assert cfg["device_overrides"] == {"dw_min": row["device_overrides.dw_min"]}
        summary = json.loads((run_dir / "summary.json").read_text())
        assert row["test_acc_mean"] == summary["test_acc_mean"]
        assert row["device_pulses"] > 0
    columns, rows = read_sqlite(sweep_dir / RESULTS_DB)
    assert columns == local_sweep.columns
    assert {"trial", "seed", "lr", "device_overrides.dw_min", "test_acc_mean"} <= set(columns)
    with open(sweep_dir / RESULTS_CSV, newline="") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(rows) == 8
    for text_row, db_row in zip(csv_rows, rows, strict=True):
        assert text_row["trial"] == db_row[0]
        assert float(text_row["test_acc_mean"]) == db_row[columns.index("test_acc_mean")]
    assert {p.name for p in local_sweep.plots} == {
        "sweep_lr.png",
        "sweep_device_overrides.dw_min.png",
    }
    for plot in local_sweep.plots:
        assert plot.read_bytes().startswith(PNG_MAGIC)


def test_ray_sweep_gives_the_same_table(local_sweep: SweepResult, tmp_path: Path) -> None:
    import ray  # a dependency of insitu: the test fails, never skips, without it

    assert not ray.is_initialized()
    result = sweep_tiny(tmp_path / "ray", backend="ray", workers=2)  # a local Ray, 2 CPUs
    assert not ray.is_initialized()  # the instance started for the sweep is stopped
    local = without_wall(*read_sqlite(local_sweep.sweep_dir / RESULTS_DB))
    remote = without_wall(*read_sqlite(result.sweep_dir / RESULTS_DB))
    assert remote == local
    assert all(r["status"] == "finished" for r in remote)


def test_rerun_skips_finished_and_resumes_interrupted(
    local_sweep: SweepResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_dir = tmp_path / "copy"
    shutil.copytree(local_sweep.sweep_dir, sweep_dir)
    # trial-005 was killed mid-epoch, after a checkpoint; trial-006 before its first one.
    trials = expand(make_sweep(TINY), dict(TINY["base"]))
    interrupted = sweep_dir / "trial-005"
    shutil.rmtree(interrupted)
    with monkeypatch.context() as patch:
        saves = {"n": 0}
        original = run_module.save_checkpoint

        def save_then_die(run_dir: Path, ckpt: Any) -> Path:
            path = original(run_dir, ckpt)
            saves["n"] += 1
            if saves["n"] == 2:
                raise KeyboardInterrupt
            return path

        patch.setattr(run_module, "save_checkpoint", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            cfg = make_config({**trials[5].values, "checkpoint_every": 3})
            train(cfg, interrupted, console=quiet(), progress=False)
    ckpt = load_checkpoint(interrupted)
    assert ckpt is not None and ckpt.progress is not None and ckpt.step == 6
    for name in ("summary.json", "learning_curve.png", "conductance_histogram.png"):
        (sweep_dir / "trial-006" / name).unlink()
    kept = {
        p: p.read_bytes()
        for p in sweep_dir.glob("trial-*/*")
        if p.parent.name not in ("trial-005", "trial-006")
    }
    result = sweep_tiny(sweep_dir, backend="local", workers=2)
    assert {p: p.read_bytes() for p in kept} == kept  # finished trials untouched
    assert (interrupted / "summary.json").is_file()
    assert not (interrupted / "checkpoint.pt").exists()
    before = without_wall(*read_sqlite(local_sweep.sweep_dir / RESULTS_DB))
    assert without_wall(*read_sqlite(sweep_dir / RESULTS_DB)) == before
    assert result.rows[5]["status"] == result.rows[6]["status"] == "finished"


def test_another_sweep_into_the_same_directory_is_refused(local_sweep: SweepResult) -> None:
    other = {**TINY, "seeds": [0, 2]}
    before = (local_sweep.sweep_dir / SWEEP_FILE).read_text()
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(make_sweep(other), dict(TINY["base"]), local_sweep.sweep_dir, console=quiet())
    assert (local_sweep.sweep_dir / SWEEP_FILE).read_text() == before


def test_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # A flip rate of 0.9 passes the config check but the Braille set refuses it at load time.
    spec = make_sweep(
        {
            "base": {
                "algorithm": "software",
                "dataset": "braille",
                "dataset_options": {"train_per_class": 10, "test_per_class": 5},
                "hidden": [8],
                "epochs": 1,
                "instances": 1,
            },
            "grid": {"dataset_options.flip_rate": [0.1, 0.9]},
            "seeds": [0],
        }
    )
    assert isinstance(spec.base, dict)
    base = dict(spec.base)
    result = run_sweep(spec, base, tmp_path / "sweep", workers=1, console=quiet(), progress=False)
    ok, failed = result.rows
    assert ok["status"] == "finished" and ok["test_acc_mean"] is not None
    assert failed["status"] == "failed"
    assert "flip_rate" in failed["error"] and "ConfigError" in failed["error"]
    assert failed["test_acc_mean"] is None
    assert "flip_rate" in (tmp_path / "sweep" / "trial-001" / "error.txt").read_text()
    _, rows = read_sqlite(tmp_path / "sweep" / RESULTS_DB)
    assert [r[3] for r in rows] == ["finished", "failed"]
    # A re-run skips the finished trial and tries the failed one again.
    kept = (tmp_path / "sweep" / "trial-000" / "summary.json").read_bytes()
    again = run_sweep(spec, base, tmp_path / "sweep", workers=1, console=quiet(), progress=False)
    assert [r["status"] for r in again.rows] == ["finished", "failed"]
    assert "flip_rate" in again.rows[1]["error"]
    assert (tmp_path / "sweep" / "trial-000" / "summary.json").read_bytes() == kept


# -- fuzzing: a sweep file gives a sweep or a ConfigError, never a crash ------------------------

_LEAF = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6)
_FIELD = st.sampled_from(["lr", "hidden", "seed", "device_overrides.dw_min", "x.", "", "epochs"])
_SWEEP_KEYS = st.sampled_from(
    ["name", "base", "fixed", "grid", "random", "samples", "seeds", "metric", "mode", "retries"]
)
_VALUES = st.recursive(
    _LEAF,
    lambda c: (
        st.lists(c, max_size=3) | st.dictionaries(_FIELD | st.text(max_size=4), c, max_size=3)
    ),
    max_leaves=8,
)
_RANDOM_SPEC = st.fixed_dictionaries(
    {},
    optional={
        "low": _LEAF,
        "high": _LEAF,
        "log": st.booleans(),
        "integer": st.booleans(),
        "choices": st.lists(_LEAF, max_size=3),
    },
)
SWEEP_DICTS = st.dictionaries(
    _SWEEP_KEYS | st.text(max_size=5),
    _VALUES
    | st.dictionaries(_FIELD, st.lists(_LEAF, max_size=3), max_size=2)
    | st.dictionaries(_FIELD, _RANDOM_SPEC, max_size=2),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(values=SWEEP_DICTS)
def test_random_sweeps_raise_only_config_error(values: dict[str, Any]) -> None:
    try:
        spec = make_sweep(values)
        base = spec.base if isinstance(spec.base, dict) else {}
        trials = expand(spec, base)
    except ConfigError as err:
        assert str(err)
        return
    for t in trials:
        make_config(t.values)
