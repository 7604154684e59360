"""One spiking training run into a run directory (config, metrics, summary, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

import torch
from pydantic import BaseModel

from insitu import atomic
from insitu.algorithms import make_spiking_trainer
from insitu.algorithms.spiking import Deploy, SpikingTrainer
from insitu.data import SpikeDataset, latency_coded, load_dataset
from insitu.data.images import shift_images
from insitu.data.nmnist import load_nmnist
from insitu.data.shd import load_shd
from insitu.data.tonic_source import TONIC_DATASETS, load_tonic
from insitu.energy import energy_report, get_profile, summary_totals
from insitu.errors import ConfigError
from insitu.experiments import plots
from insitu.experiments.checkpoint import CHECKPOINT_NAME
from insitu.experiments.config import (
    IMAGE_SPIKING_DATASETS,
    SpikingTrainConfig,
    load_spiking_config,
)
from insitu.experiments.run import accuracy_text, run, software_accuracy
from insitu.experiments.run_kind import (
    ACCURACY_FIELDS,
    RUN_FILES,
    Learner,
    RunOptions,
    RunResult,
)
from insitu.hardware import Event
from insitu.hardware.spiking import SpikingChipConfig

SPIKING_METRIC_FIELDS = (*ACCURACY_FIELDS, "chip_samples", "wall_s")
# Every file a spiking run writes (each atomically); the checkpoint goes once the run ends.
SPIKING_RUN_FILE_NAMES = (*RUN_FILES, "model.pt", "chip_activity.png", CHECKPOINT_NAME)

SpikingRunResult = RunResult[SpikingTrainConfig, SpikingTrainer]


def load_spiking_dataset(cfg: SpikingTrainConfig) -> SpikeDataset:
    """The run's data as spike trains of ``cfg.time_steps`` steps (bool, to save memory)."""
    if cfg.dataset in IMAGE_SPIKING_DATASETS:
        images = load_dataset(
            cfg.dataset,
            data_dir=cfg.data_dir,
            validation_fraction=0.0,
            seed=cfg.seed,
            limit_train=cfg.limit_train,
            limit_test=cfg.limit_test,
        )
        enc = cfg.encoding
        crop = enc.crop if enc.crop is not None else (2 if cfg.dataset == "mnist" else 0)
        size = enc.size if enc.size is not None else (8 if cfg.dataset == "digits" else 16)
        return latency_coded(
            images,
            time_steps=cfg.time_steps,
            tau=enc.tau,
            threshold=enc.threshold,
            size=(size, size),
            crop=crop,
            dtype=torch.bool,
        )
    if cfg.dataset in TONIC_DATASETS:
        return load_tonic(
            cfg.dataset,
            cfg.data_dir,
            time_steps=cfg.time_steps,
            limit_train=cfg.limit_train,
            limit_test=cfg.limit_test,
            dtype=torch.bool,
            options=cfg.dataset_options,
        )
    loader = load_nmnist if cfg.dataset == "nmnist" else load_shd
    return loader(
        cfg.data_dir,
        time_steps=cfg.time_steps,
        limit_train=cfg.limit_train,
        limit_test=cfg.limit_test,
        dtype=torch.bool,
        **cfg.dataset_options,
    )


class _TrainerView:
    """The trainer as the run drives it: training pictures moved by up to ``max_shift`` pixels
    each way (``augment_shift``; 0 leaves them, and the generator, alone), and predictions by
    the rule itself or, with ``software``, by its software model alone (a deploy run's
    accuracy before the chip)."""

    def __init__(
        self,
        trainer: SpikingTrainer,
        *,
        shape: tuple[int, ...] = (),
        max_shift: int = 0,
        seed: int = 0,
        software: bool = False,
    ) -> None:
        self.trainer = trainer
        self.instances = trainer.instances
        self.shape = shape
        self.max_shift = max_shift
        self.generator = torch.Generator().manual_seed(seed)
        self.software = software

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.max_shift:
            x = shift_images(x, self.shape, self.max_shift, generator=self.generator)
        return self.trainer.train_batch(x, y)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.trainer.software_predict(x) if self.software else self.trainer.predict(x)

    def classify(self, out: torch.Tensor) -> torch.Tensor:
        return self.trainer.classify(out)


