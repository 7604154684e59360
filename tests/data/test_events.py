"""Binning event lists into spike tensors, and channel jitter (insitu.data.events)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insitu.data.events import events_to_frame_batch, events_to_frames, jitter_channels
from insitu.errors import ConfigError

# --- events ----------------------------------------------------------------------------------


def test_events_land_in_floor_bins_and_channels() -> None:
    times = np.array([0.0, 0.0125, 0.0299, 0.0301, 0.0999, 0.1, 0.5])
    units = np.array([0, 3, 1, 1, 2, 0, 3])
    frames = events_to_frames(times, units, n_units=4, dt=0.01, time_steps=10)
    expected = torch.zeros(10, 4)
    for t, u in [(0, 0), (1, 3), (2, 1), (3, 1), (9, 2)]:  # 0.1 and 0.5 lie past the window
        expected[t, u] = 1.0
    assert torch.equal(frames, expected)


def test_integer_times_bin_exactly_and_events_merge() -> None:
    t_us = np.array([0, 4999, 5000, 5001, 5002, 9999, 10000], dtype=np.int64)
    units = np.array([1, 1, 1, 1, 1, 0, 0])
    frames = events_to_frames(t_us, units, n_units=2, dt=5000, time_steps=2, dtype=torch.bool)
    assert frames.dtype == torch.bool
    assert frames.tolist() == [[False, True], [True, True]]


def test_event_batch_keeps_samples_apart() -> None:
    out = events_to_frame_batch(
        [0, 1, 1], [0.5, 1.5, 2.5], [2, 0, 2], n_samples=3, n_units=3, dt=1.0, time_steps=3
    )
    assert out.shape == (3, 3, 3)
    assert out.nonzero().tolist() == [[0, 0, 2], [1, 1, 0], [1, 2, 2]]


@pytest.mark.parametrize(
    ("times", "units", "match"),
    [
        ([0.1], [4], r"\[0, 4\)"),
        ([0.1], [-1], r"\[0, 4\)"),
        ([math.nan], [0], "NaN"),
        ([0.1, 0.2], [0], "equal lengths"),
        ([0.1], [0.5], "integers"),
    ],
)
def test_events_reject_bad_input(times: list[float], units: list[float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        events_to_frames(np.array(times), np.array(units), n_units=4, dt=0.1, time_steps=5)


def test_jitter_channels_moves_spikes_only_across_channels() -> None:
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(6, 30, 40, generator=g) < 0.05).float()
    jittered = jitter_channels(spikes, 2.0, generator=torch.Generator().manual_seed(1))
    again = jitter_channels(spikes, 2.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(jittered, again)
    assert not torch.equal(jittered, spikes)
    assert set(jittered.unique().tolist()) <= {0.0, 1.0}
    # A step of a sample that had no spikes still has none; counts never grow.
    per_step, per_step_j = spikes.sum(dim=2), jittered.sum(dim=2)
    assert (per_step_j[per_step == 0] == 0).all()
    assert (per_step_j <= per_step).all()
    assert torch.equal(jitter_channels(spikes, 0.0, generator=torch.Generator()), spikes)
    assert jitter_channels(spikes.bool(), 1.0, generator=g).dtype == torch.bool
