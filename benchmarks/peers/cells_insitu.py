"""insitu's compound weight cells set up like one of aihwkit's compound presets.

``--preset`` names an aihwkit preset (``TTv2EcRamPreset``, ...); :data:`MAPPING` says which
insitu cell, device and parameters stand for it, and ``describe`` prints what is matched and
what is not. The device, periphery and update are those of ``crossbar_insitu.py`` (aihwkit's
PresetIOParameters and PresetUpdateParameters, one device per weight read against a
reference). Runs under the project's ``.venv``.

    .venv/bin/python benchmarks/peers/cells_insitu.py --preset TTv2EcRamPreset
    .venv/bin/python benchmarks/peers/cells_insitu.py --describe

Parameters that depend on a layer (aihwkit's buffer granularity scales with the tile's input
size) are set on each array's cell after the chip is built: a chip's config holds one cell
design for all its layers. aihwkit's ``auto_scale`` of the fast array's learning rate (TTv2
family, AGAD) has no insitu counterpart; ``--auto-scale`` (default on for those presets)
emulates it here, outside the cell: each layer's learning rate for A is set before every update from
running averages of the largest input and error, as aihwkit's ChoppedTransferRPUDevice
computes it (``fast_lr * desired_BL * dw_min / (m_x * m_d)``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from common import load_mnist, parser, report, train_timed
from crossbar_insitu import AIHWKIT_PERIPHERY, test_accuracy

from insitu.algorithms import make_trainer
from insitu.devices import get_device
from insitu.hardware import ChipConfig, PairMode, TileConfig, TileGrid, UpdateParams
from insitu.hardware.cells import CellKind, CellParams

# aihwkit device preset -> insitu device preset, pair mode, weight scale, and whether they are
# the same device (EcRamPresetDevice's values are ecram-liwo3's; insitu has no exp-step model,
# so ReRamESPresetDevice has no insitu twin: reram-taox shares only its up_down and spreads).
DEVICES = {
    "EcRam": ("ecram-liwo3", PairMode.REFERENCE, 1.0, True),
    "ReRamES": ("reram-taox", PairMode.REFERENCE, 2.0, False),  # w in [-1, 1] as aihwkit's
}


@dataclass(frozen=True)
class Mapping:
    """One aihwkit compound preset in insitu's terms (see the module docstring).

    ``fast_lr_const``: aihwkit's constant learning rate of A (TransferCompound ``fast_lr``;
    insitu's factor is it over the SGD rate). ``auto_fast_lr``: aihwkit's ``fast_lr`` under
    ``auto_scale``. ``auto_granularity``: H's threshold in aihwkit is ``dw_min *
    auto_granularity / in_size`` per unit of SGD rate, i.e. insitu's ``transfer_lr`` is
    ``lr * in_size / auto_granularity`` with ``threshold`` 1. ``desired_bl``: longest pulse
    train of the gradient update.
    """

    kind: CellKind
    device: str
    desired_bl: int = 31
    fast_lr_const: float | None = None
    auto_fast_lr: float | None = None
    auto_granularity: float | None = None
    chop_prob: float = 0.0
    tail_weight: float = 5.0  # AGAD (aihwkit tail_weightening)
    every_batch: bool = False  # aihwkit units_in_mbatch: one transfer per mini-batch
    unmatched: tuple[str, ...] = ()


_TT = (
    "transfer inside the mini-batch: aihwkit transfers after the sample that completes the "
    "period, insitu after the mini-batch's pulses (same count, order within a batch differs)",
    "transfer_forward without noise/bound management: insitu reads A's one-hot columns with "
    "the forward periphery (ABS_MAX noise management is a no-op on a one-hot input)",
)
_TTV2 = (
    "auto_scale (A's rate from running maxima of x and d): emulated outside the cell "
    "(--auto-scale), per mini-batch instead of per sample (tau 0.01 per batch)",
    "forget_buffer=True, momentum 0: aihwkit zeroes an H entry after it fires; insitu keeps "
    "the remainder",
    "transfer_update desired_bl=1: aihwkit writes at most 1 pulse per transfer; insitu at "
    "most update.max_pulses whole steps",
    *_TT,
)
_AGAD = (
    "aihwkit's core writes nothing to C during the first chopper period, ceil(1/in_chop_prob) "
    "passes over all columns (no reference yet; 200 passes on EcRam, 50 on ReRamES: longer than "
    "a 2,000-sample run for every layer here); insitu reads against A's programmed zero until "
    "the first switch",
    "the chopper period: aihwkit counts passes over all columns, insitu reads of each column "
    "(the same when columns are read in turn, one per transfer)",
    *_TTV2,
)
_MP = (
    "the transfer's pulses: aihwkit writes trunc(chi/dw_min) as a stochastic pulse train "
    "(BL 31, update management), insitu applies that many pulses exactly",
    "chi updated per sample in aihwkit and transferred after the sample completing a "
    "mini-batch; insitu accumulates the batch's outer products, then transfers",
)


def _family(
    device: str,
    bl_ttv2: int,
    ttv2_fast: float,
    gran: float,
    chop: float,
    agad: tuple[float, float, float, float],
) -> dict:
    agad_fast, agad_gran, agad_chop, agad_tail = agad
    return {
        f"TikiTaka{device}Preset": Mapping(
            CellKind.TIKI_TAKA,
            device,
            fast_lr_const=1.0,
            every_batch=True,
            unmatched=_TT,
        ),
        f"TTv2{device}Preset": Mapping(
            CellKind.TTV2,
            device,
            desired_bl=bl_ttv2,
            auto_fast_lr=ttv2_fast,
            auto_granularity=gran,
            unmatched=_TTV2,
        ),
        f"ChoppedTTv2{device}Preset": Mapping(
            CellKind.CHOPPED_TTV2,
            device,
            desired_bl=bl_ttv2,
            auto_fast_lr=ttv2_fast if device == "ReRamES" else 1.0,  # EcRam: default fast_lr
            auto_granularity=gran,
            chop_prob=chop,
            unmatched=_TTV2,
        ),
        f"AGAD{device}Preset": Mapping(
            CellKind.AGAD,
            device,
            desired_bl=31,  # both AGAD presets: gradient update BL 31
            auto_fast_lr=agad_fast,
            auto_granularity=agad_gran,
            chop_prob=agad_chop,
            tail_weight=agad_tail,
            unmatched=_AGAD,
        ),
        f"MixedPrecision{device}Preset": Mapping(
            CellKind.MIXED_PRECISION, device, every_batch=True, unmatched=_MP
        ),
    }


# Values read from aihwkit 1.1.0, aihwkit/simulator/presets/configs.py.
MAPPING: dict[str, Mapping] = {
    # agad: (fast_lr, auto_granularity, in_chop_prob, tail_weightening)
    **_family("EcRam", bl_ttv2=100, ttv2_fast=0.1, gran=500, chop=0.01, agad=(0.1, 750, 0.005, 50)),
    **_family(
        "ReRamES", bl_ttv2=31, ttv2_fast=0.5, gran=1000, chop=0.01, agad=(0.5, 1000, 0.02, 5)
    ),
}


def cell_params(m: Mapping, lr: float, batch: int) -> CellParams:
    """The chip-wide cell design (per-layer values are set by :func:`per_layer`)."""
    return CellParams(
        kind=m.kind,
        gamma=0.0,  # every aihwkit preset: the weight is C alone
        fast_lr=m.fast_lr_const / lr if m.fast_lr_const is not None else 1.0,
        transfer_every=batch if m.every_batch and m.kind.transfers else 1,
        columns=1,  # n_reads_per_transfer 1
        transfer_lr=lr,  # Tiki-Taka: transfer_lr 1 x SGD rate (scale_transfer_lr)
        threshold=1.0,  # H and chi fire at one dw_min (aihwkit's weight granularity)
        chop_prob=m.chop_prob,
        tail_weight=m.tail_weight,
    )


def arrays(trainer: Any) -> list[Any]:
    """Every layer's cell, or every array's cell of a layer split over a grid of arrays."""
    cells: list[Any] = []
    for t in trainer.chip.tiles:
        if isinstance(t, TileGrid):
            cells.extend(b for row in t.blocks for b in row)
        else:
            cells.append(t)
    return cells


def per_layer(trainer: Any, m: Mapping, lr: float, step: float, auto_scale: bool) -> None:
    """Set each array's transfer rate (TTv2 family) and, with ``auto_scale``, wrap its update
    so that A's rate follows aihwkit's auto scale (aihwkit does both per tile)."""
    for cell in arrays(trainer):
        if m.auto_granularity is not None:
            in_size = cell.in_features  # with the bias column (aihwkit run with --analog-bias)
            rate = lr * in_size / m.auto_granularity
            cell.params = dataclasses.replace(cell.params, transfer_lr=rate)
        if auto_scale and m.auto_fast_lr is not None:
            cell.update = _auto_scaled(cell.update, m.auto_fast_lr * m.desired_bl * step)


def _auto_scaled(update: Callable[..., None], count_lr: float) -> Callable[..., None]:
    """``update`` with its rate replaced by ``count_lr / (m_x * m_d)`` (running averages)."""
    state = {"m_x": 0.0, "m_d": 0.0}

    def scaled(x: torch.Tensor, d: torch.Tensor, lr: float) -> None:
        for key, v in (("m_x", x), ("m_d", d)):
            new = float(v.abs().amax(-1).mean())
            state[key] = new if state[key] <= 0 else 0.99 * state[key] + 0.01 * new
        update(x, d, count_lr / max(state["m_x"] * state["m_d"], 1e-12))

    return scaled


def describe() -> str:
    """The mapping as markdown lines."""
    lines = []
    for name, m in MAPPING.items():
        dev, _, _, same = DEVICES[m.device]
        lines.append(
            f"- {name}: insitu `{m.kind.value}` on `{dev}`"
            + ("" if same else " (NOT the same device)")
        )
        lines.extend(f"  - unmatched: {u}" for u in m.unmatched)
    return "\n".join(lines)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--preset", choices=sorted(MAPPING), default="TTv2EcRamPreset")
    p.add_argument(
        "--auto-scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="emulate aihwkit's auto_scale of A's rate (TTv2 family)",
    )
    p.add_argument(
        "--max-inputs",
        type=int,
        help="array size (input and output lines): larger layers are split over several arrays "
        "as aihwkit's default mapping does at 512 (default: one array per layer)",
    )
    p.add_argument("--describe", action="store_true", help="print the mapping and exit")
    args = p.parse_args()
    if args.describe:
        print(describe())
        return
    torch.set_num_threads(args.threads)
    data = load_mnist(args.data_dir, args.dataset)
    m = MAPPING[args.preset]
    name, pair, scale, _ = DEVICES[m.device]
    tile = TileConfig(
        get_device(name),
        periphery=AIHWKIT_PERIPHERY,
        update=UpdateParams(max_pulses=m.desired_bl),
        pair=pair,
        weight_scale=scale,
        cell=cell_params(m, args.lr, args.batch),
        max_inputs=args.max_inputs,
        max_outputs=args.max_inputs,
    )
    chip = ChipConfig((784, *args.hidden, 10), tile, "sigmoid")
    trainer = make_trainer("analog-sgd", chip, instances=1, seed=args.seed, lr=args.lr)
    per_layer(trainer, m, args.lr, tile.weight_step, args.auto_scale)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(trainer.train_batch(x, y).mean())

    result = train_timed(step, data, args)
    if not args.no_test:
        result.update(test_accuracy(trainer, data, 1))
    result["preset"] = args.preset
    result["cell"] = m.kind.value
    result["device"] = name
    result["auto_scale"] = bool(args.auto_scale and m.auto_fast_lr is not None)
    result["device_pulses"] = trainer.log["device_pulse"]
    result["max_inputs"] = args.max_inputs
    report(result)


if __name__ == "__main__":
    main()
