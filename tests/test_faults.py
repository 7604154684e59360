"""Faults users met: a full disk, read-only or misnamed directories, malformed --set values, a
Ray address that never answers, a killed sweep. Each ends in one line and exit status 2 (or,
for the kill, no orphans), and nothing already written is lost."""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib.figure
import pytest
import torch
import yaml

from insitu import atomic
from insitu.errors import StorageError
from insitu.experiments import ray_cluster, sweep_runner, sweep_trial
from insitu.experiments.checkpoint import CHECKPOINT_NAME
from test_cli import run_main

# Two epochs of a second or so; a checkpoint at the end of each.
TWO_EPOCHS = [
    "--epochs", "2", "--instances", "1", "--hidden", "8", "--quiet",
    "--set", "limit_train=100", "--set", "limit_test=50",
]  # fmt: skip
Main = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Main:
    return lambda args: run_main(args, monkeypatch, capsys)


def one_line_error(code: int, err: str) -> str:
    """The error line, after checking it is the whole of stderr and the status is 2."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def without_wall(run_dir: Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Metrics rows and summary of a run, less the wall-clock times that differ run to run."""
    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(fh)]
    summary = json.loads((run_dir / "summary.json").read_text())
    return rows, {k: v for k, v in summary.items() if k != "wall_s"}


def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device reports no free blocks (what statvfs says once a write has filled it)."""
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=0, f_frsize=4096))


def fail_on_call(n: int, real: Callable[..., Any], fault: Callable[..., Any]) -> Callable[..., Any]:
    """``real`` for every call but the ``n``-th (1-based), which runs ``fault`` instead."""
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return (fault if calls["n"] == n else real)(*args, **kwargs)

    return call


def enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# -- 1. a full disk ----------------------------------------------------------------------------


def torch_save_on_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second checkpoint meets a full disk: torch's own writer fails as it does there."""
    real = torch.save

    def full(obj: Any, path: Any) -> None:
        disk_full(monkeypatch)
        real(obj, "/dev/full")  # torch raises a RuntimeError that has lost the errno

    monkeypatch.setattr(torch, "save", fail_on_call(2, real, full))


def replace_of_third_metrics_on_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The metrics after epoch 2 (the fourth metrics.csv: header, epochs 0, 1, 2) fail."""
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "metrics.csv":
            metrics_replace(src, dst)
        else:
            real(src, dst)

    metrics_replace = fail_on_call(4, real, enospc)
    monkeypatch.setattr(os, "replace", replace)


def summary_write_on_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half the summary reaches the disk, then the write fails."""
    real_open = open

    class HalfWriter:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, data: str) -> int:
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def opener(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(path, mode, *args, **kwargs)
        return HalfWriter(fh) if ".summary.json." in str(path) and "w" in mode else fh

    monkeypatch.setattr(atomic, "open", opener, raising=False)


@pytest.mark.parametrize(
    ("fault", "name"),
    [
        (torch_save_on_full_disk, CHECKPOINT_NAME),
        (replace_of_third_metrics_on_full_disk, "metrics.csv"),
        (summary_write_on_full_disk, "summary.json"),
    ],
)
def test_full_disk_is_one_line_keeps_the_run_and_resume_finishes_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    main: Main,
    fault: Callable[[pytest.MonkeyPatch], None],
    name: str,
) -> None:
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert main(["train", *TWO_EPOCHS, "--out", str(reference)])[0] == 0
    # What the run directory held when the failing write began.
    before: dict[str, bytes] = {}
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        before.update(snapshot(run))
        return real_mkstemp(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", mkstemp)
        fault(patch)
        code, _, err = main(["train", *TWO_EPOCHS, "--out", str(run)])
    line = one_line_error(code, err)
    assert f"no space left on the device holding {run} while writing {name}" in line
    assert f"the last complete {name} is kept" in line or f"no partial {name} is left" in line
    assert f"free space, then `insitu run --resume {run}`" in line
    assert not temporaries(run)
    after = snapshot(run)
    assert after.get(name) == before.get(name)  # the file being written: as it was
    assert CHECKPOINT_NAME in after and after[CHECKPOINT_NAME] == before[CHECKPOINT_NAME]

    code, out, err = main(["run", "--resume", str(run), "--quiet"])
    assert code == 0, err
    assert "test accuracy" in out
    assert without_wall(run) == without_wall(reference)
    assert [row["epoch"] for row in without_wall(run)[0]] == ["0", "1", "2"]


def test_full_disk_while_saving_a_plot_keeps_the_old_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main
) -> None:
    png = tmp_path / "response.png"
    png.write_bytes(b"the earlier picture")
    real = matplotlib.figure.Figure.savefig

    def savefig(self: matplotlib.figure.Figure, fname: Any, **kwargs: Any) -> None:
        real(self, "/dev/full", **kwargs)  # matplotlib's own write meets ENOSPC

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    code, _, err = main(["devices", "plot", "ecram-organic", "--out", str(png)])
    line = one_line_error(code, err)
    assert f"no space left on the device holding {tmp_path} while writing response.png" in line
    assert "the last complete response.png is kept: free space, then run again" in line
    assert png.read_bytes() == b"the earlier picture"
    assert not temporaries(tmp_path)


