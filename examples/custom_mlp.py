"""Your own MLP on your own tensors, trained in situ on simulated analog tiles.

The network is plain PyTorch; ``convert`` puts its ``nn.Linear`` layers on crossbar tiles
(write-verified to the float weights), ``InSituSGD`` trains them by pulses only, and ``events``
says what the hardware did. Run from the repository root:

    python examples/custom_mlp.py                      # seconds
    python examples/custom_mlp.py --epochs 60 --instances 8 --device ecram-liwo3
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from insitu.nn import InSituSGD, convert, events, instance_loss


def spirals(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Your data: ``n`` points (x, y) in [-1, 1]^2 on three interleaved spiral arms, labelled
    by arm."""
    label = torch.randint(0, 3, (n,), generator=generator)
    r = torch.rand(n, generator=generator)
    angle = 4.0 * r + label * (2 * math.pi / 3) + 0.2 * torch.randn(n, generator=generator)
    return torch.stack([r * angle.cos(), r * angle.sin()], dim=1), label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--instances", type=int, default=2, help="chips trained at once")
    parser.add_argument("--device", default="ecram-organic", help="see `insitu devices`")
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--samples", type=int, default=600, help="training points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = torch.Generator().manual_seed(args.seed)
    x_train, y_train = spirals(args.samples, data)
    x_test, y_test = spirals(300, data)

    torch.manual_seed(args.seed)
    net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    model = convert(net, device=args.device, instances=args.instances, seed=args.seed)
    opt = InSituSGD(model, lr=args.lr)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(x_train), generator=data).split(args.batch_size):
            opt.zero_grad()
            out = model(x_train[idx])  # (instances, batch, 3): one output per chip
            instance_loss(F.cross_entropy, out, y_train[idx]).backward()
            opt.step()  # pulses on the tiles; nothing else touches the devices
        with torch.no_grad():
            accuracy = (model(x_test).argmax(-1) == y_test).float().mean(1)
        print(
            f"epoch {epoch:3d}  test accuracy per chip: " + " ".join(f"{a:.3f}" for a in accuracy)
        )
    counts = events(model)
    print(
        f"{time.perf_counter() - start:.1f} s; device pulses {counts['device_pulse']:.3g}, "
        f"array reads {counts['array_read']:.3g}, ADC conversions {counts['adc_conversion']:.3g}"
    )


if __name__ == "__main__":
    main()
