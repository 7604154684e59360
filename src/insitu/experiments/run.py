"""The runner: one training run into a run directory (config, metrics, summary, plots)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from pydantic import BaseModel
from rich.console import Console

from insitu import atomic
from insitu.algorithms import ChipTrainer, Trainer, make_trainer
from insitu.data import Dataset, load_dataset
from insitu.energy import energy_report, get_profile, profile_for_device, summary_totals
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
from insitu.experiments.config import TrainConfig, dataset_record, load_config
from insitu.experiments.progress import progress_bar
from insitu.hardware import Event, SpikingChip, inspection

METRIC_FIELDS = (
    "epoch",
    "loss_mean",
    "loss_std",
    "train_acc_mean",
    "train_acc_std",
    "test_acc_mean",
    "test_acc_std",
    "device_pulses",
    "array_reads",
    "wall_s",
)
# Every file a run writes (each written atomically); the checkpoint goes once the run ends.
RUN_FILE_NAMES = (
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "learning_curve.png",
    "conductance_histogram.png",
    CHECKPOINT_NAME,
)
# Fields a resumed run may change: where the data lies, how often it checkpoints.
RESUMABLE_CHANGES = frozenset({"data_dir", "checkpoint_every"})


class Learner(Protocol):
    """What the training loop needs of a rule (crossbar or spiking trainers)."""

    instances: int

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def predict(self, x: torch.Tensor) -> torch.Tensor: ...
    def classify(self, out: torch.Tensor) -> torch.Tensor: ...


class TrainSplit(Protocol):
    """A dataset's training split (image or spike datasets)."""

    @property
    def x_train(self) -> torch.Tensor: ...
    @property
    def y_train(self) -> torch.Tensor: ...


@dataclass
class RunResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    config: TrainConfig
    rows: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    final_test_acc: list[float] = field(default_factory=list)
    eval_events: dict[str, float] = field(default_factory=dict)  # events of evaluations alone
    setup_events: dict[str, float] = field(default_factory=dict)  # building the trainer
    eval_samples: int = 0  # samples evaluated (train-accuracy subset and test set, per epoch)
    trainer: Trainer | None = None  # the trained rule, for evaluations beyond the run's own


def fresh_dir(root: Path, suffix: str = "") -> Path:
    """A new, unique, timestamped directory under ``root``: never an existing one."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{suffix}" if suffix else stamp
    atomic.make_dir(root, "--runs")
    for k in range(1000):
        path = root / (base if k == 0 else f"{base}-{k}")
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise atomic.storage_error(err, path) from err
    raise ConfigError(f"could not create a new directory under {root}")


def new_run_dir(root: Path, cfg: TrainConfig) -> Path:
    """A fresh run directory named after the run."""
    return fresh_dir(root, f"{cfg.algorithm}-{cfg.device}-{cfg.dataset}")


def prepare_run_dir(path: Path, names: tuple[str, ...] = RUN_FILE_NAMES) -> Path:
    """Use ``path`` if it is new or empty; refuse to write over an earlier run.

    Half-written temporaries of the run files ``names`` do not count: a run killed while
    writing its first file (a sweep's trial, say) left nothing else, and starts again.
    """
    atomic.make_dir(path, "--out", "a new or empty directory")
    remove_stale_temporaries(path, names)
    if any(path.iterdir()):
        raise ConfigError(
            f"run directory {path} already holds files; choose a new --out (nothing is overwritten)"
        )
    return path


def accuracy(trainer: Learner, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    """Accuracy per instance, evaluated in chunks (outputs decoded by ``trainer.classify``)."""
    correct = torch.zeros(trainer.instances)
    with torch.no_grad():
        for i in range(0, len(y), chunk):
            out = trainer.predict(x[i : i + chunk])
            hits = trainer.classify(out) == y[i : i + chunk]
            correct += hits.sum(-1).to(torch.float32).cpu()
    return correct / max(len(y), 1)


def train_epoch(
    trainer: Learner,
    ds: TrainSplit,
    batch_size: int,
    order: torch.Generator,
    on_batch: Callable[[int], object] | None = None,
    *,
    progress: EpochProgress | None = None,
    on_step: Callable[[EpochProgress], object] | None = None,
) -> torch.Tensor:
    """One pass over the training set in an order drawn from ``order``; mean loss per instance.

    ``progress`` continues a pass begun earlier (from a checkpoint); ``on_step`` sees the
    progress after every batch (to checkpoint it).
    """
    n = len(ds.y_train)
    if progress is None:
        progress = EpochProgress(
            torch.randperm(n, generator=order), 0, torch.zeros(trainer.instances)
        )
    for start in range(progress.batches * batch_size, n, batch_size):
        idx = progress.perm[start : start + batch_size]
        progress.losses += trainer.train_batch(ds.x_train[idx], ds.y_train[idx]).cpu()
        progress.batches += 1
        if on_batch is not None:
            on_batch(len(idx))
        if on_step is not None:
            on_step(progress)
    return progress.losses / max(progress.batches, 1)


def _add_difference(
    acc: dict[str, float], before: dict[str, float], after: dict[str, float]
) -> None:
    """Add the events logged between two snapshots of the counts to ``acc``."""
    for kind, count in after.items():
        acc[kind] = acc.get(kind, 0.0) + count - before.get(kind, 0.0)


def write_metrics(
    path: Path, rows: list[dict[str, float]], fields: tuple[str, ...] = METRIC_FIELDS
) -> None:
    """Write ``rows`` (one per epoch; epoch 0 is the untrained network) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in fields})
    atomic.write_text(path, buf.getvalue())


