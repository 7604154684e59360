"""The tile design of an analog layer: presets by name, hardware defaults, bad options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from torch import nn

from insitu.devices import get_device
from insitu.hardware import IDEAL_PERIPHERY, PairMode, TileConfig, UpdateMode, UpdateParams
from insitu.nn import AnalogLinear, convert, tile_config


def test_a_preset_name_gets_the_hardware_defaults() -> None:
    assert tile_config("ecram-liwo3") == TileConfig(get_device("ecram-liwo3"))
    assert tile_config() == TileConfig(get_device("ecram-organic"))


def test_options_override_only_what_they_name() -> None:
    update = UpdateParams(mode=UpdateMode.COUNT)
    cfg = tile_config(
        "pcm", periphery=IDEAL_PERIPHERY, update=update, pair="reference", weight_scale=2.0
    )
    assert cfg == TileConfig(get_device("pcm"), IDEAL_PERIPHERY, update, PairMode.REFERENCE, 2.0)


def test_a_whole_tile_config_passes_through() -> None:
    cfg = TileConfig(get_device("ideal"), IDEAL_PERIPHERY)
    assert tile_config(cfg) is cfg


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"device": "ecram"}, "valid device presets"),
        ({"device": 3}, "need a preset name"),
        ({"device": "pcm", "pair": "triple"}, "pair = 'triple'; valid: differential, reference"),
        ({"device": "pcm", "update": "count"}, "need an insitu.hardware.UpdateParams"),
        ({"device": "pcm", "periphery": {}}, "need an insitu.hardware.Periphery"),
        ({"device": "pcm", "weight_scale": -1.0}, "weight_scale = -1.0 is out of range"),
        (
            {"device": TileConfig(get_device("pcm")), "weight_scale": 2.0},
            "set weight_scale in it",
        ),
    ],
)
def test_bad_options_say_what_is_wrong(
    kwargs: dict[str, Any], words: str, one_line_config_error: Callable[..., None]
) -> None:
    one_line_config_error(lambda: tile_config(**kwargs), words)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: AnalogLinear(2, 2, devise="pcm"),
            "AnalogLinear got unknown option.s. devise; valid: device",
        ),
        (lambda: convert(nn.Linear(2, 2), instance=2), "convert got unknown option.s. instance;"),
        (lambda: AnalogLinear(2, 2, instances=1.5), "instances = 1.5; need a whole number >= 1"),
        (lambda: convert(nn.Linear(2, 2), seed=True), "seed = True; need a whole number >= 0"),
    ],
)
def test_layers_and_convert_check_their_options(
    make: Callable[[], object], words: str, one_line_config_error: Callable[..., None]
) -> None:
    one_line_config_error(make, words)
