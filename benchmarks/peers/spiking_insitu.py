"""insitu's spiking trainers on the snnTorch workload: 256-246-10, latency-coded MNIST 16x16.

``--algorithm snn-software`` trains the software model (ideal neurons, hand-written BPTT);
``in-the-loop`` runs every forward pass on the emulated mismatched chip and injects its
measurements. Same encoding, steps, batch, optimiser and sample order as
``snntorch_mnist.py``; insitu's neuron adds a one-step refractory period and a 6-bit weight
range, and its readout loss carries the config's penalties. Runs under the project's ``.venv``.

    .venv/bin/python benchmarks/peers/spiking_insitu.py --algorithm in-the-loop [--epochs 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import DEFAULT_DATA, epochs_timed, report

from insitu.algorithms import make_spiking_trainer
from insitu.experiments.config import make_spiking_config, read_config_file
from insitu.experiments.spiking_run import load_spiking_dataset

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "in_the_loop_mnist.yaml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algorithm", default="snn-software", choices=["snn-software", "in-the-loop"])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000, help="training samples per epoch")
    p.add_argument("--warmup", type=int, default=1024, help="first samples, trained untimed")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-test", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    values = read_config_file(CONFIG)
    values.update(
        algorithm=args.algorithm,
        data_dir=args.data_dir,
        time_steps=args.steps,
        limit_train=args.samples,
        augment_shift=0,
        seed=args.seed,
    )
    values["algorithm_options"] = {**values["algorithm_options"], "lr": args.lr}
    cfg = make_spiking_config(values)
    ds = load_spiking_dataset(cfg)
    trainer = make_spiking_trainer(
        cfg.algorithm,
        cfg.chip_config(ds.n_inputs, ds.n_classes),
        seed=cfg.seed,
        options=cfg.options(),
    )

    def step(idx: torch.Tensor) -> float:
        return float(trainer.train_batch(ds.x_train[idx], ds.y_train[idx]).mean())

    n = ds.x_train.shape[0]
    result = epochs_timed(step, n, args.epochs, args.batch, args.warmup, args.seed)
    if not args.no_test:
        with torch.no_grad():
            pred = torch.cat(
                [
                    trainer.predict(ds.x_test[i : i + 1000]).argmax(-1)[0]
                    for i in range(0, len(ds.y_test), 1000)
                ]
            )
        result["test_accuracy"] = float(100 * (pred == ds.y_test).float().mean())
    report(result)


if __name__ == "__main__":
    main()
