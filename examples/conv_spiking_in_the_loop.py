"""A convolutional front-end feeding a mismatched spiking chip, trained in the loop.

Digits (8x8, bundled: no download) are latency-coded, one spike per pixel. A convolution runs on
every time step and a software LIF layer turns its currents into spikes; those spikes drive the
chip's layers (a spiking hidden layer and a leaky readout), which run on the simulated chip with
fixed-pattern mismatch (``--mismatch``, every sigma) and temporal noise. In the loop
(Cramer et al., PNAS 2022) the chip's measured traces go forward and the model's surrogate
gradient goes back, through the chip layers into the convolution; one Adam trains both.
``--rule deploy`` trains the same network in software (nominal neurons) and then runs the
trained weights on the chip, for comparison. Run from the repository root:

    python examples/conv_spiking_in_the_loop.py                  # seconds
    python examples/conv_spiking_in_the_loop.py --rule deploy
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn

from insitu.algorithms.spiking import readout_scores, spiking_loss
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.data import load_dataset
from insitu.data.encoders import latency_encode
from insitu.hardware.spiking import NeuronParams, SpikingChipConfig, SpikingLayerConfig
from insitu.nn import LIF, ChipSNN, PerStep, events, nominal_params


def front_end(channels: int, neuron: NeuronParams, gain: float) -> nn.Module:
    """Convolution on every step of (B, T, 1, 8, 8) spikes, then software LIF neurons:
    (B, T, channels * 6 * 6) spikes. ``gain`` scales the initial kernels so the LIF layer
    spikes from the start (one latency spike per pixel is a weak drive)."""
    conv = nn.Conv2d(1, channels, 3, bias=False)  # a bias would drive spikes without input
    with torch.no_grad():
        conv.weight.mul_(gain)
    return nn.Sequential(PerStep(conv), PerStep(nn.Flatten()), LIF(nominal_params(neuron)))


def time_major(readout: Tensor, hidden: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """(I, B, T, N) as the trainers' loss reads it, (T, I, B, N)."""
    return readout.permute(2, 0, 1, 3), [z.permute(2, 0, 1, 3) for z in hidden]


@torch.no_grad()
def test_accuracy(
    front: nn.Module, chip: ChipSNN, x: Tensor, y: Tensor, options: SpikingOptions
) -> Tensor:
    """Share of samples classified right, per chip."""
    readout = chip(front(x))
    scores = readout_scores(readout.permute(2, 0, 1, 3), options)  # (I, B, classes)
    return (scores.argmax(-1) == y).float().mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rule", default="in-the-loop", choices=["in-the-loop", "deploy"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--instances", type=int, default=2, help="chips trained at once")
    parser.add_argument("--mismatch", type=float, default=0.3, help="every fixed-pattern sigma")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit-train", type=int, default=None, help="use this many images")
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = load_dataset("digits", limit_train=args.limit_train, limit_test=args.limit_test)
    h, w = data.image_shape

    def encode(x: Tensor) -> Tensor:  # one spike per pixel, brighter pixels earlier
        spikes = latency_encode(x, args.time_steps, tau=8.0, threshold=0.2)
        return spikes.view(len(x), args.time_steps, 1, h, w)

    x_train, x_test = encode(data.x_train), encode(data.x_test)

    torch.manual_seed(args.seed)
    neuron = NeuronParams().with_mismatch(args.mismatch)
    front = front_end(args.channels, neuron, gain=5.0)
    config = SpikingChipConfig(
        inputs=args.channels * (h - 2) * (w - 2),
        layers=(
            SpikingLayerConfig(args.hidden),
            # Weaker readout synapses keep its membrane inside the 8-bit ADC's range.
            SpikingLayerConfig(
                data.n_classes, spiking=False, neuron=neuron.replace(synapse_gain=0.0015)
            ),
        ),
        neuron=neuron,
        time_steps=args.time_steps,
    )
    options = SpikingOptions(lr=args.lr, logit_scale=10.0, readout_penalty=0.01)
    chip = ChipSNN(config, instances=args.instances, seed=args.seed, options=options)
    chip.in_the_loop = args.rule == "in-the-loop"  # deploy: train the software model alone
    optimizer = torch.optim.Adam([*front.parameters(), *chip.parameters()], lr=args.lr)
    order = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(x_train), generator=order).split(args.batch_size):
            readout, hidden = chip.run(front(x_train[idx]))
            loss, _ = spiking_loss(*time_major(readout, hidden), data.y_train[idx], options)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if args.rule == "deploy":
            software = test_accuracy(front, chip, x_test, data.y_test, options)
            chip.in_the_loop = True  # the same weights, written to and run on the chip
        accuracy = test_accuracy(front, chip, x_test, data.y_test, options)
        chip.in_the_loop = args.rule == "in-the-loop"
        note = f"  (software {software.mean():.3f})" if args.rule == "deploy" else ""
        print(
            f"epoch {epoch:2d}  {time.perf_counter() - start:6.1f} s  test accuracy per chip: "
            + " ".join(f"{a:.3f}" for a in accuracy)
            + note
        )
    counts = events(nn.Sequential(front, chip))
    print(
        f"mean test accuracy on the chip {accuracy.mean():.3f} over {args.instances} chips "
        f"({args.rule}, mismatch {args.mismatch:g}); chip emulation steps "
        f"{counts['emulation_step']:.3g}, host bytes in {counts['host_bytes_in']:.3g}"
    )


if __name__ == "__main__":
    main()
