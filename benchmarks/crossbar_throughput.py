"""Training throughput of analog-sgd on MNIST 784-256-128-10 with the Li/WO3 ECRAM preset.

Prints JSON: for mini-batch 1 and 10 and for 1 and 8 chip instances, the training samples per
second per chip and in total (instances x samples / s). Real MNIST images from ../shared/data
(or --data-dir); timing starts after a warm-up.

    .venv/bin/python benchmarks/crossbar_throughput.py [--samples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from insitu.algorithms import make_trainer
from insitu.data import load_dataset
from insitu.devices import get_device
from insitu.hardware import ChipConfig, TileConfig, UpdateParams

ROOT = Path(__file__).resolve().parents[1]


def measure(
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    instances: int,
    samples: int,
    repeats: int,
    sequential: bool,
) -> dict[str, float]:
    """Median training samples/s over ``repeats`` timed passes of ``samples`` samples."""
    tile = TileConfig(get_device("ecram-liwo3"), update=UpdateParams(sequential=sequential))
    cfg = ChipConfig((784, 256, 128, 10), tile, "sigmoid")
    trainer = make_trainer("analog-sgd", cfg, instances=instances, seed=0, lr=0.05)
    for i in range(0, 20 * batch, batch):  # warm-up
        trainer.train_batch(x[i : i + batch], y[i : i + batch])
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        offset = 1000 + r * samples
        for i in range(offset, offset + samples, batch):
            trainer.train_batch(x[i : i + batch], y[i : i + batch])
        rates.append(samples / (time.perf_counter() - start))
    per_chip = statistics.median(rates)
    return {
        "batch": batch,
        "instances": instances,
        "sequential_updates": sequential,
        "samples_per_s_per_chip": round(per_chip, 1),
        "samples_per_s_total": round(per_chip * instances, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("mnist", data_dir=args.data_dir)
    results = []
    for batch in (1, 10):
        for instances in (1, 8):
            results.append(
                measure(ds.x_train, ds.y_train, batch, instances, args.samples, args.repeats, True)
            )
    results.append(
        measure(ds.x_train, ds.y_train, 10, 8, args.samples, args.repeats, sequential=False)
    )
    out = {
        "workload": "analog-sgd, MNIST 784-256-128-10 sigmoid, ecram-liwo3, lr 0.05",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "results": results,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