def _stats(t: torch.Tensor) -> tuple[float, float]:
    return float(t.mean()), float(t.std(unbiased=False))


def train(
    cfg: TrainConfig,
    run_dir: Path,
    *,
    console: Console | None = None,
    progress: bool = True,
    dataset: Dataset | None = None,
    resume: bool = False,
) -> RunResult:
    """Train ``cfg`` into ``run_dir`` (which must be new or empty).

    With ``resume``, ``run_dir`` is an earlier run of the same config: a finished one is
    returned as it is, an interrupted one continues from its checkpoint (or from the start if
    it was stopped before its first).
    """
    console = console or Console(stderr=True)
    if resume:
        _check_resumable(cfg, run_dir)
        done = finished_run(cfg, run_dir)
        if done is not None:
            return done
    # Data first: a missing or corrupted file fails before the run directory holds anything,
    # so the same --out can be used again once the data is there.
    ds = dataset or load_dataset(
        cfg.dataset,
        data_dir=cfg.data_dir,
        validation_fraction=cfg.validation_fraction,
        seed=cfg.seed,
        limit_train=cfg.limit_train,
        limit_test=cfg.limit_test,
        options=cfg.dataset_options,
    )
    ckpt = None
    if resume:
        remove_stale_temporaries(run_dir, RUN_FILE_NAMES)
        ckpt = load_checkpoint(run_dir)
    else:
        run_dir = prepare_run_dir(run_dir)
        atomic.write_text(run_dir / "config.yaml", cfg.to_yaml(dataset))
    if ckpt is None:  # the header at once: a run stopped early has one
        write_metrics(run_dir / "metrics.csv", [])
    torch.manual_seed(cfg.seed)  # nothing should use the global generator; this pins it anyway
    chip_cfg = cfg.chip_config(ds.n_features, ds.n_outputs)
    started = time.perf_counter()
    trainer = make_trainer(
        cfg.algorithm,
        chip_cfg,
        instances=cfg.instances,
        seed=cfg.seed,
        lr=cfg.lr,
        options=cfg.algorithm_options,
        targets=ds.targets,
    )
    result = RunResult(run_dir, cfg, trainer=trainer)
    result.setup_events = trainer.log.counts()  # e.g. programming the initial weights
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, epochs_done, partial = 0, 0, None
    if ckpt is not None:
        trainer.load_state_dict(ckpt.trainer)
        order_gen.set_state(ckpt.order)
        step, epochs_done, partial = ckpt.step, ckpt.epochs_done, ckpt.progress
        result.rows, result.final_test_acc = ckpt.rows, ckpt.final_test_acc
        result.eval_events, result.eval_samples = ckpt.eval_events, ckpt.eval_samples
        started -= ckpt.elapsed_s
        write_metrics(run_dir / "metrics.csv", result.rows)

    def checkpoint(done: int, at: EpochProgress | None) -> None:
        state = Checkpoint(
            cfg.to_yaml(),
            step,
            done,
            at,
            trainer.state_dict(),
            order_gen.get_state(),
            result.rows,
            result.final_test_acc,
            time.perf_counter() - started,
            result.eval_events,
            result.eval_samples,
        )
        save_checkpoint(run_dir, state)

    n = len(ds.y_train)
    eval_n = min(n, cfg.eval_train_limit or n)

    def record(epoch: int, losses: torch.Tensor) -> dict[str, float]:
        # Evaluate, keep the row and its events apart from training's, rewrite metrics.csv.
        mark = trainer.log.counts()
        row, final_acc = _epoch_row(epoch, trainer, ds, losses, eval_n, started)
        _add_difference(result.eval_events, mark, trainer.log.counts())
        result.eval_samples += eval_n + len(ds.y_test)
        result.rows.append(row)
        result.final_test_acc = final_acc
        write_metrics(run_dir / "metrics.csv", result.rows)
        return row

    if ckpt is None:  # epoch 0: the untrained chip, before the first checkpoint; no loss yet
        record(0, torch.full((trainer.instances,), float("nan")))
    status, message = "finished", ""
    with progress_bar(console, progress) as bar:
        epochs_task = bar.add_task("epochs", total=cfg.epochs, completed=epochs_done, info="")
        batch_task = bar.add_task("samples", total=n, info="")
        try:
            for epoch in range(epochs_done + 1, cfg.epochs + 1):
                trainer.set_lr(cfg.lr * cfg.lr_decay ** (epoch - 1))
                bar.reset(batch_task, total=n)
                if partial is not None:
                    bar.update(batch_task, completed=min(n, partial.batches * cfg.batch_size))

                def on_step(at: EpochProgress, done: int = epoch - 1) -> None:
                    nonlocal step
                    step += 1
                    if cfg.checkpoint_every is not None and step % cfg.checkpoint_every == 0:
                        checkpoint(done, at)

                losses = train_epoch(
                    trainer,
                    ds,
                    cfg.batch_size,
                    order_gen,
                    on_batch=lambda k: bar.advance(batch_task, k),
                    progress=partial,
                    on_step=on_step,
                )
                partial = None
                if epoch == cfg.epochs:
                    trainer.finish()
                if not bool(torch.isfinite(losses).all()):
                    raise DivergenceError(
                        f"training diverged in epoch {epoch}: the loss is NaN or infinite; "
                        "lower the learning rate"
                    )
                row = record(epoch, losses)
                checkpoint(epoch, None)
                bar.update(
                    epochs_task,
                    advance=1,
                    info=f"test {row['test_acc_mean']:.3f}  loss {row['loss_mean']:.3f}",
                )
        except DivergenceError as err:
            status, message = "diverged", str(err)
    result.summary = _summary(cfg, trainer, ds, result, status, message, started)
    result.summary.update(dataset_record(ds, given=dataset is not None))
    atomic.write_json(run_dir / "summary.json", result.summary)
    _plots(result, trainer, ds)
    # The summary marks the run done; its checkpoint is no longer needed.
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    if status == "diverged":
        raise DivergenceError(f"{message} (metrics so far kept in {run_dir})")
    return result


