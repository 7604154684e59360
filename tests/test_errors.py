"""The shared argument checks of insitu.errors."""

from __future__ import annotations

import numpy as np
import pytest

from insitu.errors import ConfigError, check_count


def test_check_count_takes_python_and_numpy_integers_in_range() -> None:
    check_count("time_steps", 3, 1)
    check_count("time_steps", np.int64(3), 1, 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "time_steps = True must be an integer"),
        (2.0, "time_steps = 2.0 must be an integer"),
        ("2", "time_steps = '2' must be an integer"),
        (0, r"time_steps = 0 is out of range; expected a value in \[1, 3\]"),
        (np.int32(4), r"time_steps = 4 is out of range; expected a value in \[1, 3\]"),
    ],
)
def test_check_count_names_the_bad_value(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}$"):
        check_count("time_steps", value, 1, 3)  # type: ignore[arg-type]
