"""Progressive gradient descent in exact float arithmetic (no chip): is a gap to backprop the
method's own, or the hardware's?

Same data, initial weights, sample order and mini-batches (10) for every schedule:
``backprop`` (all layers from one forward pass), ``output-first`` and ``input-first``
progressive (a fresh forward pass before each layer). Weights are clipped to +-1 as on the
differential pairs of the chip. Prints test accuracy per epoch and, for progressive, the ratio
of each lower layer's error norm to the error backprop would have used at the same step (below
1: a smaller effective step, because the layers above already moved toward the target).

    .venv/bin/python benchmarks/progressive_float.py --hidden 256 128 --epochs 5 --lr 0.05
"""

from __future__ import annotations

import argparse
import itertools
import json
import math

import torch
from torch import Tensor

from insitu.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", nargs="+", default=["backprop", "output-first"])
    parser.add_argument("--hidden", nargs="+", type=int, default=[256, 128])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", nargs="+", type=float, default=[0.05])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--layer-lr-scale",
        nargs="+",
        type=float,
        default=None,
        help="backprop only: per-layer factors on lr (input layer first), e.g. the error "
        "ratios progressive measured, to test whether they alone explain its curve",
    )
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset("mnist", data_dir=args.data_dir)
    sizes = [ds.n_features, *args.hidden, ds.n_outputs]
    for schedule in args.schedule:
        for lr in args.lr:
            for seed in args.seeds:
                scale = args.layer_lr_scale or [1.0] * (len(sizes) - 1)
                curve, ratios = train(ds, sizes, schedule, lr, seed, args.epochs, scale)
                print(
                    json.dumps(
                        {
                            "schedule": schedule,
                            "lr": lr,
                            "seed": seed,
                            "layer_lr_scale": scale,
                            "test_acc": [round(a, 4) for a in curve],
                            "error_ratio": [round(r, 3) for r in ratios],
                        }
                    ),
                    flush=True,
                )


def with_bias(x: Tensor) -> Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1)], 1)


def forward(ws: list[Tensor], x: Tensor) -> list[Tensor]:
    acts = [x]
    for k, w in enumerate(ws):
        z = with_bias(acts[-1]) @ w.T
        acts.append(z if k == len(ws) - 1 else torch.sigmoid(z))
    return acts


def errors(ws: list[Tensor], acts: list[Tensor], y: Tensor) -> list[Tensor]:
    """dLoss/d(pre-activation) of every layer (softmax cross-entropy, mean over the batch)."""
    d = torch.softmax(acts[-1], 1)
    d[torch.arange(len(y)), y] -= 1
    ds = [d / len(y)]
    for k in range(len(ws) - 1, 0, -1):
        a = acts[k]
        ds.insert(0, (ds[0] @ ws[k][:, :-1]) * a * (1 - a))
    return ds


def train(
    ds: object,
    sizes: list[int],
    schedule: str,
    lr: float,
    seed: int,
    epochs: int,
    scale: list[float],
) -> tuple[list[float], list[float]]:
    x_tr, y_tr = ds.x_train, ds.y_train  # type: ignore[attr-defined]
    x_te, y_te = ds.x_test, ds.y_test  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(seed)
    ws = []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = math.sqrt(6 / (n_in + n_out))
        w = (2 * torch.rand(n_out, n_in + 1, generator=gen) - 1) * bound
        w[:, -1] = 0
        ws.append(w)
    order = torch.Generator().manual_seed(seed + 1)
    n_layers = len(ws)
    curve: list[float] = []
    ratio_sum = [0.0] * n_layers
    ratio_n = 0
    for _ in range(epochs):
        perm = torch.randperm(len(y_tr), generator=order)
        for start in range(0, len(y_tr), 10):
            idx = perm[start : start + 10]
            x, y = x_tr[idx], y_tr[idx]
            acts = forward(ws, x)
            ds0 = errors(ws, acts, y)
            if schedule == "backprop":
                for k in range(n_layers):
                    ws[k] -= lr * scale[k] * ds0[k].T @ with_bias(acts[k])
            else:
                layers = (
                    range(n_layers - 1, -1, -1) if schedule == "output-first" else range(n_layers)
                )
                for step, k in enumerate(layers):
                    if step:
                        acts = forward(ws, x)
                        d = errors(ws, acts, y)[k]
                        ratio_sum[k] += float(d.norm() / ds0[k].norm().clamp(min=1e-12))
                    else:
                        d = ds0[k]
                    ws[k] -= lr * d.T @ with_bias(acts[k])
                    ws[k].clamp_(-1, 1)
                ratio_n += 1
            for w in ws:
                w.clamp_(-1, 1)
        out = forward(ws, x_te)[-1]
        curve.append(float((out.argmax(1) == y_te).float().mean()))
    return curve, [r / max(ratio_n, 1) for r in ratio_sum]


if __name__ == "__main__":
    main()
