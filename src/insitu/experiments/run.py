"""The runner: one loop for every kind of run (crossbar, spiking) into a run directory.

Data, a new run directory (or a resumed one), the trainer, the untrained network's
evaluation (epoch 0), the epochs with a checkpoint every ``checkpoint_every`` batches and at
each epoch's end, the summary and the plots. What differs by kind (data, chip, metric columns,
summary extras, figures) comes from a :class:`RunKind`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from insitu import atomic
from insitu.errors import DivergenceError
from insitu.experiments import plots
from insitu.experiments.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    EpochProgress,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from insitu.experiments.config import RunConfigBase
from insitu.experiments.data_record import DataRecord, check_same_data, summary_fields, write_record
from insitu.experiments.progress import progress_bar
from insitu.experiments.run_dir import (
    check_resumable,
    epochs_trained,
    fresh_dir,
    prepare_run_dir,
    read_metrics,
    write_metrics,
)
from insitu.experiments.run_kind import (
    C,
    D,
    EvalSplits,
    Learner,
    RunKind,
    RunResult,
    T,
    TrainSplit,
)

__all__ = [
    "Learner",
    "RunKind",
    "RunResult",
    "accuracy",
    "accuracy_fields",
    "epochs_trained",
    "finished_run",
    "fresh_dir",
    "new_run_dir",
    "prepare_run_dir",
    "read_metrics",
    "run",
    "train_epoch",
    "write_metrics",
]


def new_run_dir(root: Path, cfg: RunConfigBase, dataset: str | None = None) -> Path:
    """A fresh run directory named after the run (on data named ``dataset`` if given instead
    of the config's; characters other than letters, digits, ``.``, ``_``, ``-`` become ``-``)."""
    return fresh_dir(root, re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.run_name(dataset)))


