"""Compound weight cells: transfers, buffers, choppers and mixed precision checked by hand on
tiny noise-free tiles; the chip protocol inside the cells; checkpoints; configs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

import insitu.hardware
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
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
    inspection,
    make_tile,
)
from insitu.hardware.cells import (
    MixedPrecisionCell,
    RefreshCell,
    ResidualCell,
    TransferCell,
    WeightArray,
)
from insitu.hardware.pair_refresh import write_pairs
from insitu.nn import AnalogLinear

# Steps of 2**-10 on [0, 2]: every conductance and weight below is exact in float32.
EXACT = get_device("ideal").replace(dw_min=2.0**-10)
STEP = 2 * EXACT.dw_min  # one coincidence moves both devices of the pair
COMPOUND = [k for k in CellKind if k is not CellKind.SINGLE]


def cell(kind: str, in_features: int = 3, out_features: int = 2, **params: Any) -> Any:
    """A cell on exact devices and ideal periphery with deterministic count updates."""
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)
    config = TileConfig(EXACT, IDEAL_PERIPHERY, update, cell=CellParams(kind, **params))  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    return make_tile(in_features, out_features, config, instances=2, generator=g)


def steps(counts: list[list[int]]) -> Tensor:
    """Weights of whole steps, the same on both instances: (2, out, in)."""
    return STEP * torch.tensor(counts, dtype=torch.float32).expand(2, -1, -1)


def set_fast(c: TransferCell, counts: list[list[int]]) -> None:
    c.fast.pulse(torch.tensor(counts, dtype=torch.float32).expand(2, -1, -1))


# -- transfers by hand ---------------------------------------------------------------------------


def test_tiki_taka_writes_the_read_columns_of_a_into_c() -> None:
    c = cell("tiki-taka", transfer_lr=0.5, transfer_every=10**6)
    assert isinstance(c, TransferCell)
    set_fast(c, [[4, -6, 2], [8, 0, -10]])
    before = c.log.counts()
    c.transfer(torch.tensor([0, 2]))
    w = inspection.cell_weights(c)
    assert torch.equal(w["slow"], steps([[2, 0, 1], [4, 0, -5]]))
    assert torch.equal(w["fast"], steps([[4, -6, 2], [8, 0, -10]]))  # A is not reset
    after = c.log.counts()
    # Two one-hot vectors read through A on two instances; C: 4 + 5 + 1 pulses per instance.
    assert after[Event.ARRAY_READ] - before.get(Event.ARRAY_READ, 0) == 4
    assert after[Event.ADC] - before.get(Event.ADC, 0) == 4 * 2
    assert after[Event.PULSE] - before[Event.PULSE] == 2 * 2 * (2 + 4 + 1 + 5)


def test_ttv2_buffer_keeps_the_remainder_and_pulses_whole_steps() -> None:
    c = cell("ttv2", in_features=2, transfer_lr=0.3, transfer_every=10**6)
    set_fast(c, [[3, 0], [-1, 0]])
    col = torch.tensor([0])
    # H of weight (0, 0) gains 0.9 steps per read, (1, 0) loses 0.3: pulses at whole steps.
    expected_c = [(0, 0), (1, 0), (2, 0), (3, -1)]
    expected_h = [(0.9, -0.3), (0.8, -0.6), (0.7, -0.9), (0.6, -0.2)]
    for want_c, want_h in zip(expected_c, expected_h, strict=True):
        c.transfer(col)
        want = steps([[want_c[0]], [want_c[1]]])[:, :, 0]
        assert torch.equal(inspection.cell_weights(c)["slow"][:, :, 0], want)
        h = c.buffer[:, :, 0] / STEP
        torch.testing.assert_close(h, torch.tensor([want_h, want_h]), rtol=0, atol=1e-5)
    assert torch.equal(c.buffer[:, :, 1], torch.zeros(2, 2))  # a column not read stays 0


def test_ttv2_threshold_waits_for_more_than_one_step() -> None:
    c = cell(
        "ttv2", in_features=1, out_features=1, threshold=2.0, transfer_every=10**6, transfer_lr=1.0
    )
    set_fast(c, [[1]])
    c.transfer(torch.tensor([0]))
    assert torch.equal(inspection.cell_weights(c)["slow"], torch.zeros(2, 1, 1))
    c.transfer(torch.tensor([0]))  # H reaches 2 steps: both go to C
    assert torch.equal(inspection.cell_weights(c)["slow"], steps([[2]]))
    assert torch.equal(c.buffer, torch.zeros(2, 1, 1))


def test_chopper_flips_the_update_of_a_and_the_read_undoes_it() -> None:
    c = cell("chopped-ttv2", transfer_every=10**6, chop_prob=1.0, transfer_lr=1.0, fast_lr=1.0)
    x = torch.tensor([[1.0, 0.5, -1.0]])
    d = torch.tensor([[4.0, -2.0]]).expand(2, -1, -1)
    lr = 2 * STEP
    c.update(x, d, lr)  # A = -lr d x^T, choppers all +1
    a1 = -lr * d.transpose(1, 2) @ x
    assert torch.equal(inspection.cell_weights(c)["fast"], a1)
    c.transfer(torch.tensor([0]))  # H += +1 * A[:, 0]; column 0's chopper flips (p = 1)
    assert torch.equal(c.chopper, torch.tensor([[-1.0, 1.0, 1.0]] * 2))
    assert torch.equal(c.buffer, torch.zeros(2, 2, 3))  # 8 and 4 steps went to C at once
    assert torch.equal(inspection.cell_weights(c)["slow"][:, :, 0], a1[:, :, 0])
    c.update(x, d, lr)  # column 0 is now driven with the opposite sign: A's column 0 returns
    a2 = inspection.cell_weights(c)["fast"]
    assert torch.equal(a2[:, :, 0], torch.zeros(2, 2))
    assert torch.equal(a2[:, :, 1:], 2 * a1[:, :, 1:])
    c.transfer(torch.tensor([0]))  # read times -1: C's column 0 is unchanged (A is 0 there)
    assert torch.equal(inspection.cell_weights(c)["slow"][:, :, 0], a1[:, :, 0])
    assert torch.equal(c.chopper[:, 0], torch.ones(2))  # flipped back


def test_chopper_never_flips_at_probability_zero() -> None:
    c = cell("chopped-ttv2", transfer_every=1, chop_prob=0.0)
    c.update(torch.rand(7, 3), torch.randn(2, 7, 2), 0.01)
    assert torch.equal(c.chopper, torch.ones(2, 3))


def test_updates_trigger_transfers_in_column_order() -> None:
    c = cell("ttv2", transfer_every=2, columns=1)
    x, d = torch.rand(5, 3), torch.randn(2, 5, 2)
    reads = c.log[Event.ARRAY_READ]
    c.update(x, d, 0.001)  # 5 samples: two transfers (columns 0, 1), one sample carried over
    assert c.log[Event.ARRAY_READ] - reads == 2 * 2
    assert c.state_dict()["counters"] == {"updates": 0, "since": 1, "next": 2}
    c.update(x[:3], d[:, :3], 0.001)  # 4 more: columns 2 and 0
    assert c.state_dict()["counters"] == {"updates": 0, "since": 0, "next": 1}
    c2 = cell("ttv2", transfer_every=1, columns=4)  # 5 x 4 reads of a 3-column A: in passes
    c2.update(x, d, 0.001)
    assert c2.state_dict()["counters"] == {"updates": 0, "since": 0, "next": (5 * 4) % 3}


def _assert_reads(c: WeightArray, w: Tensor) -> Tensor:
    """The cell's forward and transposed reads are those of the weights ``w`` (ideal
    periphery); returns the forward inputs used."""
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(c.read(x), x @ w.transpose(1, 2))
    d = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(c.read_transposed(d), d @ w)
    return x


def test_forward_read_is_gamma_a_plus_c() -> None:
    c = cell("tiki-taka", gamma=0.25, transfer_every=10**6)
    set_fast(c, [[4, -8, 0], [2, 2, 2]])
    c.slow.pulse(torch.tensor([[1.0, 1, 1], [0, -3, 5]]).expand(2, -1, -1))
    w = steps([[2, -1, 1], [0.5, -2.5, 5.5]])  # type: ignore[list-item]
    assert torch.equal(inspection.true_weights(c), w)
    x = _assert_reads(c, w)
    reads = c.log[Event.ARRAY_READ]
    c.read(x)
    assert c.log[Event.ARRAY_READ] - reads == 2 * 2 * 4  # both arrays, both instances


def test_program_writes_c_and_clears_a_and_the_buffers() -> None:
    c = cell("chopped-ttv2", transfer_every=1, chop_prob=0.5)
    for _ in range(3):
        c.update(torch.rand(4, 3), torch.randn(2, 4, 2), 0.01)
    target = steps([[3, -2, 1], [0, 7, -5]])
    c.program(target, tolerance=STEP / 4)
    w = inspection.cell_weights(c)
    assert torch.equal(w["slow"], target)
    assert torch.equal(w["fast"], torch.zeros(2, 2, 3))
    assert not c.buffer.any() and torch.equal(c.chopper, torch.ones(2, 3))


def test_mixed_precision_pulses_once_chi_passes_a_step() -> None:
    c = cell("mixed-precision", in_features=2, out_features=1)
    assert isinstance(c, MixedPrecisionCell)
    x = torch.tensor([[1.0, 0.25]])
    d = torch.tensor([[-0.6 * STEP]]).expand(2, -1, -1)  # wants +0.6 and +0.15 steps per update
    c.update(x, d, 1.0)
    assert torch.equal(inspection.true_weights(c), torch.zeros(2, 1, 2))  # all still in chi
    pulses = c.log[Event.PULSE]
    c.update(x, d, 1.0)  # chi of weight 0 reaches 1.2 steps: one pulse, 0.2 stays
    assert torch.equal(inspection.true_weights(c), steps([[1, 0]]))
    assert c.log[Event.PULSE] - pulses == 2 * 2  # one pair, two instances
    torch.testing.assert_close(c.chi / STEP, torch.tensor([[[0.2, 0.3]]] * 2))
    digital = c.log[Event.DIGITAL_OP]
    c.update(x, -d, 1.0)  # back down: chi -0.4 and 0.15, nothing pulsed
    assert torch.equal(inspection.true_weights(c), steps([[1, 0]]))
    assert c.log[Event.DIGITAL_OP] - digital == 2 * 2 * (1 + 2)


# -- residual learning by hand -------------------------------------------------------------------


def test_residual_transfer_adds_the_read_columns_to_the_next_more_significant_tile() -> None:
    c = cell("multi-tile-residual", tiles=3, transfer_lr=0.5, transfer_every=10**6)
    assert isinstance(c, ResidualCell)
    c.tiles[2].pulse(torch.tensor([[4.0, -6, 2], [8, 0, -10]]).expand(2, -1, -1))
    c.tiles[1].pulse(torch.tensor([[0.0, 0, 2], [0, 0, 0]]).expand(2, -1, -1))
    before = c.log.counts()
    c.transfer(2, torch.tensor([0, 2]))
    w = inspection.cell_weights(c)
    assert torch.equal(w["tile1"], steps([[2, 0, 3], [4, 0, -5]]))
    assert torch.equal(w["tile2"], steps([[4, -6, 2], [8, 0, -10]]))  # the source stays
    assert torch.equal(w["tile0"], torch.zeros(2, 2, 3))
    after = c.log.counts()
    assert after[Event.ARRAY_READ] - before.get(Event.ARRAY_READ, 0) == 2 * 2  # 2 columns, 2 chips
    assert after[Event.PULSE] - before[Event.PULSE] == 2 * 2 * (2 + 4 + 1 + 5)
    # W = tile0 + gamma tile1 + gamma^2 tile2, gamma = 0.5
    assert torch.equal(inspection.true_weights(c), steps([[2, -1.5, 2], [4, 0, -5]]))  # type: ignore[list-item]


def test_residual_reads_the_tiles_by_significance() -> None:
    c = cell("residual", tile_gamma=0.25, transfer_every=10**6)
    assert len(c.tiles) == 2  # residual learning: a main and a residual array
    c.tiles[0].pulse(torch.tensor([[1.0, 1, 1], [0, -3, 5]]).expand(2, -1, -1))
    c.tiles[1].pulse(torch.tensor([[4.0, -8, 0], [2, 2, 2]]).expand(2, -1, -1))
    w = steps([[2, -1, 1], [0.5, -2.5, 5.5]])  # type: ignore[list-item]
    assert torch.equal(inspection.true_weights(c), w)
    _assert_reads(c, w)
    torch.testing.assert_close(c.measure(), w)


def test_residual_gradient_goes_to_the_least_significant_tile() -> None:
    c = cell("multi-tile-residual", tiles=3, fast_lr=2.0, transfer_every=10**6)
    x = torch.tensor([[1.0, 0.0, -1.0]])
    d = torch.tensor([[1.0, -2.0]]).expand(2, -1, -1)
    c.update(x, d, 3 * STEP)
    w = inspection.cell_weights(c)
    assert torch.equal(w["tile2"], -6 * STEP * d.transpose(1, 2) @ x)
    assert not w["tile0"].any() and not w["tile1"].any()


def test_residual_transfer_periods_grow_geometrically() -> None:
    c = cell("multi-tile-residual", tiles=3, transfer_every=2, period_growth=3, columns=2)
    assert [c.period(n) for n in (1, 2)] == [6, 2]
    x, d = torch.rand(1, 3), torch.randn(2, 1, 2)
    reads = []
    for _ in range(6):  # one rank-1 update each
        before = c.log[Event.ARRAY_READ]
        c.update(x, d, 0.001)
        reads.append(c.log[Event.ARRAY_READ] - before)
    # tile 2 -> 1 every 2 updates (2 columns, 2 chips); tile 1 -> 0 at update 6 (2 more).
    assert reads == [0, 4, 0, 4, 0, 8]
    assert c.state_dict()["counters"] == {
        "updates": 0,
        "since1": 0,
        "next1": 2,
        "since2": 0,
        "next2": (3 * 2) % 3,
    }


# -- the chip protocol ---------------------------------------------------------------------------

CELL_SOURCES = [
    Path(insitu.hardware.__file__).parent / name
    for name in (
        "compound_cell.py",
        "transfer_cell.py",
        "agad_cell.py",
        "mixed_precision_cell.py",
        "pair_refresh.py",
        "residual_cell.py",
        "tile_grid.py",
    )
]


@pytest.mark.parametrize("path", CELL_SOURCES, ids=lambda p: p.name)
def test_cell_sources_reach_no_hidden_state_of_their_arrays(path: Path) -> None:
    text = path.read_text()
    # (measure() is in the protocol, the cell's own measure uses it; training never does:
    # test_training_never_measures_or_peeks.)
    hidden = re.findall(r"\.(?:_g|_w|_arrays|_pulses|_weights|_table)\b|\binspection\b", text)
    assert hidden == [], f"{path.name} peeks at true conductances"
    others = [m.group(0) for m in re.finditer(r"(\w+)\.(_[a-z]\w*)", text) if m.group(1) != "self"]
    assert others == [], f"{path.name} uses private attributes of its arrays"


def chip_config(kind: CellKind, device: str = "reram-taox", refresh_every: int = 0) -> ChipConfig:
    params = CellParams(
        kind, transfer_every=2, columns=3, chop_prob=0.3, refresh_every=refresh_every
    )
    return ChipConfig((64, 8, 10), TileConfig(get_device(device), cell=params))


@pytest.mark.parametrize("algorithm", ["analog-sgd", "progressive"])
@pytest.mark.parametrize("kind", COMPOUND)
def test_training_never_measures_or_peeks(
    kind: CellKind, algorithm: str, train_sealed: Callable[[Any], None]
) -> None:
    trainer = make_trainer(algorithm, chip_config(kind), instances=2, seed=1, lr=0.1)
    train_sealed(trainer)
    if kind.transfers:  # 60 samples, 3 columns every 2: 90 columns of A read, in turn
        first = trainer.chip.tiles[0]
        assert isinstance(first, TransferCell)
        assert first.state_dict()["counters"] == {"updates": 0, "since": 0, "next": 90 % 65}
    if kind.residual:  # 3 columns of array n every 2 * 5**(tiles - 1 - n) samples, in turn
        first = trainer.chip.tiles[0]
        assert isinstance(first, ResidualCell)
        want = {"since1": 0, "next1": 90 % 65}
        if kind is CellKind.MULTI_TILE_RESIDUAL:  # 4 arrays: periods 50, 10 and 2
            want = {"since1": 10, "next1": 3, "since2": 0, "next2": 18, "since3": 0}
            want |= {"next3": 90 % 65}
        assert first.state_dict()["counters"] == {"updates": 0, **want}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    return bool(a == b)


RESUMED = [(k, "reram-taox", 0) for k in COMPOUND] + [
    (CellKind.SINGLE, "pcm", 2),
    (CellKind.MIXED_PRECISION, "pcm", 2),
]


@pytest.mark.parametrize(("kind", "device", "refresh"), RESUMED)
def test_resume_is_bit_identical(
    kind: CellKind, device: str, refresh: int, resume_pair: Callable[..., tuple[Any, Any]]
) -> None:
    def trainer(seed: int) -> Any:
        config = chip_config(kind, device, refresh)
        return make_trainer("analog-sgd", config, instances=2, seed=seed, lr=0.1)

    straight, resumed = resume_pair(trainer)
    assert _same(straight.state_dict(), resumed.state_dict())
    if refresh:  # refreshes happened (their device reads) and were resumed exactly
        programmed = make_trainer("analog-sgd", chip_config(kind, device, refresh), instances=2)
        assert straight.log[Event.DEVICE_READ] > programmed.log[Event.DEVICE_READ]


# -- configuration -------------------------------------------------------------------------------


def test_config_selects_the_cell() -> None:
    cfg = make_config({"cell": {"kind": "ttv2", "transfer_every": 3, "transfer_lr": 0.5}})
    tile = cfg.chip_config(64, 10).tile
    assert tile.cell == CellParams(CellKind.TTV2, transfer_every=3, transfer_lr=0.5)
    assert make_config({}).chip_config(64, 10).tile.cell.kind is CellKind.SINGLE
    cfg = make_config({"cell": {"kind": "multi-tile-residual", "tiles": 3, "tile_gamma": 0.25}})
    cell = cfg.chip_config(64, 10).tile.cell
    assert cell == CellParams(CellKind.MULTI_TILE_RESIDUAL, tiles=3, tile_gamma=0.25)
    with pytest.raises(ConfigError, match=r"cell\.kind"):
        make_config({"cell": {"kind": "tiki-tiki"}})
    with pytest.raises(ConfigError, match="transfer_every"):
        make_config({"cell": {"transfer_every": 0}})


def test_bad_cell_params_are_named() -> None:
    with pytest.raises(ConfigError, match="cell kind = 'nope'; valid: single, tiki-taka"):
        CellParams("nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cell columns = 0"):
        CellParams(CellKind.TTV2, columns=0)
    with pytest.raises(ConfigError, match="chop_prob"):
        CellParams(CellKind.TTV2, chop_prob=1.5)
    with pytest.raises(ConfigError, match=r"^cell tiles = 1; need a whole number >= 2$"):
        CellParams(CellKind.MULTI_TILE_RESIDUAL, tiles=1)
    with pytest.raises(ConfigError, match=r"^tile_gamma = 1\.5 is out of range; .* \(0, 1\]$"):
        CellParams(CellKind.RESIDUAL, tile_gamma=1.5)
    with pytest.raises(ConfigError, match="period_growth"):
        CellParams(CellKind.MULTI_TILE_RESIDUAL, period_growth=0)
    with pytest.raises(ConfigError, match="make_tile"):
        Tile(3, 2, TileConfig(EXACT, cell=CellParams(CellKind.TTV2)), generator=torch.Generator())


def test_nn_layers_take_the_cell_option() -> None:
    layer = AnalogLinear(4, 3, device="reram-taox", cell="chopped-ttv2", instances=2)
    assert isinstance(layer.tile, TransferCell)
    x = torch.rand(5, 4)
    layer(x).sum().backward()
    pulses = layer.tile.log[Event.PULSE]
    layer.pulse_update(0.1)
    assert layer.tile.log[Event.PULSE] > pulses
    with pytest.raises(ConfigError, match="cell kind = 'tiki'; valid"):
        AnalogLinear(4, 3, cell="tiki")


# -- pair refresh (one-sided devices) -----------------------------------------------------------

ONE_SIDED = EXACT.replace(abrupt_reset=True)


def test_refresh_resets_saturating_pairs_and_writes_their_weight_back() -> None:
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)
    params = CellParams(CellKind.SINGLE, refresh_every=2, refresh_level=0.75)
    config = TileConfig(ONE_SIDED, IDEAL_PERIPHERY, update, cell=params)
    c = make_tile(2, 1, config, instances=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(c, RefreshCell)
    c.pulse(torch.tensor([[[600.0, -100.0]]] * 2))  # G+ of weight 0 at 1.586 > 0.75 * 2
    w = inspection.true_weights(c)
    step = ONE_SIDED.dw_min  # one device moves per pulse
    assert torch.equal(w, step * torch.tensor([[[600.0, -100.0]]] * 2))
    x, d = torch.ones(1, 2), torch.zeros(2, 1, 1)
    c.update(x, d, 0.0)  # first update: no refresh yet
    assert torch.equal(inspection.conductances(c)[0][:, 0, 0], torch.full((2,), 1 + 600 * step))
    reads, pulses = c.log[Event.DEVICE_READ], c.log[Event.PULSE]
    c.update(x, d, 0.0)  # second: every device read, the saturating pair refreshed
    g_plus, g_minus = inspection.conductances(c)
    assert torch.equal(g_plus[:, 0, 0], torch.full((2,), 600 * step))
    assert torch.equal(g_minus[:, 0, 0], torch.zeros(2))
    assert torch.equal(g_minus[:, 0, 1], torch.full((2,), 1 + 100 * step))  # untouched
    assert torch.equal(inspection.true_weights(c), w)  # the weight survives the refresh
    # All 8 devices read to find the pair; write-verify reads them before and after its pulses.
    assert c.log[Event.DEVICE_READ] - reads == 3 * 2 * 2 * 2
    assert c.log[Event.PULSE] - pulses == 2 * (2 + 600)


def refresh_cell(**params: Any) -> Any:
    """A refreshed single cell of one weight-pair row (1 x 2) on exact one-sided devices."""
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)
    cell_params = CellParams(CellKind.SINGLE, refresh_every=1, refresh_level=0.75, **params)
    config = TileConfig(ONE_SIDED, IDEAL_PERIPHERY, update, cell=cell_params)
    return make_tile(2, 1, config, instances=2, generator=torch.Generator().manual_seed(0))


def test_refresh_leaves_pairs_that_are_already_compact() -> None:
    c = refresh_cell()  # floor 0.2 of the range [0, 2]: 0.4
    step = ONE_SIDED.dw_min
    c.pulse(torch.tensor([[[600.0, -100.0]]] * 2))
    x, d = torch.ones(1, 2), torch.zeros(2, 1, 1)
    c.update(x, d, 0.0)  # G+ 1.586 above 1.5 with G- at 1: RESET, 600 steps written back
    g_plus, g_minus = inspection.conductances(c)
    assert torch.equal(g_plus[:, 0, 0], torch.full((2,), 600 * step))
    assert torch.equal(g_minus[:, 0, 0], torch.zeros(2))
    c.pulse(torch.tensor([[[1000.0, 0.0]]] * 2))  # G+ 1.563 above 1.5 again, but G- is at 0
    before = inspection.conductances(c)
    pulses = c.log[Event.PULSE]
    c.update(x, d, 0.0)  # read, found compact: nothing to free, nothing pulsed
    assert all(torch.equal(a, b) for a, b in zip(inspection.conductances(c), before, strict=True))
    assert c.log[Event.PULSE] == pulses
    with pytest.raises(ConfigError, match=r"refresh_floor = 0.8; need 0 <= refresh_floor <"):
        refresh_cell(refresh_floor=0.8)


def test_refreshed_cells_are_programmed_from_reset() -> None:
    c = refresh_cell()
    target = steps([[300, -40]]) / 2  # one device per pulse: STEP / 2 a pulse
    result = c.program(target)
    assert torch.equal(inspection.true_weights(c), target)
    g_plus, g_minus = inspection.conductances(c)
    # From RESET: the other device of each pair stays at g_min (a plain tile climbs from g_ref).
    assert torch.equal(g_minus[:, 0, 0], torch.zeros(2))
    assert torch.equal(g_plus[:, 0, 1], torch.zeros(2))
    assert result.iterations == 1 and result.rms_error == 0.0 and result.converged == 1.0


def test_pair_write_back_counts_pulses_by_the_datasheet_step() -> None:
    # pcm's saturating SET without noise: slope 0.04 * (2 - 2 g)**2 (0.16 just after RESET);
    # n pulses from RESET reach 1 - 1 / (1 + 0.16 n) (the response's closed form).
    quiet = get_device("pcm").replace(
        dw_min_std=0.0, read_noise=0.0, reset_std=0.0, dw_min_dtod=0.0, bounds_dtod=0.0
    )
    config = TileConfig(quiet, IDEAL_PERIPHERY, UpdateParams(mode=UpdateMode.COUNT))
    tile = Tile(2, 1, config, instances=1, generator=torch.Generator().manual_seed(0))
    tile.pulse(torch.tensor([[[3.0, -2.0]]]))
    target = torch.tensor([[[0.3, -0.05]]])
    pulses = tile.log[Event.PULSE]
    result = write_pairs(tile, target, torch.ones(1, 1, 2, dtype=torch.bool))
    g_plus, g_minus = inspection.conductances(tile)
    # 0.3: round(0.3 / 0.16) = 2 pulses reach 0.242; round(0.058 / 0.092) = 1 more reaches
    # 0.324; the error left (-0.024) is under half a step of G- (0.16). -0.05: under half of
    # 0.16, so never pulsed (an overshoot could only be undone by SETting the other device).
    assert torch.allclose(g_plus[0, 0], torch.tensor([1 - 1 / (1 + 0.16 * 3), 0.0]))
    assert torch.equal(g_minus[0, 0], torch.zeros(2))
    assert tile.log[Event.PULSE] - pulses == 4 + 3  # 2 RESETs per pair, 3 SETs
    assert result.iterations == 2
    assert result.converged == 0.5  # 0.024 within one nominal weight step (0.04), 0.05 not


def test_refresh_needs_one_sided_pairs_and_reset_an_abrupt_reset() -> None:
    with pytest.raises(ConfigError, match="refresh is for one-sided pairs"):
        cell("ttv2", refresh_every=10)
    with pytest.raises(ConfigError, match="no abrupt RESET"):
        cell("ttv2").slow.reset(torch.ones(2, 2, 3, dtype=torch.bool))


def test_pulse_columns_is_one_cycle_per_column() -> None:
    c = cell("ttv2")
    before = c.log.counts()
    counts = torch.tensor([[[3.0, 0.0], [-1.0, 2.0]]]).expand(2, -1, -1)  # (I, out, k=2)
    c.slow.pulse_columns(torch.tensor([2, 0]), counts)
    assert torch.equal(inspection.cell_weights(c)["slow"], steps([[0, 0, 3], [2, 0, -1]]))
    after = c.log.counts()
    assert after[Event.UPDATE] - before.get(Event.UPDATE, 0) == 2 * 2
    # Row trains (3 + 1 + 2) plus each column line's longest train (3, then 2), per instance.
    assert after[Event.LINE_PULSE] - before.get(Event.LINE_PULSE, 0) == 2 * (6 + 5)
    with pytest.raises(ValueError, match="column pulse counts have shape"):
        c.slow.pulse_columns(torch.tensor([0]), counts)