def test_full_disk_while_writing_sweep_results_keeps_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main
) -> None:
    sweep, out = tiny_sweep(tmp_path, [0.1]), tmp_path / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet"]
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        (enospc if Path(dst).name == "results.csv" else real)(src, dst)

    with monkeypatch.context() as patch:  # the trials write in their own processes, unpatched
        patch.setattr(os, "replace", replace)
        line = one_line_error(*main(args)[::2])
    assert line == (
        f"error: no space left on the device holding {out} while writing results.csv; no partial "
        f"results.csv is left: free space, then run the same sweep with --out {out} (trials "
        "that ended are kept)"
    )
    summary = (out / "trial-000" / "summary.json").read_bytes()
    assert not temporaries(out)
    code, _, err = main(args)
    assert code == 0, err
    assert (out / "trial-000" / "summary.json").read_bytes() == summary  # not run again
    assert [r["status"] for r in csv.DictReader((out / "results.csv").open())] == ["finished"]


def test_trial_on_a_full_disk_is_a_failed_row_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "replace", enospc)
    values = {"algorithm": "software", "hidden": [8], "epochs": 1, "instances": 1}
    row = sweep_trial.run_trial(str(tmp_path / "t"), {**values, "limit_train": 60})
    assert row["status"] == "failed"
    assert row["error"].startswith("StorageError: no space left on the device holding")


def test_storage_error_survives_a_process_pool() -> None:
    err = StorageError("no space left on the device holding /r", Path("/r"), no_space=True)
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.directory, back.no_space) == (str(err), Path("/r"), True)


# -- 2. read-only or misnamed directories ------------------------------------------------------


def refuse_writes_under(
    monkeypatch: pytest.MonkeyPatch, folder: Path, code: int = errno.EROFS
) -> None:
    """Creating anything inside ``folder`` fails as on a read-only mount."""

    def inside(path: Any) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve())

    real_mkdir = Path.mkdir
    real_mkstemp: Callable[..., Any] = tempfile.mkstemp

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if inside(self) and not self.is_dir():
            raise OSError(code, os.strerror(code), str(self))
        real_mkdir(self, *args, **kwargs)

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
        if dir is not None and inside(dir):
            raise OSError(code, os.strerror(code), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize(
    ("code", "reason"), [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission")]
)
def test_unwritable_runs_directory_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main, code: int, reason: str
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    refuse_writes_under(monkeypatch, runs, code)
    status, _, err = main(["train", *TWO_EPOCHS, "--runs", str(runs)])
    line = one_line_error(status, err)
    assert f"cannot write in {runs} ({reason}" in line
    assert line.endswith("choose another --runs/--out")
    assert not list(runs.iterdir())


def test_out_naming_a_file_is_one_line_and_the_file_is_untouched(
    tmp_path: Path, main: Main
) -> None:
    out = tmp_path / "x"
    out.write_text("notes")
    line = one_line_error(*main(["train", *TWO_EPOCHS, "--out", str(out)])[::2])
    assert line == f"error: --out {out} is a file, not a directory: give a new or empty directory"
    line = one_line_error(*main(["train", *TWO_EPOCHS, "--out", str(out / "run")])[::2])
    assert f"{out} (in --out {out / 'run'}) is a file, not a directory" in line
    line = one_line_error(*main(["train", *TWO_EPOCHS, "--runs", str(out)])[::2])
    assert f"--runs {out} is a file, not a directory: give a directory" in line
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "grid": {"lr": [0.1]}}))
    line = one_line_error(*main(["sweep", str(sweep), "--out", str(out)])[::2])
    assert f"--out {out} is a file, not a directory" in line
    assert out.read_text() == "notes"


def test_resume_in_a_read_only_run_directory_is_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main
) -> None:
    run = tmp_path / "run"
    with monkeypatch.context() as patch:  # an interrupted run: its second checkpoint failed
        torch_save_on_full_disk(patch)
        assert main(["train", *TWO_EPOCHS, "--out", str(run)])[0] == 2
    before = snapshot(run)
    refuse_writes_under(monkeypatch, run)
    line = one_line_error(*main(["run", "--resume", str(run), "--quiet"])[::2])
    assert line == (
        f"error: cannot write in {run} (read-only file system): make {run} writable, then "
        f"`insitu run --resume {run}` (or resume a writable copy of it)"
    )
    assert snapshot(run) == before


def test_any_other_os_error_is_one_line_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main
) -> None:
    from insitu.experiments import report

    def unreadable(folder: Path, out: Path | None) -> Path:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(folder / "metrics.csv"))

    monkeypatch.setattr(report, "write_report", unreadable)
    line = one_line_error(*main(["report", str(tmp_path)])[::2])
    assert line == f"error: {tmp_path / 'metrics.csv'}: Input/output error"


