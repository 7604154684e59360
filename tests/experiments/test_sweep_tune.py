"""Sweeps on Ray Tune: ASHA stops trials and every trial is recorded; trials match the local
pool's bit for bit; a sweep whose driver was killed resumes without re-running what ended;
random search draws from Tune's space of the sweep's fields."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from insitu.errors import ConfigError
from insitu.experiments import make_config
from insitu.experiments.sweep import make_sweep
from insitu.experiments.sweep_results import RESULTS_DB, read_sqlite
from insitu.experiments.sweep_runner import SweepResult, run_sweep, sweep_trials
from insitu.experiments.sweep_trial import STOPPED_FILE
from insitu.experiments.sweep_tune import TUNE_DIR, TuneOptions, search_trials

# Two learning rates that train and two that barely move the weights: 4 trials, 2 epochs.
# The loss after epoch 1 separates them, so ASHA stops the two slow ones whatever the order.
SWEEP = {
    "name": "tune",
    "base": {
        "dataset": "digits",
        "hidden": [8],
        "limit_train": 100,
        "limit_test": 50,
        "epochs": 2,
        "instances": 1,
    },
    "grid": {"lr": [0.2, 0.3, 1e-5, 2e-5]},
    "seeds": [0],
    "metric": "loss_mean",
    "mode": "min",
}
SLOW = ("trial-002", "trial-003")


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


def sweep(sweep_dir: Path, backend: str, **kwargs: Any) -> SweepResult:
    spec = make_sweep(SWEEP)
    return run_sweep(
        spec, dict(SWEEP["base"]), sweep_dir, backend=backend, console=quiet(), progress=False,
        workers=2, **kwargs,
    )  # fmt: skip


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    """A run's metrics.csv without its wall times."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(fh)]


def table(sweep_dir: Path) -> list[dict[str, Any]]:
    columns, rows = read_sqlite(sweep_dir / RESULTS_DB)
    return [{c: v for c, v in zip(columns, r, strict=True) if c != "wall_s"} for r in rows]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return sweep(tmp_path_factory.mktemp("tune") / "local", "local")


