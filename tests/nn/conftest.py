"""Shared checks of the insitu.nn tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from insitu.errors import ConfigError
from insitu.hardware import Tile, inspection

# What an algorithm must never touch: the inspection hooks and the tile's own write and measure.
SEALED_HOOKS = ("true_weights", "conductances", "device_arrays", "pulse_counts")
SEALED_TILE = ("measure", "program", "pulse")


@pytest.fixture
def seal_chip(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make every way to read the true state of a tile, or to write it other than
    by the pulsed update, raise (the chip protocol); a test takes its own snapshots first."""

    def sealed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hidden state of the chip was read or written")

    def seal() -> None:
        for name in SEALED_HOOKS:
            monkeypatch.setattr(inspection, name, sealed)
        for name in SEALED_TILE:
            monkeypatch.setattr(Tile, name, sealed)

    return seal


@pytest.fixture
def one_line_config_error() -> Callable[[Callable[[], object], str], None]:
    """A check that calling ``make`` raises a one-line ConfigError matching ``words``."""

    def check(make: Callable[[], object], words: str) -> None:
        with pytest.raises(ConfigError, match=words) as err:
            make()
        assert "\n" not in str(err.value)

    return check