# -- 3. malformed YAML in --set ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "run", "spiking"])
@pytest.mark.parametrize("value", ["lr=[1,", "lr={", "hidden=[8"])
def test_malformed_set_value_is_one_line(
    tmp_path: Path, main: Main, command: str, value: str
) -> None:
    args = [command]
    if command == "run":
        config = tmp_path / "c.yaml"
        config.write_text("epochs: 1\n")
        args.append(str(config))
    line = one_line_error(*main([*args, "--set", value, "--out", str(tmp_path / "o")])[::2])
    assert line.startswith(f"error: --set {value!r}: the value is not valid YAML (")
    assert "at character" in line
    assert line.endswith("e.g. --set lr=0.05 or --set 'hidden=[64,32]'")
    assert not (tmp_path / "o").exists()


# -- 4. a Ray address that never answers -------------------------------------------------------


def tiny_sweep(tmp_path: Path, lrs: list[float], limit_train: int = 60, **base: Any) -> Path:
    sweep = tmp_path / "sweep.yaml"
    values = {"algorithm": "software", "hidden": [8], "epochs": 1, "instances": 1, **base}
    fixed = {"limit_train": limit_train, "limit_test": 30}
    sweep.write_text(
        yaml.safe_dump(
            {"name": "f", "base": values, "fixed": fixed, "grid": {"lr": lrs}, "seeds": [0]}
        )
    )
    return sweep


def test_ray_address_nobody_listens_at_fails_fast(tmp_path: Path, main: Main) -> None:
    sweep = tiny_sweep(tmp_path, [0.1])
    args = ["sweep", str(sweep), "--out", str(tmp_path / "o"), "--backend", "ray"]
    started = time.monotonic()
    code, _, err = main([*args, "--address", "127.0.0.1:1", "--connect-timeout", "2"])
    assert time.monotonic() - started < 20  # ray's import is most of it; ray.init is never run
    line = one_line_error(code, err)
    assert "cannot join the Ray cluster at --address 127.0.0.1:1: nothing answers there" in line
    code, _, err = main([*args, "--address", "auto", "--connect-timeout", "0"])
    assert "--connect-timeout must be > 0 seconds, got 0" in one_line_error(code, err)


def test_ray_init_that_hangs_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: Main
) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: time.sleep(60))  # a cluster that stalls
    sweep = tiny_sweep(tmp_path, [0.1])
    started = time.monotonic()
    args = ["sweep", str(sweep), "--out", str(tmp_path / "o"), "--backend", "ray"]
    code, _, err = main([*args, "--address", "auto", "--connect-timeout", "1"])
    assert time.monotonic() - started < 10
    line = one_line_error(code, err)
    assert "cannot join the Ray cluster at --address auto: no answer within 1 s" in line


def test_probe_passes_an_address_that_listens() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        ray_cluster.probe_address(f"127.0.0.1:{port}", 2.0)
        ray_cluster.probe_address(f"ray://127.0.0.1:{port}", 2.0)
    ray_cluster.probe_address("auto", 2.0)  # left to ray.init and its time limit


# -- 5. a killed sweep leaves no workers behind ------------------------------------------------


def pool_workers(parent: int) -> list[int]:
    """Live children of ``parent`` that are multiprocessing workers (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killed_sweep_leaves_no_workers_and_runs_again_to_the_end(
    tmp_path: Path, main: Main
) -> None:
    # Trials of a few seconds each, so the kill lands while both workers train.
    lrs = [0.1, 0.2, 0.3]
    sweep = tiny_sweep(tmp_path, lrs, 1000, algorithm="analog-sgd", epochs=3, hidden=[16])
    out = tmp_path / "out"
    script = Path(sys.executable).parent / "insitu"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(script), "sweep", str(sweep), "--out", str(out), "--workers", "2", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 or not list(out.glob("trial-*/config.yaml")):
            assert proc.poll() is None, "the sweep ended before its workers were seen"
            assert time.monotonic() < deadline, "no two busy workers within 120 s"
            time.sleep(0.05)
            workers = pool_workers(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their sweep"

    code, _, err = main(["sweep", str(sweep), "--out", str(out), "--workers", "2"])
    assert code == 0, err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["finished"] * len(lrs), [r["error"] for r in rows]


# A worker watching its parent by the portable route (as where prctl is missing).
WATCHING_WORKER = """
import sys, time
from insitu.experiments.sweep_runner import die_with_parent
sys.platform = "darwin"  # after the imports, which look at it too
die_with_parent()
print("watching", flush=True)
time.sleep(120)
"""
# A parent that starts such a worker, says its pid, then waits to be killed.
PARENT = f"""
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", {WATCHING_WORKER!r}], stdout=subprocess.PIPE)
assert worker.stdout is not None and worker.stdout.readline() == b"watching\\n"
print(worker.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_worker_without_prctl_ends_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert alive(worker)
        parent.send_signal(signal.SIGKILL)
    finally:
        parent.wait(timeout=60)
    deadline = time.monotonic() + 10 * sweep_runner.PARENT_POLL_S
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(worker):
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its parent")
