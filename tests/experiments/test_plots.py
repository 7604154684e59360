"""Figures: what a reader sees (panels, reference lines, ticks, legends), read off the Figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from insitu.experiments.energy import (
    breakdown_figure,
    breakdown_plot,
    comparison_sentence,
    ratio_in_words,
)
from insitu.experiments.plots import learning_curve, learning_curve_figure
from insitu.experiments.sweep import make_sweep
from insitu.experiments.sweep_results import geometric_grid, sweep_figure, sweep_plot

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


# -- the energy plot ---------------------------------------------------------------------------


def cost(joules: float | None, seconds: float | None) -> dict[str, Any]:
    by_kind = {}
    if joules is not None and seconds is not None:
        by_kind = {
            "device_pulse": {"count": 400.0, "joules": 0.8 * joules, "seconds": 0.0},
            "parallel_update": {"count": 2.0, "joules": 0.2 * joules, "seconds": seconds},
        }
    return {"joules": joules, "seconds": seconds, "by_kind": by_kind}


def energy_report(chip_j: float, chip_s: float, gpu_j: float, gpu_s: float) -> dict[str, Any]:
    return {
        "profile": "test-profile",
        "per_train_sample": cost(chip_j, chip_s),
        "per_inference": cost(chip_j / 10, chip_s / 10),
        "gpu": {
            "name": "NVIDIA H100 SXM (TF32 tensor cores, dense)",
            "per_train_sample": cost(gpu_j, gpu_s),
            "per_inference": cost(gpu_j / 3, gpu_s / 3),
        },
        "gpu_over_chip": {"train_energy": gpu_j / chip_j, "train_time": gpu_s / chip_s},
    }


def test_comparison_in_words() -> None:
    slow_lean = energy_report(chip_j=5e-9, chip_s=6.5e-6, gpu_j=1e-7, gpu_s=1.5e-10)
    assert comparison_sentence(slow_lean) == (
        "Per training sample the chip is 43,000x slower and uses 20x less energy "
        "than the NVIDIA H100 SXM"
    )
    fast_hungry = energy_report(chip_j=4e-7, chip_s=1e-10, gpu_j=1e-7, gpu_s=2.5e-10)
    assert comparison_sentence(fast_hungry) == (
        "Per training sample the chip is 2.5x faster and uses 4x more energy than the NVIDIA "
        "H100 SXM"
    )
    # Two significant digits, from the chip's side, either way round.
    assert ratio_in_words(35.2, "more", "less") == "35x less"
    assert ratio_in_words(1 / 1.19, "more", "less") == "1.2x more"
    assert ratio_in_words(1 / 1_150_883, "slower", "faster") == "1,200,000x slower"
    unpriced = {**slow_lean, "gpu_over_chip": {"train_energy": None, "train_time": None}}
    assert "no training cost" in comparison_sentence(unpriced)


def test_energy_plot_shows_the_gpu_as_bars_beside_the_chip(tmp_path: Path) -> None:
    report = energy_report(chip_j=5e-9, chip_s=6.5e-6, gpu_j=1e-7, gpu_s=1.5e-10)
    assert breakdown_plot(report, tmp_path / "e.png").read_bytes().startswith(PNG_MAGIC)
    fig = breakdown_figure(report)
    assert comparison_sentence(report) in fig.get_suptitle()
    top_energy, top_time, chip_vs_gpu_energy, chip_vs_gpu_time = fig.axes[:4]
    # The breakdown stacks the kinds to the chip's totals (train sample, then inference).
    tops = sorted(p.get_y() + p.get_height() for p in top_energy.patches)
    assert tops == pytest.approx([4e-10, 5e-10, 4e-9, 5e-9])
    assert max(p.get_y() + p.get_height() for p in top_time.patches) == pytest.approx(6.5e-6)
    for ax, key in ((chip_vs_gpu_energy, "joules"), (chip_vs_gpu_time, "seconds")):
        assert ax.get_yscale() == "log"  # the two differ by orders of magnitude
        heights = [p.get_height() for p in ax.patches]
        chip = [report["per_train_sample"][key], report["per_inference"][key]]
        gpu = [report["gpu"]["per_train_sample"][key], report["gpu"]["per_inference"][key]]
        assert heights == pytest.approx([chip[0], gpu[0], chip[1], gpu[1]])
        legend = ax.get_legend()
        assert legend is not None
        assert [t.get_text() for t in legend.get_texts()] == ["chip", "NVIDIA H100 SXM"]
        assert len(ax.texts) == 4  # every bar carries its value


# -- sweep plots -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "log"),
    [
        ([0.01, 0.03, 0.1, 0.3, 1.0], True),  # a geometric grid over two decades
        ([0.1, 0.2, 0.4, 0.8], True),  # ratio 2 within a decade
        ([0.05, 0.9], True),  # two values more than a decade apart
        ([0.1, 0.2, 0.3, 0.4], False),  # a linear grid
        ([100.0, 101.0, 102.0], False),  # constant ratio and constant step: linear
        ([0.1, 0.4], False),  # two values within a decade: nothing to tell
        ([0.0, 0.1, 1.0], False),  # zero has no place on a log axis
        ([-1.0, 1.0, 10.0, 100.0], False),
    ],
)
def test_log_axis_for_geometric_grids(values: list[float], log: bool) -> None:
    assert geometric_grid(values) is log


def trial(lr: float, seed: int, acc: float, std: float = 0.0) -> dict[str, Any]:
    return {"status": "finished", "lr": lr, "seed": seed, "test_acc_mean": acc, "test_acc_std": std}


def test_sweep_plot_error_bars_over_seeds_on_a_log_axis(tmp_path: Path) -> None:
    sweep = make_sweep({"grid": {"lr": [0.01, 0.1, 1.0]}, "seeds": [0, 1]})
    rows = [
        trial(0.01, 0, 0.50),
        trial(0.01, 1, 0.60),
        trial(0.1, 0, 0.80),
        trial(0.1, 1, 0.84),
        trial(1.0, 0, 0.30),
        {**trial(1.0, 1, 0.0), "status": "diverged"},  # left out
    ]
    assert sweep_plot(sweep, rows, "lr", tmp_path / "s.png").read_bytes().startswith(PNG_MAGIC)
    ax = sweep_figure(sweep, rows, "lr").axes[0]
    assert ax.get_xscale() == "log"
    (bars,) = ax.containers
    assert isinstance(bars, ErrorbarContainer)
    line, _, (ycol,) = bars.lines
    assert list(line.get_ydata()) == pytest.approx([0.55, 0.82, 0.30])
    half = [abs(seg[1][1] - seg[0][1]) / 2 for seg in ycol.get_segments()]
    assert half == pytest.approx([0.05, 0.02, 0.0])  # std over seeds; one seed: none
    assert bars.get_label() == "mean ± std over seeds"


def test_sweep_plot_with_one_seed_shows_the_spread_over_chips() -> None:
    sweep = make_sweep({"grid": {"lr": [0.1, 0.2, 0.3]}})
    rows = [trial(0.1, 0, 0.5, 0.04), trial(0.2, 0, 0.7, 0.03), trial(0.3, 0, 0.6, 0.05)]
    ax = sweep_figure(sweep, rows, "lr").axes[0]
    assert ax.get_xscale() == "linear"
    (bars,) = ax.containers
    assert isinstance(bars, ErrorbarContainer)
    _, _, (ycol,) = bars.lines
    half = [abs(seg[1][1] - seg[0][1]) / 2 for seg in ycol.get_segments()]
    assert half == pytest.approx([0.04, 0.03, 0.05])
    assert bars.get_label() == "mean ± std over chip instances"
