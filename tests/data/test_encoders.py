"""Spike codes (latency, rate) and the SpikeDataset type."""

from __future__ import annotations

import math

import pytest
import torch

from insitu.data import (
    Dataset,
    SpikeDataset,
    latency_coded,
    latency_encode,
    latency_spike_times,
    rate_encode,
)
from insitu.errors import ConfigError


def spike_steps(spikes: torch.Tensor) -> list[int | None]:
    """The step of the single spike of each feature of sample 0 (None: silent)."""
    out: list[int | None] = []
    for f in range(spikes.shape[2]):
        steps = torch.nonzero(spikes[0, :, f]).flatten().tolist()
        assert len(steps) <= 1
        out.append(steps[0] if steps else None)
    return out


# --- latency code ----------------------------------------------------------------------------


def test_latency_spike_steps_follow_the_formula_on_hand_picked_values() -> None:
    x = torch.tensor([[1.0, 0.5, 0.3, 0.25, 0.2, 0.1, 0.0]])
    tau, threshold = 10.0, 0.2
    # tau * ln(x / (x - 0.2)): 2.23, 5.11, 10.99, 16.09; the rest never spike.
    assert [math.floor(tau * math.log(v / (v - threshold))) for v in (1.0, 0.5, 0.3, 0.25)] == [
        2,
        5,
        10,
        16,
    ]
    spikes = latency_encode(x, 20, tau, threshold)
    assert spikes.shape == (1, 20, 7) and spikes.dtype == torch.float32
    assert spike_steps(spikes) == [2, 5, 10, 16, None, None, None]
    # Shorter window: spikes at or after the last step are dropped, earlier ones unchanged.
    short = latency_encode(x, 10, tau, threshold)
    assert spike_steps(short) == [2, 5, None, None, None, None, None]
    times = latency_spike_times(x, tau, threshold)[0]
    for f in range(4):  # the float32 inputs as stored (0.3 is not exact in float32)
        v = float(x[0, f])
        assert times[f].item() == pytest.approx(tau * math.log(v / (v - threshold)), rel=1e-6)
    assert times[0].item() == pytest.approx(10.0 * math.log(1.25), rel=1e-6)
    assert torch.isinf(times[4:]).all()


def test_latency_at_most_one_spike_and_none_at_or_below_threshold() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 50, generator=g)
    x[:, :5] = 0.3  # exactly at the threshold
    threshold, tau, steps = 0.3, 4.0, 12
    spikes = latency_encode(x, steps, tau, threshold)
    counts = spikes.sum(dim=1)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert counts.max() <= 1
    assert (counts[x <= threshold] == 0).all()
    expected = (x > threshold) & (tau * torch.log(x / (x - threshold)) < steps)
    assert torch.equal(counts.bool(), expected)


def test_latency_brighter_inputs_spike_no_later() -> None:
    x = torch.linspace(0.21, 1.0, 80)[None, :]
    first = latency_encode(x, 1000, 25.0, 0.2).argmax(dim=1)[0]
    assert (first[1:] <= first[:-1]).all() and first[0] > first[-1]


@pytest.mark.parametrize(
    ("x", "kwargs", "match"),
    [
        (torch.full((2, 3), 1.5), {}, r"\[0, 1\]"),
        (torch.full((2, 3), -0.1), {}, r"\[0, 1\]"),
        (torch.full((2, 3), math.nan), {}, "NaN"),
        (torch.zeros(2, 3, dtype=torch.int64), {}, "floating"),
        (torch.zeros(3), {}, r"\(N, F\)"),
        (torch.zeros(2, 3), {"tau": 0.0}, "tau"),
        (torch.zeros(2, 3), {"tau": math.inf}, "tau"),
        (torch.zeros(2, 3), {"threshold": 1.0}, "threshold"),
        (torch.zeros(2, 3), {"threshold": -0.1}, "threshold"),
        (torch.zeros(2, 3), {"time_steps": 0}, "time_steps"),
        (torch.zeros(2, 3), {"time_steps": 2.5}, "time_steps"),
    ],
)
def test_latency_rejects_bad_arguments(
    x: torch.Tensor, kwargs: dict[str, float], match: str
) -> None:
    args: dict[str, float] = {"time_steps": 10, "tau": 5.0, "threshold": 0.2} | kwargs
    with pytest.raises(ConfigError, match=match):
        latency_encode(x, args["time_steps"], args["tau"], args["threshold"])  # type: ignore[arg-type]


