"""Batched sequential updates equal rank-1 updates applied one after another."""

from __future__ import annotations

import torch

from insitu.devices import get_device
from insitu.hardware import Periphery, Tile, TileConfig, UpdateParams
from insitu.hardware.inspection import conductances, pulse_counts
from insitu.hardware.tile_update import TorchUpdate


def _tile(sequential: bool, pair: str = "differential") -> Tile:
    # Noise-free, strongly nonlinear and asymmetric: the order of pulses matters.
    device = get_device("reram-taox").replace(
        dw_min_std=0.0, read_noise=0.0, stuck_low=0.0, stuck_high=0.0
    )
    config = TileConfig(
        device,
        periphery=Periphery(noise_management=False, output_noise=0.0),
        update=UpdateParams(mode="count", sequential=sequential, max_pulses=50),
        pair=pair,
    )
    return Tile(6, 4, config, instances=3, generator=torch.Generator().manual_seed(3))


def _integer_batch(tile: Tile, samples: int = 7) -> tuple[torch.Tensor, torch.Tensor, float]:
    # Wanted counts -lr*d*x/step are whole numbers, so rounding draws no randomness.
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-2, 3, (3, samples, 6), generator=gen).float()
    d = torch.randint(-2, 3, (3, samples, 4), generator=gen).float()
    return x, d, tile.config.weight_step


def test_sequential_update_equals_one_sample_at_a_time() -> None:
    for pair in ("differential", "reference"):
        batched, stepwise = _tile(True, pair), _tile(True, pair)
        x, d, lr = _integer_batch(batched)
        batched.update(x, d, lr)
        for b in range(x.shape[1]):
            stepwise.update(x[:, b : b + 1], d[:, b : b + 1], lr)
        for a, b in zip(conductances(batched), conductances(stepwise), strict=True):
            torch.testing.assert_close(a, b)
        assert torch.equal(pulse_counts(batched), pulse_counts(stepwise))


def test_aggregated_update_differs_when_signs_alternate() -> None:
    sequential, aggregated = _tile(True), _tile(False)
    x, d, lr = _integer_batch(sequential)
    sequential.update(x, d, lr)
    aggregated.update(x, d, lr)
    # Opposite pulses cancel before reaching the device in aggregated mode: fewer pulses.
    assert pulse_counts(aggregated).sum() < pulse_counts(sequential).sum()
    diff = (conductances(sequential)[0] - conductances(aggregated)[0]).abs().max()
    assert diff > 1e-3


def test_manhattan_pulses_once_where_thresholded_lines_coincide() -> None:
    config = TileConfig(
        get_device("ideal"),
        periphery=Periphery(noise_management=False, output_noise=0.0),
        update=UpdateParams(mode="manhattan", threshold=0.5),
    )
    tile = Tile(4, 3, config, instances=1, generator=torch.Generator().manual_seed(0))
    before = conductances(tile)[0] - conductances(tile)[1]
    x = torch.tensor([[1.0, -0.8, 0.2, 0.0]])  # columns 0 and 1 pass the threshold
    d = torch.tensor([[[0.1, -0.04, 0.02]]])  # only row 0 passes
    tile.update(x, d, lr=123.0)  # the step ignores lr
    change = (conductances(tile)[0] - conductances(tile)[1] - before)[0]
    step = config.weight_step
    expected = torch.zeros(3, 4)
    expected[0, 0], expected[0, 1] = -step, step  # -sign(d) * sign(x)
    torch.testing.assert_close(change, expected)


def test_trains_that_never_coincide_change_nothing() -> None:
    tile = _tile(True)
    before = conductances(tile)
    # Two slots: the column fires only in slot 0, the row only in slot 1.
    sx = torch.zeros(3, 1, 2, 6)
    sd = torch.zeros(3, 1, 2, 4)
    sx[:, 0, 0, 2] = 1.0
    sd[:, 0, 1, 1] = -1.0
    TorchUpdate(tile).apply_coincidences(sx, sd, sequential=True)
    for a, b in zip(before, conductances(tile), strict=True):
        assert torch.equal(a, b)
    assert pulse_counts(tile).sum() == 0
