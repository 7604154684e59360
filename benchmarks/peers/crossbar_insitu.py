"""insitu analog-sgd on an ECRAM crossbar chip, set up like aihwkit's EcRamPreset.

One device per weight read against a reference (aihwkit's single-device tile), the
``ecram-liwo3`` preset (aihwkit's EcRamPresetDevice values), 7-bit DAC, 9-bit ADC with output
bound 20 and output noise 0.1 (aihwkit's PresetIOParameters), stochastic pulse trains of at
most 31 slots with dynamic length (PresetUpdateParameters). Runs under the project's ``.venv``.

    .venv/bin/python benchmarks/peers/crossbar_insitu.py [--instances 8] [--update aggregated]
"""

from __future__ import annotations

import torch
from common import load_mnist, parser, report, train_timed

from insitu.algorithms import make_trainer
from insitu.algorithms.base import Trainer
from insitu.devices import get_device
from insitu.hardware import ChipConfig, PairMode, Periphery, TileConfig, UpdateParams

# aihwkit's PresetIOParameters: 7-bit DAC, 9-bit ADC, out_bound 20, out_noise 0.1, noise
# management by the largest input (ABS_MAX).
AIHWKIT_PERIPHERY = Periphery(dac_bits=7, adc_bits=9, output_bound=20.0, output_noise=0.1)


def test_accuracy(trainer: Trainer, data: dict[str, torch.Tensor], instances: int) -> dict:
    """Test-set accuracy (%), mean over instances and per instance."""
    correct = torch.zeros(instances)
    for i in range(0, data["x_test"].shape[0], 1000):
        out = trainer.predict(data["x_test"][i : i + 1000])
        correct += (out.argmax(-1) == data["y_test"][i : i + 1000]).sum(-1)
    acc = 100 * correct / data["x_test"].shape[0]
    return {
        "test_accuracy": float(acc.mean()),
        "test_accuracy_per_instance": [round(float(a), 2) for a in acc],
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--device", default="ecram-liwo3")
    p.add_argument("--update", choices=["sequential", "aggregated"], default="sequential")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mnist(args.data_dir, args.dataset)
    tile = TileConfig(
        get_device(args.device),
        periphery=AIHWKIT_PERIPHERY,
        update=UpdateParams(max_pulses=31, sequential=args.update == "sequential"),
        pair=PairMode.REFERENCE,
    )
    chip = ChipConfig((784, *args.hidden, 10), tile, "sigmoid")
    trainer = make_trainer("analog-sgd", chip, instances=args.instances, seed=args.seed, lr=args.lr)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(trainer.train_batch(x, y).mean())

    result = train_timed(step, data, args, per_step_samples=args.instances)
    if not args.no_test:
        result.update(test_accuracy(trainer, data, args.instances))
    result["instances"] = args.instances
    result["update"] = args.update
    result["device_pulses"] = trainer.log["device_pulse"]
    report(result)


if __name__ == "__main__":
    main()
