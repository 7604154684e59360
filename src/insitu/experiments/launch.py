"""The command line's runs: config fields in, the run of their kind (crossbar, or spiking where
``kind`` says so) out, new or resumed, on the config's dataset or on data named by an import
path (``--data module:attribute``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from insitu.errors import ConfigError
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
    data: str | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> RunResult[Any, Any]:
    """Validate ``values`` as a ``kind`` run's config (None: the kind ``values`` say, crossbar
    unless ``kind: spiking``), then run it into ``out`` (or a fresh directory under ``runs``),
    or continue the run in ``resume``; on the data ``data`` names
    (:func:`insitu.data.torch_dataset.import_data`; crossbar runs) if given."""
    where = (out, runs, resume)
    if (kind or values.get("kind")) == "spiking":
        if data is not None:
            raise ConfigError(
                "--data gives a crossbar run its data; a spiking run takes its dataset from "
                "its config (insitu config --kind spiking)"
            )
        return _start(SpikingRun(make_spiking_config(values)), *where, None, console, progress)
    crossbar = CrossbarRun(make_config(values))
    dataset = None
    if data is not None:
        from insitu.data.torch_dataset import import_data

        dataset = import_data(data)
    return _start(crossbar, *where, dataset, console, progress)


def _start(
    kind: RunKind[C, T, D],
    out: Path | None,
    runs: Path,
    resume: Path | None,
    dataset: D | None,
    console: Console | None,
    progress: bool,
) -> RunResult[C, T]:
    if resume is not None:
        return run(kind, resume, console=console, progress=progress, dataset=dataset, resume=True)
    name = None if dataset is None else dataset.name
    run_dir = out if out is not None else new_run_dir(runs, kind.config, name)
    return run(kind, run_dir, console=console, progress=progress, dataset=dataset)