# --- rate code -------------------------------------------------------------------------------


def test_rate_encode_empirical_rate_matches() -> None:
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]]).repeat(50, 1)
    max_rate, steps = 0.4, 400
    spikes = rate_encode(x, steps, max_rate, generator=torch.Generator().manual_seed(1))
    assert spikes.shape == (50, steps, 4) and spikes.dtype == torch.float32
    rate = spikes.mean(dim=(0, 1))
    expected = max_rate * x[0]
    n = 50 * steps
    sigma = torch.sqrt(expected * (1 - expected) / n)
    assert rate[0] == 0.0
    assert (torch.abs(rate - expected) <= 5 * sigma + 1e-12).all(), (rate, expected)


def test_rate_encode_is_reproducible_and_validates() -> None:
    x = torch.rand(3, 7, generator=torch.Generator().manual_seed(0))
    a = rate_encode(x, 20, 0.9, generator=torch.Generator().manual_seed(5))
    b = rate_encode(x, 20, 0.9, generator=torch.Generator().manual_seed(5))
    c = rate_encode(x, 20, 0.9, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ConfigError, match="max_rate"):
        rate_encode(x, 20, 1.5, generator=torch.Generator())
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        rate_encode(x * 3, 20, 0.5, generator=torch.Generator())


# --- SpikeDataset and latency_coded ----------------------------------------------------------


def tiny_image_dataset() -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 784, generator=g)
    y = torch.arange(6) % 3
    return Dataset("toy", x, y, x[:0], y[:0], x[:4], y[:4], 3, (28, 28))


def test_latency_coded_builds_a_spike_dataset() -> None:
    ds = latency_coded(tiny_image_dataset(), time_steps=25, tau=8.0, threshold=0.2, crop=2)
    assert ds.x_train.shape == (6, 25, 256) and ds.x_test.shape == (4, 25, 256)
    assert (ds.time_steps, ds.n_inputs, ds.input_shape) == (25, 256, (16, 16))
    assert ds.name == "toy-latency" and ds.dt_s is None and ds.duration_s is None
    assert ds.x_train.sum(dim=1).max() <= 1
    assert "time_steps=25" in repr(ds)
    compact = latency_coded(
        tiny_image_dataset(), time_steps=25, tau=8.0, threshold=0.2, crop=2, dtype=torch.bool
    )
    assert compact.x_train.dtype == torch.bool and torch.equal(compact.x_train.float(), ds.x_train)
    with pytest.raises(ConfigError, match="size"):
        latency_coded(tiny_image_dataset(), time_steps=5, tau=1.0, threshold=0.2, size=None, crop=2)


def make_spikes(**changes: object) -> SpikeDataset:
    fields: dict[str, object] = {
        "name": "t",
        "x_train": torch.zeros(4, 5, 6),
        "y_train": torch.zeros(4, dtype=torch.int64),
        "x_test": torch.zeros(2, 5, 6, dtype=torch.float32),
        "y_test": torch.ones(2, dtype=torch.int64),
        "n_classes": 2,
        "dt_s": 1e-3,
        "input_shape": (2, 3),
    } | changes
    return SpikeDataset(**fields)  # type: ignore[arg-type]


def test_spike_dataset_validates() -> None:
    ds = make_spikes()
    assert ds.duration_s == pytest.approx(5e-3)
    make_spikes(x_train=torch.zeros(4, 5, 6, dtype=torch.bool))  # bool is fine
    cases: list[tuple[dict[str, object], str]] = [
        ({"x_train": torch.zeros(4, 5, 7)}, "x_train"),
        ({"x_test": torch.zeros(2, 4, 6)}, "x_test"),
        ({"x_train": torch.zeros(4, 5, 6, dtype=torch.float64)}, "float32 or bool"),
        ({"x_train": torch.full((4, 5, 6), 0.5)}, "only 0 and 1"),
        ({"y_train": torch.zeros(3, dtype=torch.int64)}, "y_train"),
        ({"y_test": torch.full((2,), 2, dtype=torch.int64)}, "outside"),
        ({"dt_s": 0.0}, "dt_s"),
        ({"n_classes": 0}, "n_classes"),
    ]
    for change, match in cases:
        with pytest.raises(ConfigError, match=match):
            make_spikes(**change)
