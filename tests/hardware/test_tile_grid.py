"""Layers larger than one array: the split, reads and updates array by array, each array's own
periphery, compound cells per array, the chip protocol and checkpoints on a grid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from insitu.algorithms import make_trainer
from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.experiments.config import make_config
from insitu.hardware import (
    IDEAL_PERIPHERY,
    CellKind,
    CellParams,
    ChipConfig,
    Event,
    Periphery,
    Tile,
    TileConfig,
    TileGrid,
    UpdateMode,
    UpdateParams,
    inspection,
    make_tile,
)
from insitu.hardware.cells import TransferCell
from insitu.hardware.chip import CrossbarChip
from insitu.hardware.tile_grid import block_bounds
from insitu.nn import AnalogLinear, InSituSGD

EXACT = get_device("ideal").replace(dw_min=2.0**-10)
COUNT = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)


def layer(config: TileConfig, n_in: int = 7, n_out: int = 5, seed: int = 0) -> Any:
    return make_tile(
        n_in, n_out, config, instances=2, generator=torch.Generator().manual_seed(seed)
    )


def test_blocks_are_as_even_as_possible() -> None:
    assert block_bounds(785, 512) == [(0, 393), (393, 785)]  # aihwkit's 392 + 393 columns
    assert block_bounds(10, 3) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert block_bounds(512, 512) == [(0, 512)]
    assert block_bounds(785, None) == [(0, 785)]


def test_a_layer_within_one_array_is_one_tile() -> None:
    assert isinstance(layer(TileConfig(EXACT, max_inputs=7, max_outputs=5)), Tile)
    grid = layer(TileConfig(EXACT, max_inputs=3, max_outputs=2))
    assert isinstance(grid, TileGrid)
    assert [len(row) for row in grid.blocks] == [3, 3, 3]  # 5 outputs in 3 blocks, 7 inputs in 3
    assert grid.n_devices == layer(TileConfig(EXACT)).n_devices


def test_noise_free_grid_reads_and_updates_as_one_array() -> None:
    """Exact devices, ideal periphery, count updates: a grid is the same layer as one array."""
    target = torch.randint(-40, 40, (2, 5, 7)).float() * 2 * EXACT.dw_min
    whole = layer(TileConfig(EXACT, IDEAL_PERIPHERY, COUNT))
    grid = layer(TileConfig(EXACT, IDEAL_PERIPHERY, COUNT, max_inputs=3, max_outputs=2))
    for t in (whole, grid):
        t.program(target, tolerance=1e-6)
    assert torch.equal(inspection.true_weights(grid), inspection.true_weights(whole))
    x, d = torch.rand(4, 7), torch.randn(2, 4, 5)
    assert torch.allclose(grid.read(x), whole.read(x), atol=1e-5)
    assert torch.allclose(grid.read_transposed(d), whole.read_transposed(d), atol=1e-5)
    # Whole-step wants (integer x d, lr one step): count updates round nothing at random.
    xi, di = torch.randint(0, 3, (4, 7)).float(), torch.randint(-2, 3, (2, 4, 5)).float()
    for t in (whole, grid):
        t.update(xi, di, 2 * EXACT.dw_min)
    assert torch.equal(inspection.true_weights(grid), inspection.true_weights(whole))
    assert torch.equal(inspection.pulse_counts(grid), inspection.pulse_counts(whole))


def test_every_array_adds_its_own_output_noise() -> None:
    """Zero weights, noise only: an output summed over k arrays' ADCs has k times the variance
    of one array's."""
    noisy = Periphery(dac_bits=None, adc_bits=None, output_noise=0.1, noise_management=False)
    config = TileConfig(EXACT, noisy, pair="reference")
    whole = make_tile(64, 4, config, instances=1, generator=torch.Generator().manual_seed(1))
    grid = make_tile(
        64, 4, TileConfig(EXACT, noisy, pair="reference", max_inputs=16),
        instances=1, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    x = torch.ones(4000, 64)
    ratio = grid.read(x).var() / whole.read(x).var()
    assert 3.6 < float(ratio) < 4.4  # four input blocks


def test_each_array_of_a_tiki_taka_grid_transfers_its_own_column() -> None:
    params = CellParams(CellKind.TIKI_TAKA, transfer_every=1)
    grid = layer(TileConfig(EXACT, IDEAL_PERIPHERY, COUNT, cell=params, max_inputs=4))
    assert [len(row) for row in grid.blocks] == [2]
    before = grid.log[Event.UPDATE]
    grid.update(torch.rand(5, 7), torch.randn(5, 5), 0.01)  # 5 samples: 5 transfers per array
    # Each array reads its own columns in turn: 5 reads over its 4 (3) columns, next 1 (2).
    nexts = []
    for blk in grid.blocks[0]:
        assert isinstance(blk, TransferCell)
        nexts.append(blk.state_dict()["counters"]["next"])
    assert nexts == [1, 2]
    assert set(inspection.cell_weights(grid)) == {"fast", "slow"}
    assert inspection.cell_weights(grid)["slow"].shape == (2, 5, 7)
    assert grid.log[Event.UPDATE] > before


def test_cell_weights_of_a_grid_of_plain_tiles_is_refused() -> None:
    with pytest.raises(TypeError, match="plain tiles"):
        inspection.cell_weights(layer(TileConfig(EXACT, max_inputs=3)))


def test_grid_program_target_of_the_wrong_shape_is_named() -> None:
    grid = layer(TileConfig(EXACT, max_inputs=3))
    with pytest.raises(ValueError, match=r"need \(2, 5, 7\) or \(5, 7\)"):
        grid.program(torch.zeros(5, 6))


def test_array_size_must_be_a_positive_whole_number() -> None:
    with pytest.raises(ConfigError, match="max_inputs = 0"):
        TileConfig(EXACT, max_inputs=0)
    with pytest.raises(ConfigError, match=r"max_outputs = 2\.5"):
        TileConfig(EXACT, max_outputs=2.5)  # type: ignore[arg-type]


def test_config_sets_the_array_size() -> None:
    tile = make_config({"max_inputs": 32, "max_outputs": 16}).chip_config(64, 10).tile
    assert (tile.max_inputs, tile.max_outputs) == (32, 16)
    with pytest.raises(ValueError, match="max_inputs"):
        make_config({"max_inputs": 0})


def grid_chip(kind: CellKind) -> ChipConfig:
    params = CellParams(kind, transfer_every=2, columns=3, chop_prob=0.3)
    tile = TileConfig(get_device("reram-taox"), cell=params, max_inputs=40, max_outputs=6)
    return ChipConfig((64, 8, 10), tile)


@pytest.mark.parametrize("kind", [CellKind.SINGLE, CellKind.TTV2, CellKind.MIXED_PRECISION])
def test_training_on_a_grid_never_measures_or_peeks(
    kind: CellKind, train_sealed: Callable[[Any], None]
) -> None:
    trainer = make_trainer("analog-sgd", grid_chip(kind), instances=2, seed=1, lr=0.1)
    assert all(isinstance(t, TileGrid) for t in trainer.chip.tiles)
    train_sealed(trainer)


@pytest.mark.parametrize("kind", [CellKind.SINGLE, CellKind.TIKI_TAKA])
def test_resume_on_a_grid_is_bit_identical(
    kind: CellKind, resume_pair: Callable[..., tuple[Any, Any]]
) -> None:
    straight, resumed = resume_pair(
        lambda seed: make_trainer("analog-sgd", grid_chip(kind), instances=2, seed=seed, lr=0.1)
    )
    for a, b in zip(straight.chip.tiles, resumed.chip.tiles, strict=True):
        assert torch.equal(inspection.true_weights(a), inspection.true_weights(b))


def test_over_range_flags_each_array_against_its_own_full_scale() -> None:
    """ADC full scale 1 per unit of the largest input (noise management): array 0 (inputs 0-2,
    weights 1, inputs 0.5) reads 1.5 against its full scale 0.5 and saturates; array 1 (input
    4, the bias, weights 0) reads 0. The whole input's full scale (4) would hide it."""
    periphery = Periphery(None, None, output_bound=1.0, output_noise=0.0)
    target = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    x = torch.tensor([[0.5, 0.5, 0.5, 4.0, 0.0]])
    flags = []
    for max_inputs in (3, None):
        chip = CrossbarChip(
            ChipConfig((5, 1), TileConfig(EXACT, periphery, COUNT, max_inputs=max_inputs))
        )
        chip.tiles[0].program(target, tolerance=1e-6)
        if max_inputs:  # a grid judges its last read's partial outputs: there must be one
            with pytest.raises(ValueError, match="read these inputs first"):
                chip.over_range(0, x, torch.zeros(1, 1, 1))
        y = chip.read(0, x)
        flags.append(bool(chip.over_range(0, x, y)))
        assert torch.allclose(y, torch.tensor([[[0.5 if max_inputs else 1.5]]]))
    assert flags == [True, False]  # split: array 0's ADC saturated; one array: within 4


def test_an_nn_layer_on_a_grid_learns() -> None:
    torch.manual_seed(0)
    layer = AnalogLinear(40, 3, device=TileConfig(get_device("ecram-organic"), max_inputs=16))
    assert isinstance(layer.tile, TileGrid)
    opt = InSituSGD(layer.parameters(), lr=0.1)
    x, target = torch.rand(8, 40), torch.zeros(1, 8, 3)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((layer(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
