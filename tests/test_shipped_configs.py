"""Every config and sweep shipped in configs/ validates (every trial of every sweep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from insitu.experiments import load_config
from insitu.experiments.config import make_spiking_config, read_config_file
from insitu.experiments.sweep import expand, read_sweep

ROOT = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(ROOT.glob("*.yaml"))
SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_configs_are_shipped() -> None:
    assert CONFIGS, "configs/ holds no YAML files"
    assert SWEEPS, "configs/sweeps/ holds no sweep files"
    names = {p.stem for p in CONFIGS}
    # One per paper reproduction and one per demo.
    assert {"progressive_paper", "activity_difference_braille", "demo_digits"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_validates(path: Path) -> None:
    if read_config_file(path).get("kind") == "spiking":
        spiking = make_spiking_config(read_config_file(path))
        assert spiking.chip_config(256, 10).sizes[0] == 256
        return
    cfg = load_config(path)
    chip = cfg.chip_config(784, 10)
    assert chip.layers[0] == 784 and chip.layers[-1] == 10


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_validates(path: Path) -> None:
    sweep, base = read_sweep(path)
    trials = expand(sweep, base)  # every trial's config is validated here
    assert len(trials) >= 2
    assert sweep.name == path.stem or path.stem.startswith(sweep.name)
    assert len({t.name for t in trials}) == len(trials)
