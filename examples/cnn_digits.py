"""A small CNN converted to analog tiles and trained in situ on handwritten digits.

The convolutions run unfolded on crossbar tiles (every image patch is one read through the
array), pooling and ReLU stay digital, and the tiles change only by pulses: ``InSituSGD``
(``--rule analog-sgd``) or progressive gradient descent, layer by layer (``--rule progressive``).
``--rule software`` trains the same network in float, for comparison.
The bundled 8x8 digits need no download; Fashion-MNIST (28x28) is read from its IDX files.
Run from the repository root:

    python examples/cnn_digits.py                      # seconds
    python examples/cnn_digits.py --dataset fashion-mnist --data-dir ../shared/data \\
        --device ecram-liwo3 --update count --rule progressive --order input-first \\
        --epochs 5 --batch-size 20 --lr-decay 0.6      # 85.8 % (benchmarks/RESULTS.md)
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.data import load_dataset
from insitu.hardware import UpdateMode, UpdateParams
from insitu.nn import InSituSGD, Progressive, convert, events, instance_loss


def lenet(height: int, width: int, classes: int) -> nn.Module:
    """A LeNet-like CNN for one-channel images of ``height`` x ``width`` pixels."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (height // 4) * (width // 4), classes),
    )


@torch.no_grad()
def test_accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 500) -> Tensor:
    """Share of images classified right, per chip (evaluated ``chunk`` images at a time)."""
    hits = [
        model(xc).argmax(-1) == yc for xc, yc in zip(x.split(chunk), y.split(chunk), strict=True)
    ]
    return torch.cat(hits, dim=1).float().mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--data-dir", default=None, help="folder holding the IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--instances", type=int, default=2, help="chips trained at once")
    parser.add_argument("--device", default="ecram-organic", help="see `insitu devices`")
    rules = ["analog-sgd", "progressive", "software"]
    parser.add_argument("--rule", default="analog-sgd", choices=rules)
    parser.add_argument(
        "--update",
        default="sequential",
        choices=["sequential", "summed", "count"],
        help="pulsed update of a mini-batch: one stochastic rank-1 update per image patch "
        "(sequential), the patches' stochastic pulses summed per device and applied once "
        "(summed), or aggregated deterministic pulse counts (count)",
    )
    parser.add_argument(
        "--order",
        default="output-first",
        choices=["output-first", "input-first"],
        help="progressive: which analog layer is updated first in each step",
    )
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--lr-decay", type=float, default=1.0, help="lr factor per epoch")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit-train", type=int, default=None, help="use this many images")
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        limit_train=args.limit_train,
        limit_test=args.limit_test,
    )
    h, w = data.image_shape
    x_train = data.x_train.view(-1, 1, h, w)
    x_test = data.x_test.view(-1, 1, h, w)

    torch.manual_seed(args.seed)
    model = lenet(h, w, data.n_classes)
    sgd: torch.optim.Optimizer | None = None
    progressive = None
    if args.rule == "software":  # float weights, one "instance"
        model = nn.Sequential(model, nn.Unflatten(0, (1, -1)))  # outputs (1, batch, classes)
        sgd = torch.optim.SGD(model.parameters(), lr=args.lr)
    else:
        update = UpdateParams(
            mode=UpdateMode.COUNT if args.update == "count" else UpdateMode.STOCHASTIC,
            sequential=args.update == "sequential",
        )
        model = convert(
            model, device=args.device, instances=args.instances, seed=args.seed, update=update
        )
        sgd = InSituSGD(model, lr=args.lr) if args.rule == "analog-sgd" else None
        if args.rule == "progressive":
            progressive = Progressive(model, lr=args.lr, order=args.order)
    # InSituSGD is a torch optimizer: torch's schedulers set its learning rate.
    scheduler = None if sgd is None else torch.optim.lr_scheduler.ExponentialLR(sgd, args.lr_decay)
    order = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(x_train), generator=order).split(args.batch_size):
            if progressive is not None:  # one fresh pass and pulsed update per analog layer
                progressive.step(x_train[idx], data.y_train[idx], F.cross_entropy)
                continue
            assert sgd is not None
            sgd.zero_grad()
            out = model(x_train[idx])  # (instances, batch, classes)
            instance_loss(F.cross_entropy, out, data.y_train[idx]).backward()
            sgd.step()  # pulses on the tiles
        if scheduler is not None:
            scheduler.step()
        if progressive is not None:
            progressive.lr *= args.lr_decay
        accuracy = test_accuracy(model, x_test, data.y_test)
        print(
            f"epoch {epoch:2d}  {time.perf_counter() - start:6.1f} s  test accuracy per chip: "
            + " ".join(f"{a:.3f}" for a in accuracy)
        )
    if args.rule == "software":
        print(f"test accuracy {accuracy.mean():.3f} (float weights)")
        return
    counts = events(model)
    print(
        f"mean test accuracy {accuracy.mean():.3f} over {args.instances} chips; device pulses "
        f"{counts['device_pulse']:.3g}, array reads {counts['array_read']:.3g}"
    )


if __name__ == "__main__":
    main()
