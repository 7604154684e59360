"""aihwkit 1.1.0 analog SGD on MNIST (or plain torch float SGD): the crossbar peers.

``--rpu ecram``: ``EcRamPreset`` (EcRamPresetDevice, 7-bit DAC, 9-bit ADC, output noise 0.1,
stochastic pulse trains of at most 31); ``constant-step``: ``SingleRPUConfig`` with
``ConstantStepDevice`` and the same periphery presets; ``floating-point``:
``FloatingPointRPUConfig``; ``torch``: ``torch.nn.Linear`` layers and ``torch.optim.SGD``
(runs under any environment). Runs under ``.venv-peers`` (torch 2.12.0, see the Makefile).

    .venv-peers/bin/python benchmarks/peers/crossbar_aihwkit.py --rpu ecram
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from common import load_mnist, parser, report, train_timed
from torch import nn


def rpu_config(name: str) -> Any:
    """The aihwkit tile configuration called ``name``."""
    from aihwkit.simulator.configs import FloatingPointRPUConfig, SingleRPUConfig
    from aihwkit.simulator.configs.devices import ConstantStepDevice
    from aihwkit.simulator.presets import EcRamPreset
    from aihwkit.simulator.presets.utils import PresetIOParameters, PresetUpdateParameters

    if name == "ecram":
        return EcRamPreset()
    if name == "constant-step":
        return SingleRPUConfig(
            device=ConstantStepDevice(),
            forward=PresetIOParameters(),
            backward=PresetIOParameters(),
            update=PresetUpdateParameters(),
        )
    return FloatingPointRPUConfig()


def build(name: str, sizes: list[int], lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The MLP with sigmoid hidden layers and its SGD optimiser."""
    layers: list[nn.Module] = []
    if name == "torch":
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.Sigmoid())
        model = nn.Sequential(*layers)
        return model, torch.optim.SGD(model.parameters(), lr=lr)
    from aihwkit.nn import AnalogLinear, AnalogSequential
    from aihwkit.optim import AnalogSGD

    cfg = rpu_config(name)
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(AnalogLinear(a, b, bias=True, rpu_config=cfg))
        if i < len(sizes) - 2:
            layers.append(nn.Sigmoid())
    model = AnalogSequential(*layers)
    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    return model, opt


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--rpu", choices=["ecram", "constant-step", "floating-point", "torch"], default="ecram"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_mnist(args.data_dir, args.dataset)
    model, opt = build(args.rpu, [784, *args.hidden, 10], args.lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    result = train_timed(step, data, args)
    if not args.no_test:
        model.eval()
        with torch.no_grad():
            pred = torch.cat(
                [model(data["x_test"][i : i + 1000]).argmax(-1) for i in range(0, 10000, 1000)]
            )
        result["test_accuracy"] = float(100 * (pred == data["y_test"]).float().mean())
    result["rpu"] = args.rpu
    report(result)


if __name__ == "__main__":
    main()
