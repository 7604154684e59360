"""Progressive gradient descent on the example's LeNet-like CNN in exact float arithmetic (no
chip): is the CNN's gap between progressive and backprop the method's own, or the hardware's?

The CNN of ``examples/cnn_digits.py`` on Fashion-MNIST; the same initial weights, image order
and mini-batches for every rule: ``sgd`` (every layer from one forward pass) and
``input-first`` / ``output-first`` progressive (a fresh pass before each layer, only that
layer stepped). Prints test accuracy four times per epoch and, for progressive, the mean
mini-batch loss before the step and after each layer's update, beside the loss after backprop's
step from the same weights (a lower value: the step fits its mini-batch harder).

    .venv/bin/python benchmarks/progressive_float_cnn.py --limit-train 10000 --epochs 3 \\
        --lr 0.1 --lr-decay 0.5 --rules sgd input-first
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.data import load_dataset


def lenet(height: int, width: int, classes: int) -> nn.Module:
    """The example's CNN (one definition: ``examples/cnn_digits.py``)."""
    path = Path(__file__).resolve().parents[1] / "examples" / "cnn_digits.py"
    spec = importlib.util.spec_from_file_location("cnn_digits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net: nn.Module = module.lenet(height, width, classes)
    return net


def weight_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def step(
    net: nn.Module, x: Tensor, y: Tensor, order: list[int] | None, lr: list[float]
) -> list[float]:
    """One step; ``order`` None: backprop. Returns the batch loss before each layer's update
    and after the last (progressive), or before and after (backprop)."""
    layers = weight_layers(net)
    losses = []
    for group in [None] if order is None else order:
        chosen = range(len(layers)) if group is None else [group]
        params = [(k, p) for k in chosen for p in layers[k].parameters()]
        loss = F.cross_entropy(net(x), y)
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, [p for _, p in params])
        with torch.no_grad():
            for (k, p), g in zip(params, grads, strict=True):
                p -= lr[k] * g
    with torch.no_grad():
        losses.append(F.cross_entropy(net(x), y).item())
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=["sgd", "input-first", "output-first"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--lr-decay", type=float, default=1.0, help="lr factor per epoch")
    parser.add_argument("--layer-lr", nargs="+", type=float, default=None, help="inputs first")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--limit-test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="../shared/data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(
        "fashion-mnist", data_dir=args.data_dir, limit_train=args.limit_train,
        limit_test=args.limit_test,
    )  # fmt: skip
    h, w = data.image_shape
    x_train, x_test = data.x_train.view(-1, 1, h, w), data.x_test.view(-1, 1, h, w)
    for rule in args.rules:
        torch.manual_seed(args.seed)
        net = lenet(h, w, data.n_classes)
        n = len(weight_layers(net))
        factors = args.layer_lr or [1.0] * n
        order = {"sgd": None, "input-first": list(range(n)), "output-first": list(range(n))[::-1]}
        images = torch.Generator().manual_seed(args.seed)
        curve: list[list[float]] = []
        trace: list[list[float]] = []
        for epoch in range(args.epochs):
            lr = [args.lr * args.lr_decay**epoch * f for f in factors]
            batches = torch.randperm(len(x_train), generator=images).split(args.batch_size)
            quarter = max(len(batches) // 4, 1)
            curve.append([])
            sums = torch.zeros(n + 2)
            for i, idx in enumerate(batches):
                twin = copy.deepcopy(net) if order[rule] is not None else None
                losses = step(net, x_train[idx], data.y_train[idx], order[rule], lr)
                if twin is not None:  # backprop's step from the same weights
                    losses.append(step(twin, x_train[idx], data.y_train[idx], None, lr)[1])
                    sums += torch.tensor(losses)
                if (i + 1) % quarter == 0:
                    with torch.no_grad():
                        hits = net(x_test).argmax(1) == data.y_test
                    curve[-1].append(round(hits.float().mean().item(), 4))
            trace.append([round(v, 3) for v in (sums / len(batches)).tolist()])
        result = {"rule": rule, "lr": args.lr, "lr_decay": args.lr_decay, "layer_lr": factors,
                  "batch_size": args.batch_size, "test_acc_per_quarter_epoch": curve}  # fmt: skip
        if order[rule] is not None:
            result["batch_loss_before_after_each_layer_and_backprop_after"] = trace
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
