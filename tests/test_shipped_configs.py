"""Every config shipped in configs/ validates and builds its chip."""

from __future__ import annotations

from pathlib import Path

import pytest

from insitu.experiments import load_config
from insitu.experiments.config import read_config_file
from insitu.experiments.spiking_config import make_spiking_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_are_shipped() -> None:
    assert CONFIGS, "configs/ holds no YAML files"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_validates(path: Path) -> None:
    if read_config_file(path).get("kind") == "spiking":
        spiking = make_spiking_config(read_config_file(path))
        assert spiking.chip_config(256, 10).sizes[0] == 256
        return
    cfg = load_config(path)
    chip = cfg.chip_config(784, 10)
    assert chip.layers[0] == 784 and chip.layers[-1] == 10
