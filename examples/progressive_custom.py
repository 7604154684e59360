"""Progressive gradient descent on your own network: backprop done in the hardware, layer by
layer, nothing stored (van Doremaele et al., Science Advances 2024).

The network is plain PyTorch; ``convert`` puts its ``nn.Linear`` layers on crossbar tiles,
and ``Progressive`` trains them: for each analog layer in turn (output first), the input is
applied again, the output error is carried down to that layer by transposed reads through the
tiles above it (and by autograd through your activations), and the layer is pulsed at once.
Run from the repository root:

    python examples/progressive_custom.py                   # seconds
    python examples/progressive_custom.py --epochs 10 --instances 8 --order input-first
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from insitu.data import load_dataset
from insitu.nn import Progressive, convert, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--instances", type=int, default=2, help="chips trained at once")
    parser.add_argument("--device", default="ecram-organic", help="see `insitu devices`")
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--order", default="output-first", choices=["output-first", "input-first"])
    parser.add_argument("--limit-train", type=int, default=None, help="use the first N samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset("digits")  # 8x8 handwritten digits, embedded: no download
    x_train, y_train = data.x_train[: args.limit_train], data.y_train[: args.limit_train]

    torch.manual_seed(args.seed)
    net = nn.Sequential(  # your network: any activations between the layers
        nn.Linear(data.n_features, 32),
        nn.ReLU(),
        nn.Linear(32, 16),
        nn.Tanh(),
        nn.Linear(16, data.n_classes),
    )
    model = convert(net, device=args.device, instances=args.instances, seed=args.seed)
    opt = Progressive(model, lr=args.lr, order=args.order)

    order = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(x_train), generator=order).split(args.batch_size):
            opt.step(x_train[idx], y_train[idx], F.cross_entropy)  # pulses only
        with torch.no_grad():
            accuracy = (model(data.x_test).argmax(-1) == data.y_test).float().mean(1)
        print(
            f"epoch {epoch:3d}  test accuracy per chip: " + " ".join(f"{a:.3f}" for a in accuracy)
        )
    counts = events(model)
    print(
        f"{time.perf_counter() - start:.1f} s; device pulses {counts['device_pulse']:.3g}, "
        f"array reads {counts['array_read']:.3g}, stored values "
        f"{counts.get('stored_value', 0.0):.3g}"
    )


if __name__ == "__main__":
    main()
