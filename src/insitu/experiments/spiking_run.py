"""One spiking training run into a run directory (config, metrics, summary, plots)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from insitu import atomic
from insitu.algorithms.spiking import Deploy, SpikingTrainer, make_spiking_trainer
from insitu.data import SpikeDataset, latency_coded, load_dataset
from insitu.data.encoders import shift_images
from insitu.data.nmnist import load_nmnist
from insitu.data.shd import load_shd
from insitu.energy import energy_report, get_profile, summary_totals
from insitu.errors import ConfigError, DivergenceError
from insitu.experiments import plots
from insitu.experiments.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    EpochProgress,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from insitu.experiments.config import dataset_record
from insitu.experiments.progress import progress_bar
from insitu.experiments.run import (
    _add_difference,
    _check_resumable,
    _stats,
    accuracy,
    accuracy_fields,
    epochs_trained,
    fresh_dir,
    prepare_run_dir,
    read_metrics,
    train_epoch,
    write_metrics,
)
from insitu.experiments.spiking_config import (
    IMAGE_SPIKING_DATASETS,
    SpikingTrainConfig,
    load_spiking_config,
    make_spiking_config,
)
from insitu.hardware import Event

SPIKING_METRIC_FIELDS = (
    "epoch",
    "loss_mean",
    "loss_std",
    "train_acc_mean",
    "train_acc_std",
    "test_acc_mean",
    "test_acc_std",
    "chip_samples",
    "wall_s",
)
# Every file a spiking run writes (each atomically); the checkpoint goes once the run ends.
SPIKING_RUN_FILE_NAMES = (
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "model.pt",
    "learning_curve.png",
    "chip_activity.png",
    CHECKPOINT_NAME,
)


@dataclass
class SpikingRunResult:
    """What a finished (or stopped) spiking run produced."""

    run_dir: Path
    config: SpikingTrainConfig
    rows: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    final_test_acc: list[float] = field(default_factory=list)
    trainer: SpikingTrainer | None = None


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


def new_spiking_run_dir(root: Path, cfg: SpikingTrainConfig) -> Path:
    """A fresh run directory named after the run."""
    sigma = "" if cfg.mismatch is None else f"-sigma{cfg.mismatch:g}"
    return fresh_dir(root, f"{cfg.algorithm}-{cfg.dataset}{sigma}")


def _row(
    epoch: int,
    trainer: SpikingTrainer,
    ds: SpikeDataset,
    losses: torch.Tensor,
    eval_n: int,
    started: float,
) -> tuple[dict[str, float], list[float]]:
    fields, test_acc = accuracy_fields(trainer, ds, losses, eval_n, chunk=1000)
    return {
        "epoch": epoch,
        **fields,
        "chip_samples": trainer.log[Event.EMULATION_STEP] / trainer.config.time_steps,
        "wall_s": time.perf_counter() - started,
    }, test_acc


def run_spiking(
    values: dict[str, Any],
    *,
    out: Path | None = None,
    runs: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> SpikingRunResult:
    """The command line's spiking run: ``values`` validated, then a new run (into ``out`` or
    a fresh directory under ``runs``) or the continuation of ``resume``."""
    cfg = make_spiking_config(values)
    if resume is not None:
        return train_spiking(cfg, resume, console=console, progress=progress, resume=True)
    run_dir = out if out is not None else new_spiking_run_dir(runs, cfg)
    return train_spiking(cfg, run_dir, console=console, progress=progress)


def train_spiking(
    cfg: SpikingTrainConfig,
    run_dir: Path,
    *,
    console: Console | None = None,
    progress: bool = True,
    dataset: SpikeDataset | None = None,
    resume: bool = False,
) -> SpikingRunResult:
    """Train ``cfg`` into ``run_dir`` (which must be new or empty).

    With ``resume``, ``run_dir`` is an earlier run of the same config: a finished one is
    returned as it is, an interrupted one continues from its checkpoint (or from the start if
    it was stopped before its first), ending bit-identical to a run never interrupted.
    """
    console = console or Console(stderr=True)
    if resume:
        _check_resumable(cfg, run_dir, load_spiking_config)
        done = _finished_spiking_run(cfg, run_dir)
        if done is not None:
            return done
    ds = dataset or load_spiking_dataset(cfg)  # data first: a bad file leaves no run dir behind
    if cfg.augment_shift and len(ds.input_shape) < 2:
        raise ConfigError(
            f"augment_shift = {cfg.augment_shift} needs pictures; {ds.name} has input shape "
            f"{ds.input_shape}: set augment_shift to 0"
        )
    ckpt = None
    if resume:
        remove_stale_temporaries(run_dir, SPIKING_RUN_FILE_NAMES)
        ckpt = load_checkpoint(run_dir)
    else:
        run_dir = prepare_run_dir(run_dir, SPIKING_RUN_FILE_NAMES)
        atomic.write_text(run_dir / "config.yaml", cfg.to_yaml(dataset))
    if ckpt is None:  # the header at once: a run stopped early has one
        write_metrics(run_dir / "metrics.csv", [], SPIKING_METRIC_FIELDS)
    chip_cfg = cfg.chip_config(ds.n_inputs, ds.n_classes)
    trainer = make_spiking_trainer(
        cfg.algorithm,
        chip_cfg,
        instances=cfg.instances,
        seed=cfg.seed,
        options=cfg.options(),
    )
    result = SpikingRunResult(run_dir, cfg, trainer=trainer)
    learner = _TrainerView(
        trainer, shape=ds.input_shape, max_shift=cfg.augment_shift, seed=cfg.seed + 2
    )
    order = torch.Generator().manual_seed(cfg.seed + 1)
    n = len(ds.y_train)
    eval_n = min(n, cfg.eval_train_limit or n)
    lr = trainer.options.lr
    started = time.perf_counter()
    status, message = "finished", ""
    eval_events: dict[str, float] = {}  # events of the evaluations alone (priced apart)
    eval_samples = 0
    step, epochs_done, partial = 0, -1, None  # epoch 0: the untrained network, evaluated
    if ckpt is not None:
        trainer.load_state_dict(ckpt.trainer)
        order.set_state(ckpt.order)
        learner.generator.set_state(ckpt.generators["augment_shift"])
        step, epochs_done, partial = ckpt.step, ckpt.epochs_done, ckpt.progress
        result.rows, result.final_test_acc = ckpt.rows, ckpt.final_test_acc
        eval_events, eval_samples = ckpt.eval_events, ckpt.eval_samples
        started -= ckpt.elapsed_s
        write_metrics(run_dir / "metrics.csv", result.rows, SPIKING_METRIC_FIELDS)

    def checkpoint(done: int, at: EpochProgress | None) -> None:
        generators = {"augment_shift": learner.generator.get_state()}
        state = Checkpoint(
            cfg.to_yaml(),
            step,
            done,
            at,
            trainer.state_dict(),
            order.get_state(),
            result.rows,
            result.final_test_acc,
            time.perf_counter() - started,
            eval_events,
            eval_samples,
            generators,
        )
        save_checkpoint(run_dir, state)

    with progress_bar(console, progress) as bar:
        epochs_task = bar.add_task(
            "epochs", total=cfg.epochs, completed=max(epochs_done, 0), info=""
        )
        batch_task = bar.add_task("samples", total=n, info="")
        try:
            for epoch in range(epochs_done + 1, cfg.epochs + 1):
                if epoch == 0:  # no training yet: no loss
                    losses = torch.full((trainer.instances,), math.nan)
                else:
                    trainer.set_lr(lr * cfg.lr_decay ** (epoch - 1))
                    bar.reset(batch_task, total=n)
                    if partial is not None:
                        bar.update(batch_task, completed=min(n, partial.batches * cfg.batch_size))

                    def on_step(at: EpochProgress, done: int = epoch - 1) -> None:
                        nonlocal step
                        step += 1
                        if cfg.checkpoint_every is not None and step % cfg.checkpoint_every == 0:
                            checkpoint(done, at)

                    losses = train_epoch(
                        learner,
                        ds,
                        cfg.batch_size,
                        order,
                        lambda k: bar.advance(batch_task, k),
                        progress=partial,
                        on_step=on_step,
                    )
                    partial = None
                    if not bool(torch.isfinite(losses).all()):
                        raise DivergenceError(
                            f"training diverged in epoch {epoch}: the loss is NaN or infinite; "
                            "lower algorithm_options.lr"
                        )
                mark = trainer.log.counts()
                row, final = _row(epoch, trainer, ds, losses, eval_n, started)
                _add_difference(eval_events, mark, trainer.log.counts())
                eval_samples += eval_n + len(ds.y_test)
                result.rows.append(row)
                result.final_test_acc = final
                write_metrics(run_dir / "metrics.csv", result.rows, SPIKING_METRIC_FIELDS)
                if epoch == 0:
                    continue
                checkpoint(epoch, None)
                info = f"test {row['test_acc_mean']:.4f}  loss {row['loss_mean']:.3f}"
                bar.update(epochs_task, advance=1, info=info)
        except DivergenceError as err:
            status, message = "diverged", str(err)
    trained = epochs_trained(result.rows)
    last = result.rows[-1] if result.rows else {}
    events = trainer.log.counts()
    result.summary = {
        "status": status,
        "message": message,
        "kind": "spiking",
        "algorithm": cfg.algorithm,
        **dataset_record(ds, given=dataset is not None),
        "layers": list(chip_cfg.sizes),
        "mismatch": cfg.mismatch,
        "instances": cfg.instances,
        "epochs_completed": trained,
        "test_acc": result.final_test_acc,
        "test_acc_mean": last.get("test_acc_mean"),
        "test_acc_std": last.get("test_acc_std"),
        "train_acc_mean": last.get("train_acc_mean"),
        "events": events,
        "train_events": {k: v - eval_events.get(k, 0.0) for k, v in events.items()},
        "eval_events": dict(sorted(eval_events.items())),
        "eval_samples": eval_samples,
        "time_steps": cfg.time_steps,
        "wall_s": time.perf_counter() - started,
        "train_samples": n * trained,
        "torch": torch.__version__,
    }
    if isinstance(trainer, Deploy):  # the deploy gap: the same weights in software
        software = accuracy(_TrainerView(trainer, software=True), ds.x_test, ds.y_test, chunk=1000)
        result.summary["software_test_acc"] = software.tolist()
        mean, std = _stats(software)
        result.summary["software_test_acc_mean"] = mean
        result.summary["software_test_acc_std"] = std
    if trainer.chip is not None:  # software runs have no chip events to price
        report = energy_report(
            result.summary,
            profile=get_profile(cfg.energy_profile),
            batch_size=cfg.batch_size,
            time_steps=cfg.time_steps,
        )
        result.summary["energy"] = summary_totals(report)
    with atomic.atomic_path(run_dir / "model.pt", suffix=".pt") as tmp:
        torch.save(trainer.state_dict(), tmp)  # weights, optimiser, chip: for deploy studies
    if result.rows:
        title = f"{cfg.algorithm}, {ds.name} ({cfg.instances} instance(s))"
        plots.learning_curve(
            result.rows,
            title,
            run_dir / "learning_curve.png",
            chance=1.0 / ds.n_classes,
            instances=cfg.instances,
        )
    if trainer.chip is not None:
        chip_activity_figure(trainer, ds.x_test[:8], run_dir / "chip_activity.png")
    # The summary, written last, marks the run done; its checkpoint is no longer needed.
    atomic.write_json(run_dir / "summary.json", result.summary)
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    if status == "diverged":
        raise DivergenceError(f"{message} (metrics so far kept in {run_dir})")
    return result


def _finished_spiking_run(cfg: SpikingTrainConfig, run_dir: Path) -> SpikingRunResult | None:
    """The result of the finished (or diverged) run in ``run_dir``; None if it has not ended."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # killed just after the summary
    test_acc = list(summary.get("test_acc", []))
    return SpikingRunResult(run_dir, cfg, read_metrics(run_dir), summary, test_acc)


def _percent(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f} %"


def result_line(result: SpikingRunResult) -> str:
    """One line for the command line: accuracy over instances (and, for deploy, the software
    accuracy before the chip)."""
    s = result.summary
    if s.get("test_acc_mean") is None:
        return f"run {s.get('status')}: {s.get('message')}"
    chip = f"{100 * s['test_acc_mean']:.2f} ± {100 * s['test_acc_std']:.2f} %"
    if "software_test_acc_mean" in s:
        software = (
            f"{100 * s['software_test_acc_mean']:.2f} ± {100 * s['software_test_acc_std']:.2f} %"
        )
        chip = f"software {software} -> chip {chip}"
    return f"test accuracy {chip} over {result.config.instances} instance(s) ({s['algorithm']})"


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
