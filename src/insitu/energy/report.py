"""A run's cost: its event log priced per training sample and per inference, against a GPU.

Works on the plain numbers a finished run records (``summary.json``): the event counts of
training (``train_events``, which include ``setup_events``, the one-off work of building the
trainer such as programming the initial weights) and of evaluation (``eval_events``), the sample
counts, the layer sizes and the number of chip instances. Instances are separate chips working
side by side, so per-sample figures divide by ``instances * samples``. Per training sample is
the steady state (training without setup), so it does not depend on the run's length; the
setup is reported once per chip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from insitu.energy.gpu import H100_SXM, GpuSpec, batches_work, gpu_cost
from insitu.energy.profiles import CostProfile, Priced, price
from insitu.energy.reference import ReferenceAssumption
from insitu.errors import ConfigError


def _per_sample(priced: Priced, chips_x_samples: float) -> dict[str, Any]:
    if chips_x_samples <= 0:
        return {"joules": None, "seconds": None, "by_kind": {}}
    return priced.scaled(1.0 / chips_x_samples).as_dict()


def _ratio(gpu: float, chip: float | None) -> float | None:
    if chip is None or chip <= 0:
        return None
    return gpu / chip


def energy_report(
    summary: Mapping[str, Any],
    *,
    profile: CostProfile,
    batch_size: int,
    gpu: GpuSpec = H100_SXM,
    time_steps: int | None = None,
) -> dict[str, Any]:
    """Energy and time per training sample and per inference, by event kind, and the GPU ratio.

    ``time_steps`` switches the GPU reference from an MLP to a spiking network trained by
    backprop through time. ``summary`` needs ``layers``, ``instances``, ``train_samples`` and
    ``events`` (all events) or ``train_events`` and ``eval_events`` with ``eval_samples``.
    """
    try:
        layers = [int(n) for n in summary["layers"]]
        instances = int(summary["instances"])
        train_samples = float(summary["train_samples"])
        events = summary["events"]
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(
            f"run summary lacks {err}: need layers, instances, train_samples and events "
            "(written by insitu's runner)"
        ) from None
    if instances < 1:
        raise ConfigError(f"instances = {instances}; need >= 1")
    notes: list[str] = []
    if "train_events" in summary:
        train_events = summary["train_events"]
        eval_events = summary.get("eval_events", {})
        eval_samples = float(summary.get("eval_samples", 0))
    else:
        train_events, eval_events, eval_samples = events, {}, 0.0
        notes.append(
            "this summary does not separate training from evaluation events: every event is "
            "charged to training (an overestimate of the training cost)"
        )
    setup_events = summary.get("setup_events", {})
    steady_events = {k: v - setup_events.get(k, 0.0) for k, v in train_events.items()}
    train = price(train_events, profile)
    setup = price(setup_events, profile)
    evaluate = price(eval_events, profile)
    chip_train = _per_sample(price(steady_events, profile), instances * train_samples)
    chip_infer = _per_sample(evaluate, instances * eval_samples)
    gpu_train = gpu_cost(batches_work(1.0, batch_size, layers, time_steps=time_steps), gpu)
    gpu_infer = gpu_cost(
        batches_work(1.0, batch_size, layers, time_steps=time_steps, train=False), gpu
    )
    return {
        "profile": profile.name,
        "profile_description": profile.description,
        "layers": layers,
        "instances": instances,
        "batch_size": batch_size,
        "time_steps": time_steps,
        "train_samples": train_samples,
        "eval_samples": eval_samples,
        "training_total": train.as_dict(),
        "setup_per_chip": setup.scaled(1.0 / instances).as_dict(),
        "evaluation_total": evaluate.as_dict(),
        "per_train_sample": chip_train,
        "per_inference": chip_infer,
        "gpu": {
            "name": gpu.name,
            "peak_flops": gpu.peak_flops,
            "memory_bandwidth": gpu.memory_bandwidth,
            "board_power_w": gpu.board_power_w,
            "utilisation": gpu.utilisation,
            "source": gpu.source,
            "per_train_sample": gpu_train.as_dict(),
            "per_inference": gpu_infer.as_dict(),
        },
        "gpu_over_chip": {
            "train_energy": _ratio(gpu_train.joules, chip_train["joules"]),
            "train_time": _ratio(gpu_train.seconds, chip_train["seconds"]),
            "inference_energy": _ratio(gpu_infer.joules, chip_infer["joules"]),
            "inference_time": _ratio(gpu_infer.seconds, chip_infer["seconds"]),
        },
        "notes": notes,
    }


def summary_totals(report: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers every run's summary.json carries."""
    train, infer = report["per_train_sample"], report["per_inference"]
    return {
        "profile": report["profile"],
        "train_joules": report["training_total"]["joules"],
        "train_seconds_all_instances": report["training_total"]["seconds"],
        "setup_joules_per_chip": report["setup_per_chip"]["joules"],
        "setup_seconds_per_chip": report["setup_per_chip"]["seconds"],
        "joules_per_train_sample": train["joules"],
        "seconds_per_train_sample": train["seconds"],
        "joules_per_inference": infer["joules"],
        "seconds_per_inference": infer["seconds"],
        "gpu": report["gpu"]["name"],
        "gpu_over_chip": dict(report["gpu_over_chip"]),
    }


def reference_range(
    report: Mapping[str, Any], assumptions: Sequence[ReferenceAssumption]
) -> list[dict[str, Any]]:
    """The run's network priced under each assumption set, and each over the chip's cost.

    ``report`` is an :func:`energy_report`; rows keep the order of ``assumptions`` (the presets
    go from the processor's best case to its worst, see insitu.energy.reference)."""
    layers, batch, steps = report["layers"], report["batch_size"], report["time_steps"]
    chip_train = report["per_train_sample"]
    chip_infer = report["per_inference"]
    rows = []
    for a in assumptions:
        train = a.cost(batch, layers, time_steps=steps)
        infer = a.cost(batch, layers, time_steps=steps, train=False)
        rows.append(
            {
                "label": a.label,
                "processor": a.processor.name,
                "utilisation": a.processor.utilisation,
                "batch_size": a.batch_size or batch,
                "source": a.processor.source
                + ("" if a.overhead is None else " " + a.overhead.source),
                "per_train_sample": train.as_dict(),
                "per_inference": infer.as_dict(),
                "over_chip": {
                    "train_energy": _ratio(train.joules, chip_train["joules"]),
                    "train_time": _ratio(train.seconds, chip_train["seconds"]),
                    "inference_energy": _ratio(infer.joules, chip_infer["joules"]),
                    "inference_time": _ratio(infer.seconds, chip_infer["seconds"]),
                },
            }
        )
    return rows