@pytest.fixture(scope="module")
def ray_cpus() -> Iterator[None]:
    """A local Ray of 2 CPUs for this module's sweeps (which leave a Ray they found running)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


# -- options and search (no Ray needed) --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "changes", "words"),
    [
        (TuneOptions(scheduler="hyperband"), {}, "fifo, asha"),
        (TuneOptions(scheduler="asha"), {"metric": "energy.total_j"}, "known only at the end"),
        (TuneOptions(grace_period=0), {}, "--grace-period"),
        (TuneOptions(reduction_factor=1.0), {}, "--reduction-factor"),
        (TuneOptions(num_samples=0), {}, "--num-samples"),
        (TuneOptions(num_samples=3), {"grid": {}}, "has none"),
    ],
)
def test_invalid_tune_options_name_the_option(
    options: TuneOptions, changes: dict[str, Any], words: str
) -> None:
    spec = make_sweep({**SWEEP, **changes})
    with pytest.raises(ConfigError, match=words):
        sweep_trials(spec, dict(SWEEP["base"]), "ray-tune", options)


def test_tune_options_need_the_tune_backend(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--backend ray-tune"):
        sweep(tmp_path / "s", "local", tune=TuneOptions(scheduler="asha"))
    assert not (tmp_path / "s").exists()


def test_random_search_draws_from_the_sweeps_fields() -> None:
    spec = make_sweep(
        {
            **SWEEP,
            "grid": {"hidden": [[4], [8, 4]]},
            "random": {
                "lr": {"low": 0.01, "high": 1.0, "log": True},
                "update.max_pulses": {"low": 5, "high": 50, "integer": True},
                "variation": {"choices": [0.0, 0.1]},
            },
            "samples": 2,
            "seeds": [3, 4],
        }
    )
    base = dict(SWEEP["base"])
    six = TuneOptions(num_samples=6)
    trials = search_trials(spec, base, six)
    assert len(trials) == 6 * 2 and [t.seed for t in trials[:4]] == [3, 4, 3, 4]
    for first, second in zip(trials[::2], trials[1::2], strict=True):
        assert first.params == second.params  # each drawn point runs with every seed
    for t in trials:
        cfg = make_config(t.values)
        assert cfg.hidden in ([4], [8, 4]) and cfg.variation in (0.0, 0.1)
        assert 0.01 <= cfg.lr <= 1.0 and type(t.params["lr"]) is float
        assert type(t.params["update.max_pulses"]) is int
        assert 5 <= cfg.update.max_pulses <= 50
    assert len({t.params["lr"] for t in trials}) == 6
    again = search_trials(spec, base, six)
    assert [t.params for t in again] == [t.params for t in trials]  # seeded by sample_seed
    other = search_trials(spec.model_copy(update={"sample_seed": 1}), base, six)
    assert [t.params for t in other] != [t.params for t in trials]
    assert search_trials(spec, base, TuneOptions()) == sweep_trials(spec, base, "local")


# -- sweeps on a local Ray ---------------------------------------------------------------------


@pytest.mark.slow
def test_asha_stops_trials_and_every_trial_is_recorded(
    local: SweepResult, ray_cpus: None, tmp_path: Path
) -> None:
    options = TuneOptions(scheduler="asha", reduction_factor=2.0)
    result = sweep(tmp_path / "asha", "ray-tune", tune=options)
    status = {r["trial"]: r["status"] for r in result.rows}
    assert set(status) == {f"trial-{k:03d}" for k in range(4)}
    assert set(status.values()) <= {"finished", "stopped"}
    assert all(status[name] == "stopped" for name in SLOW)  # trailing at epoch 1
    assert "finished" in status.values()
    local_rows = {r["trial"]: r for r in table(local.sweep_dir)}
    for row in table(result.sweep_dir):
        run_dir = result.sweep_dir / row["trial"]
        reference = metric_rows(local.sweep_dir / row["trial"])
        if row["status"] == "finished":
            assert row == local_rows[row["trial"]]  # bit-identical to the local pool's trial
            assert metric_rows(run_dir) == reference
        else:
            stop = json.loads((run_dir / STOPPED_FILE).read_text())
            assert stop == {"epoch": 1, "scheduler": "asha"} and row["epochs_completed"] == 1
            assert row["error"] == "stopped by asha after epoch 1"
            assert metric_rows(run_dir) == reference[:2]  # epochs 0 and 1, as the local run's
            assert row["loss_mean"] == float(reference[1]["loss_mean"])
            assert not (run_dir / "summary.json").exists()
    assert (result.sweep_dir / TUNE_DIR).is_dir()  # Tune's own record, for Tuner.restore
    # A re-run keeps what ended: stopped trials are not trained on.
    kept = {p: p.read_bytes() for p in result.sweep_dir.glob("trial-*/*")}
    again = sweep(tmp_path / "asha", "ray-tune", tune=options)
    assert [r["status"] for r in again.rows] == [r["status"] for r in result.rows]
    assert {p: p.read_bytes() for p in kept} == kept
    with pytest.raises(ConfigError, match="same --scheduler"):
        sweep(tmp_path / "asha", "ray-tune", tune=TuneOptions(scheduler="fifo"))


@pytest.mark.slow
def test_failed_trial_is_recorded_and_tried_again(ray_cpus: None, tmp_path: Path) -> None:
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
            "retries": 0,
        }
    )
    assert isinstance(spec.base, dict)
    out = tmp_path / "sweep"
    result = run_sweep(spec, dict(spec.base), out, backend="ray", console=quiet(), progress=False)
    ok, failed = result.rows
    assert ok["status"] == "finished" and ok["test_acc_mean"] is not None
    assert failed["status"] == "failed" and failed["test_acc_mean"] is None
    assert failed["error"].startswith("ConfigError: ") and "flip_rate" in failed["error"]
    assert "flip_rate" in (out / "trial-001" / "error.txt").read_text()
    kept = (out / "trial-000" / "summary.json").read_bytes()
    (out / "trial-001" / "error.txt").unlink()  # so the retry must write it anew
    again = run_sweep(spec, dict(spec.base), out, backend="ray", console=quiet(), progress=False)
    assert [r["status"] for r in again.rows] == ["finished", "failed"]
    assert "flip_rate" in (out / "trial-001" / "error.txt").read_text()  # restarted by Tune
    assert (out / "trial-000" / "summary.json").read_bytes() == kept


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def command(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return ""
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killed_tune_sweep_resumes_without_rerunning_what_ended(
    local: SweepResult, ray_cpus: None, tmp_path: Path
) -> None:
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    out = tmp_path / "out"
    driver = "from insitu.cli import main; main()"
    args = ["sweep", str(spec_file), "--backend", "ray-tune", "--workers", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", driver, *args, "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("trial-*/summary.json")):
            assert proc.poll() is None, "the sweep ended before the kill"
            assert time.monotonic() < deadline, "no trial ended within 240 s"
            time.sleep(0.05)
        below = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    ended = sorted(p.parent.name for p in out.glob("trial-*/summary.json"))
    assert len(ended) < 4, "every trial had ended at the kill: nothing left to resume"
    # The trials' workers die with the driver's Ray (its idle agents only a minute later).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(c and "Agent" not in c for c in map(command, below)):
        time.sleep(0.2)
    left = {p: command(p) for p in below if command(p)}
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert all("Agent" in c for c in left.values()), f"{left} outlived the sweep"

    kept = {p: p.read_bytes() for name in ended for p in (out / name).iterdir()}
    times = {p: p.stat().st_mtime_ns for p in kept}
    result = run_sweep(
        make_sweep(SWEEP), dict(SWEEP["base"]), out, backend="ray-tune", console=quiet(),
        progress=False,
    )  # fmt: skip
    assert [r["status"] for r in result.rows] == ["finished"] * 4
    assert {p: p.read_bytes() for p in kept} == kept  # trials that ended were not re-run
    assert {p: p.stat().st_mtime_ns for p in kept} == times
    assert table(out) == table(local.sweep_dir)  # resumed trials too: same as the local pool