def accuracy(trainer: Learner, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    """Accuracy per instance, evaluated in chunks (outputs decoded by ``trainer.classify``)."""
    correct = torch.zeros(trainer.instances)
    with torch.no_grad():
        for i in range(0, len(y), chunk):
            out = trainer.predict(x[i : i + chunk])
            hits = trainer.classify(out) == y[i : i + chunk]
            correct += hits.sum(-1).to(torch.float32).cpu()
    return correct / max(len(y), 1)


def stats(t: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) spread over instances."""
    return float(t.mean()), float(t.std(unbiased=False))


def software_accuracy(
    software: Learner, x: torch.Tensor, y: torch.Tensor, chunk: int
) -> dict[str, Any]:
    """Summary fields of a train-then-write rule (transfer, deploy): the test accuracy of its
    software weights before they met the chip, so the gap the chip costs is in the record."""
    acc = accuracy(software, x, y, chunk)
    mean, std = stats(acc)
    return {
        "software_test_acc": acc.tolist(),
        "software_test_acc_mean": mean,
        "software_test_acc_std": std,
    }


def accuracy_text(summary: dict[str, Any]) -> str:
    """The run's test accuracy over instances, after its software accuracy where it has one
    ("software 95.14 ± 0.42 % -> chip 65.28 ± 1.11 %")."""
    chip = f"{100 * summary['test_acc_mean']:.2f} ± {100 * summary['test_acc_std']:.2f} %"
    if summary.get("software_test_acc_mean") is None:
        return chip
    m, s = summary["software_test_acc_mean"], summary["software_test_acc_std"]
    return f"software {100 * m:.2f} ± {100 * s:.2f} % -> chip {chip}"


def accuracy_fields(
    trainer: Learner, ds: EvalSplits, losses: torch.Tensor, eval_n: int, chunk: int = 2000
) -> tuple[dict[str, float], list[float]]:
    """An epoch's loss and train/test accuracy (mean and spread over instances), and the test
    accuracy of every instance. Train accuracy is taken on the first ``eval_n`` samples."""
    train_acc = accuracy(trainer, ds.x_train[:eval_n], ds.y_train[:eval_n], chunk)
    test_acc = accuracy(trainer, ds.x_test, ds.y_test, chunk)
    loss_mean, loss_std = stats(losses)
    tr_mean, tr_std = stats(train_acc)
    te_mean, te_std = stats(test_acc)
    return {
        "loss_mean": loss_mean,
        "loss_std": loss_std,
        "train_acc_mean": tr_mean,
        "train_acc_std": tr_std,
        "test_acc_mean": te_mean,
        "test_acc_std": te_std,
    }, test_acc.tolist()


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


def finished_run(cfg: C, run_dir: Path) -> RunResult[C, Any] | None:
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


def run(
    kind: RunKind[C, T, D],
    run_dir: Path,
    *,
    console: Console | None = None,
    progress: bool = True,
    dataset: D | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict[str, float]], object] | None = None,
) -> RunResult[C, T]:
    """Train ``kind.config`` into ``run_dir`` (which must be new or empty), on ``dataset`` if
    given (else the config's).

    With ``resume``, ``run_dir`` is an earlier run of the same config: a finished one is
    returned as it is, an interrupted one continues from its checkpoint (or from the start if
    it was stopped before its first), ending bit-identical to a run never interrupted.

    A ``dataset`` given is recorded (name, origin, sizes, content hash) in the run directory;
    a resume must be given the same data (equal hash), a run of the config's data none.

    ``on_epoch`` sees each trained epoch's metrics row after its checkpoint is saved, so a run
    ended there (by a sweep's early-stopping scheduler) can be resumed from that epoch.
    """
    cfg = kind.config
    console = console or Console(stderr=True)
    given = None if dataset is None else DataRecord.of(dataset)
    if resume:
        check_resumable(cfg, run_dir, kind.read_config)
        check_same_data(run_dir, given, cfg.dataset)
        done = finished_run(cfg, run_dir)
        if done is not None:
            return done
    # Data first: a missing or corrupted file fails before the run directory holds anything,
    # so the same --out can be used again once the data is there.
    ds = dataset if dataset is not None else kind.load_data()
    kind.check_data(ds)
    ckpt = None
    if resume:
        remove_stale_temporaries(run_dir, kind.file_names)
        ckpt = load_checkpoint(run_dir)
    else:
        run_dir = prepare_run_dir(run_dir, kind.file_names)
        if given is not None:  # before the config: a config without a record means its data
            write_record(run_dir, given)
        atomic.write_text(run_dir / "config.yaml", cfg.to_yaml(given))
    metrics = run_dir / "metrics.csv"
    if ckpt is None:  # the header at once: a run stopped early has one
        write_metrics(metrics, [], kind.metric_fields)
    started = time.perf_counter()
    trainer, learner, generators = kind.build(ds)
    result: RunResult[C, T] = RunResult(run_dir, cfg, trainer=trainer)
    result.setup_events = trainer.log.counts()  # e.g. programming the initial weights
    order = torch.Generator().manual_seed(cfg.seed + 1)
    step, epochs_done, partial = 0, 0, None
    if ckpt is not None:
        trainer.load_state_dict(ckpt.trainer)
        order.set_state(ckpt.order)
        for name, generator in generators.items():
            generator.set_state(ckpt.generators[name])
        step, epochs_done, partial = ckpt.step, ckpt.epochs_done, ckpt.progress
        result.rows, result.final_test_acc = ckpt.rows, ckpt.final_test_acc
        result.eval_events, result.eval_samples = ckpt.eval_events, ckpt.eval_samples
        started -= ckpt.elapsed_s
        write_metrics(metrics, result.rows, kind.metric_fields)

    def checkpoint(done: int, at: EpochProgress | None) -> None:
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
            result.eval_events,
            result.eval_samples,
            {name: generator.get_state() for name, generator in generators.items()},
        )
        save_checkpoint(run_dir, state)

    n = len(ds.y_train)
    eval_n = min(n, cfg.eval_train_limit or n)

    def record(epoch: int, losses: torch.Tensor) -> dict[str, float]:
        # Evaluate, keep the row and its events apart from training's, rewrite metrics.csv.
        mark = trainer.log.counts()
        fields, final_acc = accuracy_fields(trainer, ds, losses, eval_n, kind.eval_chunk)
        row = {
            "epoch": epoch,
            **fields,
            **kind.event_columns(trainer),
            "wall_s": time.perf_counter() - started,
        }
        _add_difference(result.eval_events, mark, trainer.log.counts())
        result.eval_samples += eval_n + len(ds.y_test)
        result.rows.append(row)
        result.final_test_acc = final_acc
        write_metrics(metrics, result.rows, kind.metric_fields)
        return row

    if ckpt is None:  # epoch 0: the untrained chip, before the first checkpoint; no loss yet
        record(0, torch.full((trainer.instances,), float("nan")))
    lr = kind.base_lr(trainer)
    status, message = "finished", ""
    with progress_bar(console, progress) as bar:
        epochs_task = bar.add_task("epochs", total=cfg.epochs, completed=epochs_done, info="")
        batch_task = bar.add_task("samples", total=n, info="")
        try:
            for epoch in range(epochs_done + 1, cfg.epochs + 1):
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
                        f"{kind.lr_hint}"
                    )
                row = record(epoch, losses)
                checkpoint(epoch, None)
                if on_epoch is not None:
                    on_epoch(row)
                info = f"test {row['test_acc_mean']:.4f}  loss {row['loss_mean']:.3f}"
                bar.update(epochs_task, advance=1, info=info)
        except DivergenceError as err:
            status, message = "diverged", str(err)
    result.summary = _summary(kind, result, ds, status, message, started, given)
    if result.rows:
        plots.learning_curve(
            result.rows,
            kind.title(ds),
            run_dir / "learning_curve.png",
            chance=1.0 / ds.n_classes,
            instances=cfg.instances,
        )
    kind.write_files(result, ds)
    # The summary, written last, marks the run done; its checkpoint is no longer needed.
    atomic.write_json(run_dir / "summary.json", result.summary)
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    if status == "diverged":
        raise DivergenceError(f"{message} (metrics so far kept in {run_dir})")
    return result


def _summary(
    kind: RunKind[C, T, D],
    result: RunResult[C, T],
    ds: D,
    status: str,
    message: str,
    started: float,
    given: DataRecord | None,
) -> dict[str, Any]:
    assert result.trainer is not None
    rows = result.rows
    last = rows[-1] if rows else {}
    events = result.trainer.log.counts()
    trained = epochs_trained(rows)
    summary = {
        "status": status,
        "message": message,
        **kind.summary_head(ds),
        **summary_fields(ds, given),
        "instances": result.config.instances,
        "epochs_completed": trained,
        "test_acc": result.final_test_acc,
        "test_acc_mean": last.get("test_acc_mean"),
        "test_acc_std": last.get("test_acc_std"),
        "train_acc_mean": last.get("train_acc_mean"),
        "events": events,
        # Training is everything but the evaluations (setup such as initial programming too).
        "train_events": {k: v - result.eval_events.get(k, 0.0) for k, v in events.items()},
        "eval_events": dict(sorted(result.eval_events.items())),
        "eval_samples": result.eval_samples,
        "wall_s": time.perf_counter() - started,
        "train_samples": len(ds.y_train) * trained,
        "torch": torch.__version__,
    }
    kind.complete_summary(summary, result, ds)
    return summary
