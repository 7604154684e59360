"""Your own torch Dataset, trained in situ on a simulated crossbar chip, into a run directory.

Any map-style ``torch.utils.data.Dataset`` (or a ``DataLoader``) of ``(x, y)`` items works:
``x`` a tensor of any shape (flattened into the chip's inputs; scale it into [0, 1]), ``y`` an
integer class. The run records the data's name, origin, sizes and a content hash, and refuses
to resume on other data. Run from the repository root:

    python examples/own_dataset.py                                   # seconds
    insitu train --data examples.own_dataset:make_data --epochs 10   # the same data, CLI
    insitu run --resume RUN_DIR --data examples.own_dataset:make_data  # continue a run
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from insitu.data import from_torch
from insitu.experiments import make_config, train
from insitu.experiments.run import new_run_dir


def lit_rows(n: int, generator: torch.Generator) -> TensorDataset:
    """Your data: ``n`` noisy 5x5 pictures (1, 5, 5), each with one lit row; the class is
    which row (0..4)."""
    y = torch.randint(0, 5, (n,), generator=generator)
    x = 0.4 * torch.rand(n, 1, 5, 5, generator=generator)
    x[torch.arange(n), 0, y, :] = 0.6 + 0.4 * torch.rand(n, 5, generator=generator)
    return TensorDataset(x, y)


def make_data() -> tuple[TensorDataset, TensorDataset]:
    """(train, test): what `insitu train --data examples.own_dataset:make_data` trains on."""
    generator = torch.Generator().manual_seed(0)
    return lit_rows(300, generator), lit_rows(150, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--instances", type=int, default=2, help="chips trained at once")
    parser.add_argument("--device", default="ecram-organic", help="see `insitu devices`")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the run goes")
    args = parser.parse_args()

    cfg = make_config(
        {"epochs": args.epochs, "instances": args.instances, "device": args.device, "hidden": [16]}
    )
    train_set, test_set = make_data()
    data = from_torch(train_set, test_set, name="lit-rows")  # or pass dataset=(train_set, test_set)
    result = train(cfg, new_run_dir(args.runs, cfg, data.name), dataset=data, progress=False)
    print("test accuracy per chip: " + " ".join(f"{a:.3f}" for a in result.final_test_acc))
    print(f"data {result.summary['dataset']!r}, sha256 {result.summary['dataset_sha256']}")
    print(f"run directory: {result.run_dir}")


if __name__ == "__main__":
    main()
