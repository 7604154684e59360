"""What a run is made of, for the runner: the kind of run (a :class:`RunKind`: crossbar or
spiking), the config, data and trainer it works with, and what it produces (:class:`RunResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypedDict, TypeVar

import torch
from pydantic import BaseModel
from rich.console import Console

from insitu.experiments.config import RunConfigBase
from insitu.experiments.data_record import DATA_RECORD
from insitu.hardware import EventLog


class Learner(Protocol):
    """What training and evaluation need of a rule (crossbar or spiking trainers)."""

    instances: int

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...
    def predict(self, x: torch.Tensor) -> torch.Tensor: ...
    def classify(self, out: torch.Tensor) -> torch.Tensor: ...


class RunTrainer(Learner, Protocol):
    """What the loop needs of a trainer besides training it: its events, learning rate,
    end-of-training hook and state (for checkpoints)."""

    @property
    def log(self) -> EventLog: ...
    def set_lr(self, lr: float) -> None: ...
    def finish(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TrainSplit(Protocol):
    """A dataset's training split (image or spike datasets)."""

    @property
    def x_train(self) -> torch.Tensor: ...
    @property
    def y_train(self) -> torch.Tensor: ...


class EvalSplits(TrainSplit, Protocol):
    """A dataset's training and test splits (image or spike datasets)."""

    @property
    def x_test(self) -> torch.Tensor: ...
    @property
    def y_test(self) -> torch.Tensor: ...


class RunData(EvalSplits, Protocol):
    """What the loop needs of a dataset (image or spike datasets)."""

    @property
    def name(self) -> str: ...
    @property
    def n_classes(self) -> int: ...


# The columns of every run's metrics.csv before the kind's own (``wall_s`` comes last), and the
# files every run writes (each atomically) besides the kind's own and its checkpoint.
ACCURACY_FIELDS = (
    "epoch",
    "loss_mean",
    "loss_std",
    "train_acc_mean",
    "train_acc_std",
    "test_acc_mean",
    "test_acc_std",
)
# (``dataset.json`` only where data was given in Python: insitu.experiments.data_record.)
RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "learning_curve.png", DATA_RECORD)

C = TypeVar("C", bound=RunConfigBase)
T = TypeVar("T", bound=RunTrainer)
D = TypeVar("D", bound=RunData)


@dataclass
class RunResult(Generic[C, T]):
    """What a finished (or stopped) run produced."""

    run_dir: Path
    config: C
    rows: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    final_test_acc: list[float] = field(default_factory=list)
    eval_events: dict[str, float] = field(default_factory=dict)  # events of evaluations alone
    setup_events: dict[str, float] = field(default_factory=dict)  # building the trainer
    eval_samples: int = 0  # samples evaluated (train-accuracy subset and test set, per epoch)
    trainer: T | None = None  # the trained rule, for evaluations beyond the run's own


class RunOptions(TypedDict, total=False):
    """How a run is driven (keywords of :func:`insitu.experiments.run.run`)."""

    console: Console | None  # where progress shows; default: standard error
    progress: bool  # progress bars (default True)
    resume: bool  # continue the run in the run directory (default False)
    # Sees each epoch's metrics row once that epoch's checkpoint is saved (a sweep
    # scheduler's per-epoch report, which may end the run there).
    on_epoch: Callable[[dict[str, float]], object] | None


class RunKind(Protocol[C, T, D]):
    """What one kind of run supplies to the loop: its config, data, trainer, metric columns,
    summary fields and figures."""

    config: C
    file_names: tuple[str, ...]  # every file its runs write (each atomically)
    metric_fields: tuple[str, ...]  # the columns of metrics.csv
    eval_chunk: int  # samples evaluated at once
    lr_hint: str  # what to lower when the loss diverges

    def read_config(self, path: Path) -> BaseModel:
        """The config a run directory was started with (to refuse resuming with another)."""
        ...

    def load_data(self) -> D:
        """The config's dataset."""
        ...

    def check_data(self, ds: D) -> None:
        """Refuse data the config cannot train on (before the run directory is touched)."""
        ...

    def build(self, ds: D) -> tuple[T, Learner, dict[str, torch.Generator]]:
        """The trainer, what the loop trains through (the trainer or a view of it), and the
        run's further generators by name (checkpointed with it)."""
        ...

    def base_lr(self, trainer: T) -> float:
        """The learning rate of epoch 1 (``lr_decay`` scales it per epoch)."""
        ...

    def event_columns(self, trainer: T) -> dict[str, float]:
        """The kind's event counts in a metrics row."""
        ...

    def summary_head(self, ds: D) -> dict[str, Any]:
        """The summary's fields naming the run (rule, chip, layers)."""
        ...

    def complete_summary(self, summary: dict[str, Any], result: RunResult[C, T], ds: D) -> None:
        """Add the kind's own fields to ``summary`` (energy, reconstruction, ...)."""
        ...

    def title(self, ds: D) -> str:
        """The learning curve's title."""
        ...

    def write_files(self, result: RunResult[C, T], ds: D) -> None:
        """The kind's own files (figures, weights), written after the learning curve."""
        ...