def _check_resumable(
    cfg: BaseModel, run_dir: Path, load: Callable[[Path], BaseModel] = load_config
) -> None:
    """Refuse to resume ``run_dir`` with a config other than the one it was started with
    (read by ``load``: crossbar or spiking)."""
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.yaml)")
    saved = load(run_dir / "config.yaml").model_dump()
    given = cfg.model_dump()
    differ = sorted(k for k in given if given[k] != saved.get(k) and k not in RESUMABLE_CHANGES)
    if differ:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {given[k]!r}" for k in differ)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({changes}); start a new run instead"
        )


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``run_dir/metrics.csv`` as numbers."""
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def finished_run(cfg: TrainConfig, run_dir: Path) -> RunResult | None:
    """The result of the finished (or diverged) run in ``run_dir``; None if it has not ended."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # killed just after the summary
    return RunResult(
        run_dir,
        cfg,
        rows=read_metrics(run_dir),
        summary=summary,
        final_test_acc=list(summary.get("test_acc", [])),
    )


class EvalSplits(TrainSplit, Protocol):
    """A dataset's training and test splits (image or spike datasets)."""

    @property
    def x_test(self) -> torch.Tensor: ...
    @property
    def y_test(self) -> torch.Tensor: ...


def accuracy_fields(
    trainer: Learner, ds: EvalSplits, losses: torch.Tensor, eval_n: int, chunk: int = 2000
) -> tuple[dict[str, float], list[float]]:
    """An epoch's loss and train/test accuracy (mean and spread over instances), and the test
    accuracy of every instance. Train accuracy is taken on the first ``eval_n`` samples."""
    train_acc = accuracy(trainer, ds.x_train[:eval_n], ds.y_train[:eval_n], chunk)
    test_acc = accuracy(trainer, ds.x_test, ds.y_test, chunk)
    loss_mean, loss_std = _stats(losses)
    tr_mean, tr_std = _stats(train_acc)
    te_mean, te_std = _stats(test_acc)
    return {
        "loss_mean": loss_mean,
        "loss_std": loss_std,
        "train_acc_mean": tr_mean,
        "train_acc_std": tr_std,
        "test_acc_mean": te_mean,
        "test_acc_std": te_std,
    }, test_acc.tolist()


