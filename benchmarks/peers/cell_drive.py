"""One Tiki-Taka layer of each simulator driven by the same input stream, outside any network.

The network comparison (``vs_peers.py --task cells``) mixes the cell's dynamics with everything
around it. Here one layer (``--inputs`` x 32) of aihwkit's ``TikiTakaEcRamPreset`` or of insitu's
``tiki-taka`` cell on ``ecram-liwo3`` (the mapping of ``cells_insitu.py``: A's constant rate 1.0,
transfer rate 1 x SGD rate 0.5, one column per mini-batch of 10) learns a fixed random linear
map: the inputs are seeded (uniform, 70 % zero), the error is ``scale * (C - W*) x`` from the
true weights (the same rule on both sides, so only the cell differs). Every 1,000 samples it
records C's relative distance to ``W*`` and A's statistics; the last stdout line is JSON.

    .venv/bin/python benchmarks/peers/cell_drive.py --simulator insitu
    .venv-peers/bin/python benchmarks/peers/cell_drive.py --simulator aihwkit
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
from torch import Tensor

OUT = 32
BATCH = 10
LR = 0.5


def stream(inputs: int, samples: int) -> dict[str, Tensor]:
    """The target map, the inputs and the initial weights (seed 0 on both sides)."""
    g = torch.Generator().manual_seed(0)
    target = (torch.rand(OUT, inputs, generator=g) - 0.5) * 0.6
    x = torch.rand(samples, inputs, generator=g) * (torch.rand(samples, inputs, generator=g) < 0.3)
    w0 = (torch.rand(OUT, inputs, generator=g) - 0.5) * 0.2
    return {"target": target, "x": x, "w0": w0}


Layer = tuple[Callable[[Tensor, Tensor], None], Callable[[], tuple[Tensor, Tensor]]]


def aihwkit_layer(w0: Tensor, seed: int) -> Layer:
    """aihwkit's tile: its update and its true (A, C)."""
    from aihwkit.simulator.presets import TikiTakaEcRamPreset
    from aihwkit.simulator.tiles.analog import AnalogTile

    torch.manual_seed(seed)
    tile = AnalogTile(OUT, w0.shape[1], TikiTakaEcRamPreset())
    tile.set_learning_rate(LR)
    tile.set_weights(w0)
    names = tile.tile.get_hidden_parameter_names()

    def arrays() -> tuple[Tensor, Tensor]:
        h = tile.tile.get_hidden_parameters()
        return h[names.index("hidden_weights_0")], h[names.index("hidden_weights_1")]

    return (lambda x, d: tile.tile.update(x, d, False)), arrays


def insitu_layer(w0: Tensor, seed: int) -> Layer:
    """insitu's cell: its update and its true (A, C) (the inspection hook, not the protocol)."""
    from crossbar_insitu import AIHWKIT_PERIPHERY

    from insitu.devices import get_device
    from insitu.hardware import PairMode, TileConfig, UpdateParams
    from insitu.hardware.cells import CellKind, CellParams, make_tile
    from insitu.hardware.inspection import cell_weights

    cell = CellParams(
        kind=CellKind.TIKI_TAKA, fast_lr=1.0 / LR, transfer_every=BATCH, transfer_lr=LR
    )
    config = TileConfig(
        get_device("ecram-liwo3"),
        periphery=AIHWKIT_PERIPHERY,
        update=UpdateParams(max_pulses=31),
        pair=PairMode.REFERENCE,
        cell=cell,
    )
    layer = make_tile(w0.shape[1], OUT, config, generator=torch.Generator().manual_seed(seed))
    layer.program(w0)

    def arrays() -> tuple[Tensor, Tensor]:
        w = cell_weights(layer)  # type: ignore[arg-type]
        return w["fast"][0], w["slow"][0]

    return (lambda x, d: layer.update(x, d, LR)), arrays


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--simulator", choices=["insitu", "aihwkit"], required=True)
    p.add_argument("--inputs", type=int, default=32)
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--scale", type=float, default=0.1, help="error = scale * (C - W*) x")
    p.add_argument("--seed", type=int, default=0, help="the simulator's own randomness")
    args = p.parse_args()
    torch.set_num_threads(1)
    s = stream(args.inputs, args.samples)
    build = aihwkit_layer if args.simulator == "aihwkit" else insitu_layer
    update, arrays = build(s["w0"], args.seed)
    target = s["target"]
    trace = []
    for i in range(0, args.samples - BATCH + 1, BATCH):
        x = s["x"][i : i + BATCH]
        _, c = arrays()
        update(x, args.scale * x @ (c - target).T)
        if (i + BATCH) % 1000 == 0:
            a, c = arrays()
            trace.append(
                {
                    "samples": i + BATCH,
                    "c_error": round(float((c - target).norm() / target.norm()), 4),
                    "a_mean": round(float(a.mean()), 4),
                    "a_abs_mean": round(float(a.abs().mean()), 4),
                }
            )
    print(json.dumps({"simulator": args.simulator, **vars(args), "trace": trace}))


if __name__ == "__main__":
    main()
