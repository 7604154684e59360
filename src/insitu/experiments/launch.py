"""The command line's runs: config fields in, the run of their kind (crossbar, or spiking where
``kind`` says so) out, new or resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from insitu.experiments.config import make_config, make_spiking_config
from insitu.experiments.crossbar_run import CrossbarRun
from insitu.experiments.run import new_run_dir, run
from insitu.experiments.run_kind import C, D, RunKind, RunResult, T
from insitu.experiments.spiking_run import SpikingRun


def launch(
    values: dict[str, Any],
    *,
    kind: Literal["crossbar", "spiking"] | None = None,
    out: Path | None = None,
    runs: Path = Path("runs"),
    resume: Path | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> RunResult[Any, Any]:
    """Validate ``values`` as a ``kind`` run's config (None: the kind ``values`` say, crossbar
    unless ``kind: spiking``), then run it into ``out`` (or a fresh directory under ``runs``),
    or continue the run in ``resume``."""
    where = (out, runs, resume)
    if (kind or values.get("kind")) == "spiking":
        return _start(SpikingRun(make_spiking_config(values)), *where, console, progress)
    return _start(CrossbarRun(make_config(values)), *where, console, progress)


def _start(
    kind: RunKind[C, T, D],
    out: Path | None,
    runs: Path,
    resume: Path | None,
    console: Console | None,
    progress: bool,
) -> RunResult[C, T]:
    if resume is not None:
        return run(kind, resume, console=console, progress=progress, resume=True)
    run_dir = out if out is not None else new_run_dir(runs, kind.config)
    return run(kind, run_dir, console=console, progress=progress)
