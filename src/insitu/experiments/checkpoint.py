"""Checkpoints: the full state of a run, written atomically, so a killed run resumes exactly.

A checkpoint holds the trainer (and through it the chip: conductances, device draws, event
counts, generators), the generator of the data order and any other generator of the run (by
name, e.g. the spiking runner's augmentation), the epoch in progress with its order,
batches done and loss summed so far, and the metrics rows written so far. Resuming from it
replays nothing and skips nothing: the run ends bit-identical to one never interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from insitu import atomic
from insitu.errors import ConfigError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1


@dataclass
class EpochProgress:
    """Where a pass over the training set stands: its order, batches done, loss summed so far."""

    perm: torch.Tensor
    batches: int
    losses: torch.Tensor

    def to_dict(self) -> dict[str, Any]:
        return {"perm": self.perm.clone(), "batches": self.batches, "losses": self.losses.clone()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> EpochProgress:
        return cls(state["perm"].clone(), int(state["batches"]), state["losses"].clone())


@dataclass
class Checkpoint:
    """The state of a run after ``step`` training batches.

    ``epochs_done`` epochs are complete; ``progress`` is the epoch after them, partly done
    (None at an epoch boundary).
    """

    config_yaml: str
    step: int
    epochs_done: int
    progress: EpochProgress | None
    trainer: dict[str, Any]
    order: torch.Tensor  # state of the data-order generator
    rows: list[dict[str, float]]
    final_test_acc: list[float]
    elapsed_s: float
    # Events of the evaluations so far and the samples they saw (priced apart from training).
    eval_events: dict[str, float] = field(default_factory=dict)
    eval_samples: int = 0
    # States of the run's further generators, by name (e.g. "augment_shift").
    generators: dict[str, torch.Tensor] = field(default_factory=dict)


def save_checkpoint(run_dir: Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``run_dir/checkpoint.pt`` atomically (a kill leaves the previous one)."""
    path = run_dir / CHECKPOINT_NAME
    state = {
        "format": FORMAT,
        "config_yaml": ckpt.config_yaml,
        "step": ckpt.step,
        "epochs_done": ckpt.epochs_done,
        "progress": None if ckpt.progress is None else ckpt.progress.to_dict(),
        "trainer": ckpt.trainer,
        "order": ckpt.order,
        "rows": ckpt.rows,
        "final_test_acc": ckpt.final_test_acc,
        "elapsed_s": ckpt.elapsed_s,
        "eval_events": ckpt.eval_events,
        "eval_samples": ckpt.eval_samples,
        "generators": ckpt.generators,
    }
    with atomic.atomic_path(path, suffix=".tmp") as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The checkpoint in ``run_dir``; None if it has none. A damaged file raises ConfigError."""
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    try:
        # Only tensors, numbers, text and containers: the safe loader reads it.
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != FORMAT:
            raise ValueError(f"format {state.get('format')!r}, expected {FORMAT}")
        progress = state["progress"]
        return Checkpoint(
            config_yaml=str(state["config_yaml"]),
            step=int(state["step"]),
            epochs_done=int(state["epochs_done"]),
            progress=None if progress is None else EpochProgress.from_dict(progress),
            trainer=state["trainer"],
            order=state["order"],
            rows=[dict(r) for r in state["rows"]],
            final_test_acc=[float(a) for a in state["final_test_acc"]],
            elapsed_s=float(state["elapsed_s"]),
            eval_events=dict(state.get("eval_events", {})),
            eval_samples=int(state.get("eval_samples", 0)),
            generators=dict(state.get("generators", {})),
        )
    except Exception as err:  # any way the file can be unreadable
        raise ConfigError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); "
            "remove it to start the run again"
        ) from None


def remove_stale_temporaries(run_dir: Path, names: tuple[str, ...]) -> None:
    """Delete half-written temporaries of ``names`` that a killed writer left in ``run_dir``.

    :func:`insitu.atomic.atomic_path` names them ``.<name>.<random>``.
    """
    for name in names:
        for tmp in run_dir.glob(f".{name}.*"):
            if tmp.is_file():
                tmp.unlink()
