"""aihwkit 1.1.0 analog SGD on MNIST (or plain torch float SGD): the crossbar peers.

``--rpu ecram``: ``EcRamPreset`` (EcRamPresetDevice, 7-bit DAC, 9-bit ADC, output noise 0.1,
stochastic pulse trains of at most 31); ``constant-step``: ``SingleRPUConfig`` with
``ConstantStepDevice`` and the same periphery presets; ``floating-point``:
``FloatingPointRPUConfig``; ``torch``: ``torch.nn.Linear`` layers and ``torch.optim.SGD``
(runs under any environment); ``--preset NAME``: any configuration preset of
``aihwkit.simulator.presets`` by its class name (e.g. ``TTv2EcRamPreset``), which replaces
``--rpu``. ``--one-tile`` holds each layer on one analog tile, as insitu does: aihwkit's default
mapping (``max_input_size`` 512) splits the 785-input first layer over two tiles, each with its
own periphery, update and (compound presets) transfers, so a Tiki-Taka layer moves two columns
per transfer instead of one. Runs under ``.venv-peers`` (torch 2.12.0, see the Makefile).

    .venv-peers/bin/python benchmarks/peers/crossbar_aihwkit.py --rpu ecram
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from common import load_mnist, parser, report, train_timed
from torch import nn


def rpu_config(name: str) -> Any:
    """The aihwkit tile configuration called ``name`` (an ``--rpu`` choice or a preset)."""
    from aihwkit.simulator import presets
    from aihwkit.simulator.configs import FloatingPointRPUConfig, SingleRPUConfig
    from aihwkit.simulator.configs.devices import ConstantStepDevice
    from aihwkit.simulator.presets import EcRamPreset
    from aihwkit.simulator.presets.utils import PresetIOParameters, PresetUpdateParameters

    if name == "ecram":
        return EcRamPreset()
    if name.endswith("Preset"):
        if not hasattr(presets, name):
            raise SystemExit(f"no preset {name!r} in aihwkit.simulator.presets")
        return getattr(presets, name)()
    if name == "constant-step":
        return SingleRPUConfig(
            device=ConstantStepDevice(),
            forward=PresetIOParameters(),
            backward=PresetIOParameters(),
            update=PresetUpdateParameters(),
        )
    return FloatingPointRPUConfig()


def build(
    name: str, sizes: list[int], lr: float, analog_bias: bool = False, one_tile: bool = False
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The MLP with sigmoid hidden layers and its SGD optimiser (``one_tile``: no layer split
    over several tiles)."""
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
    if analog_bias:  # the bias as one more analog input column, as insitu's tiles hold it
        cfg.mapping.digital_bias = False
    if one_tile:  # 0: no size limit, a layer is one tile however large
        cfg.mapping.max_input_size = 0
        cfg.mapping.max_output_size = 0
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(AnalogLinear(a, b, bias=True, rpu_config=cfg))
        if i < len(sizes) - 2:
            layers.append(nn.Sigmoid())
    model = AnalogSequential(*layers)
    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    return model, opt


def glorot_init(model: nn.Module) -> None:
    """Glorot-uniform weights and zero biases (insitu's initial weights; the default of both
    torch and aihwkit is uniform within 1/sqrt(fan_in), which starts a sigmoid MLP on a longer
    plateau)."""
    for layer in model.modules():
        if not hasattr(layer, "in_features"):
            continue
        bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
        w = (2 * torch.rand(layer.out_features, layer.in_features) - 1) * bound
        b = torch.zeros(layer.out_features)
        if hasattr(layer, "set_weights"):  # analog: written to the tile (C of a compound)
            layer.set_weights(w, b)
        else:
            with torch.no_grad():
                layer.weight.copy_(w)
                layer.bias.copy_(b)


def main() -> None:
    p = parser(__doc__)
    p.add_argument(
        "--rpu", choices=["ecram", "constant-step", "floating-point", "torch"], default="ecram"
    )
    p.add_argument("--preset", help="an aihwkit.simulator.presets class name (replaces --rpu)")
    p.add_argument("--init", choices=["default", "glorot"], default="default")
    p.add_argument(
        "--analog-bias",
        action="store_true",
        help="bias on the tile (mapping.digital_bias off; aihwkit's default is a digital bias)",
    )
    p.add_argument(
        "--one-tile",
        action="store_true",
        help="each layer on one tile, as insitu holds it (aihwkit splits inputs beyond 512)",
    )
    args = p.parse_args()
    if args.preset:
        args.rpu = args.preset
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_mnist(args.data_dir, args.dataset)
    model, opt = build(args.rpu, [784, *args.hidden, 10], args.lr, args.analog_bias, args.one_tile)
    if args.init == "glorot":
        glorot_init(model)
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
    result["init"] = args.init
    result["analog_bias"] = args.analog_bias
    result["one_tile"] = args.one_tile
    report(result)


if __name__ == "__main__":
    main()
