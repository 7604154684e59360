"""Figures: what a reader sees (panels, reference lines, ticks, legends), read off the Figure."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.collections import PolyCollection

from insitu.experiments.plots import learning_curve, learning_curve_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row(epoch: int, loss: float, test: float, train: float) -> dict[str, float]:
    return {
        "epoch": epoch,
        "loss_mean": loss,
        "loss_std": loss * 0.1,
        "train_acc_mean": train,
        "train_acc_std": 0.02,
        "test_acc_mean": test,
        "test_acc_std": 0.03,
    }


ROWS = [
    row(0, math.nan, 0.11, 0.10),  # the untrained network: no loss yet
    row(1, 1.9, 0.70, 0.71),
    row(2, 1.0, 0.85, 0.88),
    row(3, 0.7, 0.87, 0.90),
]


def test_learning_curve_has_accuracy_and_loss_panels(tmp_path: Path) -> None:
    path = learning_curve(ROWS, "t", tmp_path / "lc.png", chance=0.1, instances=4)
    assert path.read_bytes().startswith(PNG_MAGIC)
    fig = learning_curve_figure(ROWS, "t", chance=0.1, instances=4)
    acc, loss = fig.axes
    # Test and train accuracy start at the untrained epoch 0.
    test_line = acc.get_lines()[0]
    assert list(test_line.get_xdata()) == [0, 1, 2, 3]
    assert list(test_line.get_ydata()) == [0.11, 0.70, 0.85, 0.87]
    # The loss panel skips the NaN of epoch 0.
    (loss_line,) = loss.get_lines()
    assert list(loss_line.get_xdata()) == [1, 2, 3]
    assert all(math.isfinite(y) for y in loss_line.get_ydata())


def test_learning_curve_marks_chance_and_says_what_the_band_is() -> None:
    fig = learning_curve_figure(ROWS, "t", chance=1 / 9, instances=4)
    acc = fig.axes[0]
    chance = [ln for ln in acc.get_lines() if ln.get_label().startswith("chance")]
    assert len(chance) == 1
    assert list(chance[0].get_ydata()) == [1 / 9, 1 / 9]
    legend = acc.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert "± std over 4 chips" in labels
    assert {"test", "train"} <= set(labels)
    assert len([c for c in acc.collections if isinstance(c, PolyCollection)]) == 2  # two bands


def test_one_chip_has_no_band_and_no_chance_without_a_class_count() -> None:
    acc = learning_curve_figure(ROWS, "t", instances=1).axes[0]
    legend = acc.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["test", "train"]
    assert not [c for c in acc.collections if isinstance(c, PolyCollection)]


def test_epoch_ticks_are_whole_numbers() -> None:
    for rows in (ROWS, ROWS[:2], ROWS[:1]):
        fig = learning_curve_figure(rows, "t", chance=0.1, instances=2)
        fig.canvas.draw()  # ticks are chosen at drawing
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks, "no epoch ticks"
            assert all(float(t).is_integer() for t in ticks), ticks


def test_untrained_only_says_there_is_no_loss_yet() -> None:
    loss = learning_curve_figure(ROWS[:1], "t", chance=0.1, instances=2).axes[1]
    assert not loss.get_lines()
    assert [t.get_text() for t in loss.texts] == ["no training epoch yet"]