class SpikingRun:
    """A spiking rule's run of ``config`` (the runner's :class:`RunKind`)."""

    file_names: tuple[str, ...] = SPIKING_RUN_FILE_NAMES
    metric_fields: tuple[str, ...] = SPIKING_METRIC_FIELDS
    eval_chunk = 1000
    lr_hint = "lower algorithm_options.lr"

    def __init__(self, config: SpikingTrainConfig) -> None:
        self.config = config
        self.chip_config: SpikingChipConfig | None = None

    def read_config(self, path: Path) -> BaseModel:
        return load_spiking_config(path)

    def load_data(self) -> SpikeDataset:
        return load_spiking_dataset(self.config)

    def check_data(self, ds: SpikeDataset) -> None:
        if self.config.augment_shift and len(ds.input_shape) < 2:
            raise ConfigError(
                f"augment_shift = {self.config.augment_shift} needs pictures; {ds.name} has "
                f"input shape {ds.input_shape}: set augment_shift to 0"
            )

    def build(self, ds: SpikeDataset) -> tuple[SpikingTrainer, Learner, dict[str, torch.Generator]]:
        cfg = self.config
        self.chip_config = cfg.chip_config(ds.n_inputs, ds.n_classes)
        trainer = make_spiking_trainer(
            cfg.algorithm,
            self.chip_config,
            instances=cfg.instances,
            seed=cfg.seed,
            options=cfg.options(),
        )
        learner = _TrainerView(
            trainer, shape=ds.input_shape, max_shift=cfg.augment_shift, seed=cfg.seed + 2
        )
        return trainer, learner, {"augment_shift": learner.generator}

    def base_lr(self, trainer: SpikingTrainer) -> float:
        return trainer.options.lr

    def event_columns(self, trainer: SpikingTrainer) -> dict[str, float]:
        return {"chip_samples": trainer.log[Event.EMULATION_STEP] / trainer.config.time_steps}

    def summary_head(self, ds: SpikeDataset) -> dict[str, Any]:
        assert self.chip_config is not None
        return {
            "kind": "spiking",
            "algorithm": self.config.algorithm,
            "layers": list(self.chip_config.sizes),
            "mismatch": self.config.mismatch,
        }

    def complete_summary(
        self, summary: dict[str, Any], result: SpikingRunResult, ds: SpikeDataset
    ) -> None:
        trainer = result.trainer
        assert trainer is not None
        cfg = self.config
        summary["time_steps"] = cfg.time_steps
        if ds.provenance is not None:  # e.g. tonic's version and transform, the files' digest
            summary["dataset_provenance"] = dict(ds.provenance)
        if isinstance(trainer, Deploy):  # the deploy gap: the same weights in software
            view = _TrainerView(trainer, software=True)
            summary.update(software_accuracy(view, ds.x_test, ds.y_test, self.eval_chunk))
        if trainer.chip is not None:  # software runs have no chip events to price
            report = energy_report(
                summary,
                profile=get_profile(cfg.energy_profile),
                batch_size=cfg.batch_size,
                time_steps=cfg.time_steps,
            )
            summary["energy"] = summary_totals(report)

    def title(self, ds: SpikeDataset) -> str:
        cfg = self.config
        return f"{cfg.algorithm}, {ds.name} ({cfg.instances} instance(s))"

    def write_files(self, result: SpikingRunResult, ds: SpikeDataset) -> None:
        trainer = result.trainer
        assert trainer is not None
        with atomic.atomic_path(result.run_dir / "model.pt", suffix=".pt") as tmp:
            torch.save(trainer.state_dict(), tmp)  # weights, optimiser, chip: for deploy studies
        if trainer.chip is not None:
            chip_activity_figure(trainer, ds.x_test[:8], result.run_dir / "chip_activity.png")


def train_spiking(
    cfg: SpikingTrainConfig,
    run_dir: Path,
    *,
    dataset: SpikeDataset | None = None,
    **options: Unpack[RunOptions],
) -> SpikingRunResult:
    """Train the spiking ``cfg`` into ``run_dir`` as :func:`insitu.experiments.crossbar_run.train`
    does a crossbar one; a resumed run ends bit-identical to one never interrupted."""
    return run(SpikingRun(cfg), run_dir, dataset=dataset, **options)


def _percent(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f} %"


def result_line(result: SpikingRunResult) -> str:
    """One line for the command line: accuracy over instances (and, for deploy, the software
    accuracy before the chip)."""
    s = result.summary
    if s.get("test_acc_mean") is None:
        return f"run {s.get('status')}: {s.get('message')}"
    instances = result.config.instances
    return f"test accuracy {accuracy_text(s)} over {instances} instance(s) ({s['algorithm']})"


def chip_activity_figure(trainer: SpikingTrainer, x: torch.Tensor, path: Path) -> Path:
    """Raster of the first hidden layer's spikes on the chip for one input, and measured vs
    modelled membrane traces of a few of its neurons (chip instance 0, same weights)."""
    assert trainer.chip is not None
    trainer.write_chip()
    rec = trainer.chip.run(x)
    membranes, _ = trainer.model.traces(x)
    spikes = rec.spikes[0][0, 0]  # (T, N) of instance 0, sample 0
    measured = rec.membrane[0][0, 0]
    modelled = membranes[0][:, 0, 0]  # (T, N)
    # The neurons that fire most on the chip show the mismatch best.
    active = spikes.sum(0).argsort(descending=True)[:4].tolist()
    params = trainer.config.neuron_params(0)
    return plots.spike_raster_and_traces(spikes, measured, modelled, active, params.threshold, path)
