"""Crossbar runs: what a run of a crossbar rule adds to the runner's loop (image datasets,
the crossbar chip, pulse and read counts per epoch, energy, reconstruction of target patterns,
the conductance histogram)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

import torch
from pydantic import BaseModel

from insitu.algorithms import ChipTrainer, Trainer, make_trainer
from insitu.algorithms.transfer import Transfer
from insitu.data import Dataset, load_dataset
from insitu.data.torch_dataset import as_dataset
from insitu.energy import energy_report, get_profile, profile_for_device, summary_totals
from insitu.experiments import plots
from insitu.experiments.checkpoint import CHECKPOINT_NAME
from insitu.experiments.config import TrainConfig, load_config
from insitu.experiments.run import run, software_accuracy
from insitu.experiments.run_kind import (
    ACCURACY_FIELDS,
    RUN_FILES,
    Learner,
    RunOptions,
    RunResult,
)
from insitu.hardware import Event, inspection

METRIC_FIELDS = (*ACCURACY_FIELDS, "device_pulses", "array_reads", "wall_s")
# Every file a run writes (each written atomically); the checkpoint goes once the run ends.
RUN_FILE_NAMES = (*RUN_FILES, "conductance_histogram.png", CHECKPOINT_NAME)

CrossbarResult = RunResult[TrainConfig, Trainer]


class CrossbarRun:
    """A crossbar rule's run of ``config`` (the runner's :class:`RunKind`)."""

    file_names: tuple[str, ...] = RUN_FILE_NAMES
    metric_fields: tuple[str, ...] = METRIC_FIELDS
    eval_chunk = 2000
    lr_hint = "lower the learning rate"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def read_config(self, path: Path) -> BaseModel:
        return load_config(path)

    def load_data(self) -> Dataset:
        cfg = self.config
        return load_dataset(
            cfg.dataset,
            data_dir=cfg.data_dir,
            validation_fraction=cfg.validation_fraction,
            seed=cfg.seed,
            limit_train=cfg.limit_train,
            limit_test=cfg.limit_test,
            options=cfg.dataset_options,
        )

    def check_data(self, ds: Dataset) -> None:
        pass  # every image dataset fits a crossbar network

    def build(self, ds: Dataset) -> tuple[Trainer, Learner, dict[str, torch.Generator]]:
        cfg = self.config
        torch.manual_seed(cfg.seed)  # nothing should use the global generator; this pins it
        trainer = make_trainer(
            cfg.algorithm,
            cfg.chip_config(ds.n_features, ds.n_outputs),
            instances=cfg.instances,
            seed=cfg.seed,
            lr=cfg.lr,
            options=cfg.algorithm_options,
            targets=ds.targets,
        )
        return trainer, trainer, {}

    def base_lr(self, trainer: Trainer) -> float:
        return self.config.lr

    def event_columns(self, trainer: Trainer) -> dict[str, float]:
        counts = trainer.log.counts()
        return {
            "device_pulses": counts.get(Event.PULSE, 0.0),
            "array_reads": counts.get(Event.ARRAY_READ, 0.0),
        }

    def summary_head(self, ds: Dataset) -> dict[str, Any]:
        cfg = self.config
        return {
            "algorithm": cfg.algorithm,
            "device": cfg.device,
            "layers": [ds.n_features, *cfg.hidden, ds.n_outputs],
        }

    def complete_summary(
        self, summary: dict[str, Any], result: CrossbarResult, ds: Dataset
    ) -> None:
        assert result.trainer is not None
        cfg = self.config
        summary["setup_events"] = result.setup_events
        summary.update(_reconstruction(result.trainer, ds))
        if isinstance(result.trainer, Transfer):  # the transfer gap: its software weights
            software = result.trainer.software
            summary.update(software_accuracy(software, ds.x_test, ds.y_test, self.eval_chunk))
        # The run's energy and time totals (insitu.energy), priced by the config's profile or
        # the default one for the chip's device.
        name = cfg.energy_profile or profile_for_device(cfg.device, spiking=False)
        report = energy_report(summary, profile=get_profile(name), batch_size=cfg.batch_size)
        summary["energy"] = summary_totals(report)

    def title(self, ds: Dataset) -> str:
        cfg = self.config
        return f"{cfg.algorithm} on {cfg.device}, {ds.name} ({cfg.instances} instances)"

    def write_files(self, result: CrossbarResult, ds: Dataset) -> None:
        trainer = result.trainer
        if isinstance(trainer, ChipTrainer):
            layers = [inspection.conductances(t) for t in trainer.chip.tiles]
            plots.conductance_histogram(
                layers, self.config.device_params(), result.run_dir / "conductance_histogram.png"
            )


def _reconstruction(trainer: Trainer, ds: Dataset) -> dict[str, Any]:
    """For datasets with target patterns: the share of test inputs restored exactly."""
    if ds.targets is None:
        return {}
    with torch.no_grad():
        out = trainer.predict(ds.x_test)
    want = ds.targets[ds.y_test].to(out.device) > 0.5
    hits = ((out > 0.5) == want).all(-1).to(torch.float32).cpu()  # (instances, samples)
    # Per class (e.g. per Braille name), mean over instances: the worst class is the claim's test.
    per_class = [float(hits[:, ds.y_test == c].mean()) for c in range(len(ds.targets))]
    return {
        "test_exact_reconstruction": hits.mean(-1).tolist(),
        "test_exact_reconstruction_per_class": per_class,
    }


def train(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    dataset: Dataset | tuple[Any, Any] | None = None,
    **options: Unpack[RunOptions],
) -> CrossbarResult:
    """Train ``cfg`` into ``run_dir`` (new or empty; with ``resume``, an earlier run of the
    same config, finished or not): :func:`insitu.experiments.run.run`.

    ``dataset``: data instead of the config's, an insitu :class:`~insitu.data.Dataset` or a
    pair ``(train, test)`` of torch Datasets or DataLoaders
    (:func:`insitu.data.torch_dataset.from_torch`); recorded with its content hash, which a
    resume must match.
    """
    given = None if dataset is None else as_dataset(dataset)
    return run(CrossbarRun(cfg), run_dir, dataset=given, **options)