def _epoch_row(
    epoch: int,
    trainer: Trainer,
    ds: Dataset,
    losses: torch.Tensor,
    eval_n: int,
    started: float,
) -> tuple[dict[str, float], list[float]]:
    fields, test_acc = accuracy_fields(trainer, ds, losses, eval_n)
    counts = trainer.log.counts()
    return {
        "epoch": epoch,
        **fields,
        "device_pulses": counts.get(Event.PULSE, 0.0),
        "array_reads": counts.get(Event.ARRAY_READ, 0.0),
        "wall_s": time.perf_counter() - started,
    }, test_acc


def epochs_trained(rows: list[dict[str, float]]) -> int:
    """Training epochs among metrics ``rows`` (row 0 is the untrained network)."""
    return sum(1 for r in rows if r["epoch"] >= 1)


def _summary(
    cfg: TrainConfig,
    trainer: Trainer,
    ds: Dataset,
    result: RunResult,
    status: str,
    message: str,
    started: float,
) -> dict[str, Any]:
    rows = result.rows
    last = rows[-1] if rows else {}
    events = trainer.log.counts()
    summary = {
        "status": status,
        "message": message,
        "algorithm": cfg.algorithm,
        "device": cfg.device,
        "layers": [ds.n_features, *cfg.hidden, ds.n_outputs],
        "instances": cfg.instances,
        "epochs_completed": epochs_trained(rows),
        "test_acc": result.final_test_acc,
        "test_acc_mean": last.get("test_acc_mean"),
        "test_acc_std": last.get("test_acc_std"),
        "train_acc_mean": last.get("train_acc_mean"),
        "events": events,
        # Training is everything but the evaluations (setup such as initial programming too).
        "train_events": {k: v - result.eval_events.get(k, 0.0) for k, v in events.items()},
        "setup_events": result.setup_events,
        "eval_events": dict(sorted(result.eval_events.items())),
        "eval_samples": result.eval_samples,
        "wall_s": time.perf_counter() - started,
        "train_samples": len(ds.y_train) * epochs_trained(rows),
        **_reconstruction(trainer, ds),
        "torch": torch.__version__,
    }
    summary["energy"] = _energy(cfg, trainer, summary)
    return summary


def _energy(cfg: TrainConfig, trainer: Trainer, summary: dict[str, Any]) -> dict[str, Any]:
    """The run's energy and time totals (insitu.energy), priced by the config's profile or
    the default one for the chip kind."""
    chip = getattr(trainer, "chip", None)
    spiking = isinstance(chip, SpikingChip)
    name = cfg.energy_profile or profile_for_device(cfg.device, spiking=spiking)
    steps = chip.config.time_steps if isinstance(chip, SpikingChip) else None
    if steps is not None:
        summary["time_steps"] = steps  # `insitu energy` reads it: a spiking GPU reference
    report = energy_report(
        summary, profile=get_profile(name), batch_size=cfg.batch_size, time_steps=steps
    )
    return summary_totals(report)


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


def _plots(result: RunResult, trainer: Trainer, ds: Dataset) -> None:
    cfg = result.config
    if result.rows:
        data = result.summary["dataset"]  # the data used, which may be given in Python
        title = f"{cfg.algorithm} on {cfg.device}, {data} ({cfg.instances} instances)"
        plots.learning_curve(
            result.rows,
            title,
            result.run_dir / "learning_curve.png",
            chance=1.0 / ds.n_classes,
            instances=cfg.instances,
        )
    if isinstance(trainer, ChipTrainer):
        layers = [inspection.conductances(t) for t in trainer.chip.tiles]
        plots.conductance_histogram(
            layers, cfg.device_params(), result.run_dir / "conductance_histogram.png"
        )
