"""How close is the activity-difference update to the true gradient on a real MNIST network?

Trains 784-500-10 (sigmoid, outputs too) with activity-difference-float on 2,000 MNIST images,
then compares, on 20 images, the symmetric-nudging update with the gradient of the settled
network's loss obtained by backpropagating through 200 settling steps (autograd, float64).
Prints cosine similarity and norm ratio per layer for several beta and settling lengths.

    .venv/bin/python benchmarks/ad_gradient_check.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from insitu.algorithms import SoftwareMLP, make_trainer
from insitu.algorithms.activity_difference import contrast_update, settle
from insitu.data import load_dataset
from insitu.experiments import make_config
from insitu.hardware import Activation

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("mnist", data_dir=args.data_dir, limit_train=2000)
    act = Activation.SIGMOID
    opts = {"beta": 0.5, "layer_lr": [2, 1]}
    cfg = make_config({"algorithm": "activity-difference-float", "hidden": [500]})
    trainer = make_trainer(
        "activity-difference-float", cfg.chip_config(784, 10), seed=0, lr=0.2, options=opts
    )
    for i in range(0, 2000, 20):
        trainer.train_batch(ds.x_train[i : i + 20], ds.y_train[i : i + 20])
    ws = [w.double() for w in trainer.model.weights]  # type: ignore[attr-defined]
    x = ds.x_train[:20].double()
    t = torch.eye(10, dtype=torch.float64)[ds.y_train[:20]]
    leaves = [w.clone().requires_grad_() for w in ws]
    s, _ = settle(SoftwareMLP(leaves, act), x, None, 200, output=act)
    loss = 0.5 * (s[-1] - t).pow(2).sum(-1).mean()
    grads = torch.autograd.grad(loss, leaves)
    print("beta  free  nudged  layer  cosine  norm-ratio")
    for beta in (1.0, 0.5, 0.1, 0.01):
        for free_steps, nudged_steps in ((20, 8), (200, 100)):
            net = SoftwareMLP([w.clone() for w in ws], act)
            free, _ = settle(net, x, None, free_steps, output=act)
            plus, _ = settle(net, x, free, nudged_steps, target=t, beta=beta, output=act)
            minus, _ = settle(net, x, free, nudged_steps, target=t, beta=-beta, output=act)
            contrast_update(net, x, plus, minus, 1 / (2 * beta * len(x)))
            for layer, (new, old, g) in enumerate(zip(net.weights, ws, grads, strict=True)):
                est = (new - old).flatten()
                cos = torch.nn.functional.cosine_similarity(est, -g.flatten(), dim=0)
                ratio = est.norm() / g.norm()
                print(
                    f"{beta:<5} {free_steps:<5} {nudged_steps:<7} {layer:<6} "
                    f"{float(cos):.4f}  {float(ratio):.3f}"
                )


if __name__ == "__main__":
    main()
