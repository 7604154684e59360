"""AGAD (Rasch et al., Nat. Commun. 15, 7133, 2024): the dynamic reference, the regular
chopper and the transfer checked by hand on a tiny noise-free tile; its parameters. The chip
protocol, training and bit-identical resume are checked for every compound kind, agad
included, in test_cells.py."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
from torch import Tensor

from insitu import cli
from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.experiments.config import make_config
from insitu.hardware import (
    IDEAL_PERIPHERY,
    CellKind,
    CellParams,
    Event,
    TileConfig,
    UpdateMode,
    UpdateParams,
    inspection,
    make_tile,
)
from insitu.hardware.cells import AGADCell

EXACT = get_device("ideal").replace(dw_min=2.0**-10)
STEP = 2 * EXACT.dw_min  # one coincidence moves both devices of the pair


def agad(out_features: int = 2, **params: Any) -> AGADCell:
    """A one-column AGAD cell on exact devices and ideal periphery, two instances, no
    automatic transfers (the tests call ``transfer``)."""
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)
    cell = CellParams(CellKind.AGAD, transfer_every=10**6, transfer_lr=1.0, **params)
    config = TileConfig(EXACT, IDEAL_PERIPHERY, update, cell=cell)
    c = make_tile(1, out_features, config, instances=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(c, AGADCell)
    return c


def column(values: list[float]) -> Tensor:
    """One column of whole or fractional steps, on both instances: (2, out, 1)."""
    return STEP * torch.tensor(values).reshape(1, -1, 1).expand(2, -1, -1)


def transfer(c: AGADCell) -> dict[str, float]:
    """Transfer column 0; the events it took."""
    before = c.log.counts()
    c.transfer(torch.tensor([0]))
    return {k: v - before.get(k, 0) for k, v in c.log.counts().items()}


def test_reference_is_the_tail_mean_of_the_last_period_and_h_takes_the_change() -> None:
    c = agad(chop_prob=0.5, tail_weight=1.0)  # period 2 reads, mean rate min(1/2, 1) = 1/2
    assert c.period == 2
    c.fast.pulse(torch.tensor([[4.0], [-2.0]]).expand(2, -1, -1))  # A's column: 4, -2 steps
    slow = []
    # Read 1: H += +1 (a - 0): C takes 4, -2 whole steps; mean 0 + (a - 0) / 2.
    events = transfer(c)
    slow.append(inspection.cell_weights(c)["slow"])
    assert torch.equal(c.tail_mean, column([2, -1]))
    assert torch.equal(c.reference, column([0, 0]))
    assert torch.equal(c.chopper, torch.ones(2, 1))
    # One read of one column, 2 outputs, 2 instances: 4 values. Stored: 4 means and the count.
    assert events[Event.STORED_VALUE] == 4 + 1
    assert events[Event.DIGITAL_OP] == 5 * 4 + 2 + 3 * 4  # reference and mean; count; H
    assert events[Event.ARRAY_READ] == 2
    # Read 2 ends the period: C takes 4, -2 more; the mean (3, -1.5) becomes the reference
    # and the chopper switches; 4 more stored values for the new reference.
    events = transfer(c)
    assert torch.equal(inspection.cell_weights(c)["slow"], 2 * slow[0])
    assert torch.equal(c.tail_mean, column([3, -1.5]))
    assert torch.equal(c.reference, column([3, -1.5]))
    assert torch.equal(c.chopper, -torch.ones(2, 1))
    assert events[Event.STORED_VALUE] == 4 + 1 + 4
    # The gradient now arrives with the opposite sign: A moves by -1, +1 steps.
    c.fast.pulse(torch.tensor([[-1.0], [1.0]]).expand(2, -1, -1))  # A: 3, -1
    # Read 3: H += -1 (a - p) = (0, -0.5): below one step, nothing pulsed.
    events = transfer(c)
    assert torch.equal(c.buffer, column([0, -0.5]))
    assert events.get(Event.PULSE, 0) == 0
    assert torch.equal(c.tail_mean, column([3, -1.25]))
    # Read 4: H reaches -1 step in row 1: one step down on C; the period ends again.
    transfer(c)
    assert torch.equal(inspection.cell_weights(c)["slow"], column([8, -5]))
    assert torch.equal(c.buffer, column([0, 0]))
    assert torch.equal(c.reference, column([3, -1.125]))
    assert torch.equal(c.chopper, torch.ones(2, 1))
    assert torch.equal(c.reads, torch.zeros(1, dtype=torch.int64))
    assert torch.equal(inspection.cell_weights(c)["fast"], column([3, -1]))  # A is not reset


def test_a_static_offset_of_a_stops_reaching_c_after_one_period() -> None:
    # A sits away from its zero (a symmetry point it drifted to, an imperfect reference):
    # Chopped-TTv2 would keep writing +-offset into H; AGAD's reference takes it up.
    c = agad(out_features=1, chop_prob=0.25, tail_weight=4.0)  # period 4, mean = last read
    c.fast.pulse(torch.full((2, 1, 1), 3.0))
    for _ in range(4):
        transfer(c)
    after_first_period = inspection.cell_weights(c)["slow"]
    assert torch.equal(after_first_period, column([12]))  # 4 reads of 3 steps, p = 0
    assert torch.equal(c.reference, column([3]))
    for _ in range(40):  # ten more periods, both chopper signs
        transfer(c)
    assert torch.equal(inspection.cell_weights(c)["slow"], after_first_period)
    assert not c.buffer.any()


def test_update_drives_a_with_the_chopped_inputs_and_transfers_in_turn() -> None:
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=1000)
    params = CellParams(CellKind.AGAD, chop_prob=0.5, fast_lr=1.0, transfer_every=1)
    config = TileConfig(EXACT, IDEAL_PERIPHERY, update, cell=params)
    c = make_tile(2, 1, config, instances=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(c, AGADCell)
    x, d = torch.tensor([[1.0, 1.0]]), torch.full((2, 1, 1), -STEP)  # +1 step per sample
    # One column read per sample, in turn: column 0 after samples 1 and 3 (its chopper
    # switches after the 3rd), column 1 after samples 2 and 4 (switches after the 4th).
    for _ in range(4):
        c.update(x, d, 1.0)
    assert torch.equal(c.chopper, -torch.ones(2, 2))
    assert torch.equal(c.reads, torch.zeros(2, dtype=torch.int64))
    fast = inspection.cell_weights(c)["fast"]
    assert torch.equal(fast[0, 0], STEP * torch.tensor([3.0 - 1.0, 4.0]))
    c.update(x, d, 1.0)  # both lines now chopped: A steps back on both columns
    fast = inspection.cell_weights(c)["fast"]
    assert torch.equal(fast, STEP * torch.tensor([[[1.0, 3.0]]] * 2))


def test_program_clears_the_reference_and_the_counts() -> None:
    c = agad(chop_prob=0.5, tail_weight=1.0)
    c.fast.pulse(torch.tensor([[4.0], [-2.0]]).expand(2, -1, -1))
    for _ in range(3):
        transfer(c)
    assert c.reference.any() and c.reads.any()
    c.program(column([1, 2]), tolerance=STEP / 4)
    assert not (c.reference.any() or c.tail_mean.any() or c.reads.any() or c.buffer.any())
    assert torch.equal(c.chopper, torch.ones(2, 1))
    assert torch.equal(inspection.cell_weights(c)["fast"], torch.zeros(2, 2, 1))


def test_state_dict_holds_the_reference_chopper_and_counts() -> None:
    c = agad(chop_prob=0.25, tail_weight=2.0)
    c.fast.pulse(torch.tensor([[5.0], [1.0]]).expand(2, -1, -1))
    for _ in range(6):
        transfer(c)
    state = c.state_dict()
    fresh = agad(chop_prob=0.25, tail_weight=2.0)
    fresh.load_state_dict(state)
    for name in ("reference", "tail_mean", "reads", "chopper", "buffer"):
        assert torch.equal(getattr(fresh, name), getattr(c, name)), name
    assert fresh.state_dict()["counters"] == state["counters"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"chop_prob": 0.0}, "cell chop_prob = 0 with kind agad"),
        ({"tail_weight": 0.0}, "tail_weight = 0.0 is out of range"),
        ({"tail_weight": float("nan")}, "tail_weight"),
    ],
)
def test_bad_agad_params_are_named(params: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        CellParams(CellKind.AGAD, **params)
    assert "\n" not in str(info.value)


def test_config_and_cli_take_agad(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_config({"cell": {"kind": "agad", "tail_weight": 50, "chop_prob": 0.005}})
    cell = cfg.chip_config(64, 10).tile.cell
    assert cell == CellParams(CellKind.AGAD, tail_weight=50.0, chop_prob=0.005)
    with pytest.raises(ConfigError, match="chop_prob = 0 with kind agad"):
        make_config({"cell": {"kind": "agad", "chop_prob": 0}})  # refused at load
    monkeypatch.setattr(
        sys, "argv", ["insitu", "train", "--set", "cell.kind=agad", "--set", "cell.chop_prob=0"]
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "chop_prob = 0 with kind agad" in " ".join(err.split())
    assert "Traceback" not in err


def test_compiled_demodulation_matches_the_torch_reference_bit_for_bit() -> None:
    cells = [agad(out_features=5, chop_prob=0.3, tail_weight=2.0) for _ in range(2)]
    for c in cells:  # 1-input cells above; widen to 7 columns of state
        c.reference = torch.zeros(2, 5, 7)
        c.tail_mean = torch.zeros(2, 5, 7)
        c.reads = torch.zeros(7, dtype=torch.int64)
        c.chopper = torch.ones(2, 7)
    kernel, torch_path = cells
    gen = torch.Generator().manual_seed(3)
    for _ in range(12):  # periods of 4 reads: every column switches several times
        columns = torch.randperm(7, generator=gen)[:3]
        v = torch.randn(2, 3, 5, generator=gen)
        got = kernel._kernel_demodulate(columns, v)
        want = torch_path._torch_demodulate(columns, v)
        assert torch.equal(got, want)
    for name in ("reference", "tail_mean", "reads", "chopper"):
        assert torch.equal(getattr(kernel, name), getattr(torch_path, name)), name
    assert int(kernel.reads.sum()) > 0 and bool((kernel.chopper < 0).any())
    assert kernel.log.counts() == torch_path.log.counts()
