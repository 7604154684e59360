"""The examples a newcomer copies from run, with tiny settings, and learn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("script", "flags", "least"),
    [
        ("custom_mlp.py", ["--epochs", "3", "--samples", "300"], 0.5),  # chance: 1/3
        (
            "cnn_digits.py",
            ["--epochs", "3", "--limit-train", "400", "--limit-test", "200", "--lr", "0.2"],
            0.3,  # chance: 0.1
        ),
        (
            "cnn_digits.py",
            [
                "--epochs",
                "3",
                "--limit-train",
                "400",
                "--limit-test",
                "200",
                "--rule",
                "progressive",
            ],
            0.3,
        ),
        ("progressive_custom.py", ["--epochs", "3", "--limit-train", "400"], 0.5),  # chance: 0.1
        ("own_dataset.py", ["--epochs", "5", "--runs", "{tmp}"], 0.5),  # chance: 0.2
        (
            "conv_spiking_in_the_loop.py",
            ["--epochs", "3", "--limit-train", "400", "--limit-test", "200"],
            0.3,  # chance: 0.1; a convolution feeding a chip with 30 % mismatch, in the loop
        ),
    ],
)
def test_an_example_runs_and_learns(
    script: str, flags: list[str], least: float, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tests share the machine's cores
    flags = [f.format(tmp=tmp_path) for f in flags]  # where an example writes its runs
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *flags, "--instances", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = re.findall(r"test accuracy per chip: ([\d. ]+)", done.stdout)[-1]
    accuracy = [float(a) for a in last.split()]
    assert len(accuracy) == 2
    assert min(accuracy) > least, done.stdout
