"""Fixtures shared by the weight-cell and tile-grid tests: digits, training with every window
onto true conductances sealed, and a resume from a checkpoint beside a straight run."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch

from insitu.data import Dataset, load_dataset
from insitu.hardware import Event, Tile, inspection

INSPECTION = ("true_weights", "conductances", "device_arrays", "pulse_counts", "cell_weights")


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


def _train(t: Any, digits: Dataset, start: int, stop: int) -> list[torch.Tensor]:
    xs, ys = digits.x_train, digits.y_train
    return [t.train_batch(xs[b : b + 10], ys[b : b + 10]) for b in range(start, stop, 10)]


@pytest.fixture
def train_sealed(digits: Dataset, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    """Train 60 samples with the inspection hook, device measurement and write-verify sealed;
    checks that no device was read and pulses were applied."""

    def run(trainer: Any) -> None:
        before = trainer.log.counts()

        def sealed(*args: object, **kwargs: object) -> None:
            raise AssertionError("a true conductance was read, or a device measured")

        for name in INSPECTION:
            monkeypatch.setattr(inspection, name, sealed)
        monkeypatch.setattr(Tile, "measure", sealed)
        monkeypatch.setattr(Tile, "program", sealed)
        _train(trainer, digits, 0, 60)
        after = trainer.log.counts()
        assert after[Event.DEVICE_READ] == before[Event.DEVICE_READ]
        assert after[Event.PULSE] > before[Event.PULSE]

    return run


@pytest.fixture
def resume_pair(digits: Dataset) -> Callable[[Callable[[int], Any]], tuple[Any, Any]]:
    """``make(seed)`` trained straight over 60 samples, and trained 30, checkpointed, trained
    20 more (thrown away), then resumed from the checkpoint in ``make(99)`` to 60: checks the
    losses match; returns (straight, resumed)."""

    def run(make: Callable[[int], Any]) -> tuple[Any, Any]:
        straight = make(5)
        losses = _train(straight, digits, 0, 60)
        first = make(5)
        resumed_losses = _train(first, digits, 0, 30)
        buf = io.BytesIO()
        torch.save(first.state_dict(), buf)
        buf.seek(0)
        saved = torch.load(buf, weights_only=True)
        _train(first, digits, 30, 50)  # thrown away
        resumed = make(99)
        resumed.load_state_dict(saved)
        resumed_losses += _train(resumed, digits, 30, 60)
        assert all(torch.equal(a, b) for a, b in zip(losses, resumed_losses, strict=True))
        assert straight.log.counts() == resumed.log.counts()
        return straight, resumed

    return run
