"""Shared checks of the insitu.nn tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from insitu.errors import ConfigError


@pytest.fixture
def one_line_config_error() -> Callable[[Callable[[], object], str], None]:
    """A check that calling ``make`` raises a one-line ConfigError matching ``words``."""

    def check(make: Callable[[], object], words: str) -> None:
        with pytest.raises(ConfigError, match=words) as err:
            make()
        assert "\n" not in str(err.value)

    return check
