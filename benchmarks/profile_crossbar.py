"""Where analog-sgd's time goes: CPU time per mini-batch by phase of the chip protocol.

The workload of ``vs_peers.py --task crossbar`` (784-256-128-10, batch 10, Li/WO3 ECRAM set
up like aihwkit's EcRamPreset, one thread unless ``--threads``). Each phase's functions are
wrapped with a CPU-time clock (process time: what this process computed, all threads, not what
other load on the machine took); the wall time per mini-batch is printed beside it.
Works on older code too (phases whose functions do not exist are left out), so a checkout of an
earlier commit can be profiled the same way::

    .venv/bin/python benchmarks/profile_crossbar.py [--instances 8] [--batches 200]
    git archive <commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/profile_crossbar.py
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from common import DEFAULT_DATA, load_mnist, sample_order
from crossbar_insitu import AIHWKIT_PERIPHERY

import insitu.hardware.chip as chip_module
import insitu.hardware.tile as tile_module
from insitu.algorithms import make_trainer
from insitu.devices import get_device
from insitu.hardware import ChipConfig, PairMode, TileConfig, UpdateParams


def _module(name: str) -> Any:
    """The module ``name``, or None where this checkout has none."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


tile_update = _module("insitu.hardware.tile_update")
tile_pulses = _module("insitu.hardware.tile_pulses")

# (label, module or class, attribute); the first phase that exists under a label counts. The
# tile's concerns moved to modules of their own (tile_read, tile_update, tile_pulses); the
# older names stay so that an earlier commit profiles the same way.
PHASES: list[tuple[str, Any, str]] = [
    ("forward reads", tile_module.Tile, "read"),
    ("transposed reads", tile_module.Tile, "read_transposed"),
    ("update kernel (trains, coincidences, physics)", tile_update, "KernelUpdate.__call__"),
    ("update kernel (trains, coincidences, physics)", tile_module.Tile, "kernel_update"),
    ("update kernel (trains, coincidences, physics)", tile_module.Tile, "_kernel_update"),
    ("pulse trains", tile_update, "TorchUpdate._pulse_trains"),
    ("pulse trains", tile_module.Tile, "_pulse_trains"),
    ("coincidences to entries", tile_update, "TorchUpdate.coincidence_entries"),
    ("coincidences to entries", tile_module.Tile, "_coincidence_entries"),
    ("update: entries, runs, physics (all)", chip_module, "apply_tile_entries"),
    ("update: coincidences, runs, physics (all)", tile_module.Tile, "_apply_coincidences"),
    ("same-sign runs (sort, schedule)", tile_pulses, "schedule_runs"),
    ("same-sign runs (sort, schedule)", tile_module, "schedule_runs"),
    ("closed-form physics", tile_pulses, "apply_runs"),
    ("closed-form physics", tile_module, "apply_runs"),
    ("closed-form physics", tile_pulses, "apply_pulses"),
    ("closed-form physics", tile_module, "apply_pulses"),
]


def _resolve(owner: Any, name: str) -> tuple[Any, str] | None:
    """The object holding ``name`` (dotted: ``Class.method`` in a module) and its last part;
    None where it does not exist (an older or newer checkout)."""
    *path, last = name.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    return None if owner is None or not hasattr(owner, last) else (owner, last)


def wrap(owner: Any, name: str, label: str, spent: dict[str, float]) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - start

    setattr(owner, name, timed)


def count_ops(trainer: Any, x: torch.Tensor, y: torch.Tensor, batches: int = 20) -> float:
    """Tensor operations (aten calls, views included) per mini-batch, by a dispatch hook."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = 0

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            nonlocal calls
            calls += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        for b in range(batches):
            i = 1000 + 10 * b
            trainer.train_batch(x[i : i + 10], y[i : i + 10])
    return calls / batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch and kernel threads")
    p.add_argument("--count-ops", action="store_true", help="count tensor operations instead")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mnist(args.data_dir)
    order = sample_order(60000, 0)
    x, y = data["x_train"][order], data["y_train"][order]
    tile = TileConfig(
        get_device("ecram-liwo3"),
        periphery=AIHWKIT_PERIPHERY,
        update=UpdateParams(max_pulses=31),
        pair=PairMode.REFERENCE,
    )
    trainer = make_trainer(
        "analog-sgd",
        ChipConfig((784, 256, 128, 10), tile, "sigmoid"),
        instances=args.instances,
        seed=0,
        lr=0.05,
    )
    for i in range(0, 1000, 10):  # warm-up
        trainer.train_batch(x[i : i + 10], y[i : i + 10])
    if args.count_ops:
        print(json.dumps({"instances": args.instances, "ops_per_batch": count_ops(trainer, x, y)}))
        return
    spent: dict[str, float] = defaultdict(float)
    done: set[str] = set()
    for label, module, dotted in PHASES:
        found = None if module is None else _resolve(module, dotted)
        if label not in done and found is not None:
            wrap(*found, label, spent)
            done.add(label)
    start, wall = time.process_time(), time.perf_counter()
    for b in range(args.batches):
        i = 1000 + 10 * b
        trainer.train_batch(x[i : i + 10], y[i : i + 10])
    total = time.process_time() - start
    wall = time.perf_counter() - wall
    per_batch = {k: 1e3 * v / args.batches for k, v in spent.items()}
    print(
        json.dumps(
            {
                "instances": args.instances,
                "threads": args.threads,
                "wall_ms_per_batch": round(1e3 * wall / args.batches, 3),
                "cpu_ms_per_batch": round(1e3 * total / args.batches, 3),
                "chip_samples_per_cpu_s": round(10 * args.batches * args.instances / total, 1),
                "phases_cpu_ms_per_batch": {k: round(v, 3) for k, v in per_batch.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
