"""``insitu sweep``: a grid or random search, each trial a run directory, on a local process pool
or on Ray Tune (schedulers such as ASHA, random search, resume by ``Tuner.restore``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from insitu.cli_options import QuietOption, given_explicitly
from insitu.errors import ConfigError

console = Console()
err_console = Console(stderr=True)


def sweep(
    ctx: typer.Context,
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML: base, grid/random, seeds.")],
    backend: Annotated[
        str,
        typer.Option(
            help="local (a process pool on this machine) or ray-tune (Ray Tune: schedulers, "
            "random search, resume by Tuner.restore; 'ray' is the same)."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join ('auto': this machine's); none: start one here."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Trials at once (local) or CPUs of a Ray started here; default: all."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Sweep directory; an earlier one of the same sweep is continued."),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Where new sweep directories go.")] = Path(
        "runs/sweeps"
    ),
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the Ray cluster at --address.")
    ] = 30.0,
    scheduler: Annotated[
        str,
        typer.Option(
            help="ray-tune: fifo (every trial to its end) or asha (stop trials whose metric "
            "trails the others' at the same epoch)."
        ),
    ] = "fifo",
    grace_period: Annotated[
        int, typer.Option(help="asha: epochs every trial trains before it can be stopped.")
    ] = 1,
    reduction_factor: Annotated[
        float, typer.Option(help="asha: about 1/this of the trials pass each rung.")
    ] = 4.0,
    brackets: Annotated[int, typer.Option(help="asha: brackets of rungs.")] = 1,
    num_samples: Annotated[
        int | None,
        typer.Option(
            help="ray-tune: random search, this many points drawn by Tune from the sweep's "
            "fields (grid lists as choices), each with every seed; default: the sweep's trials."
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Run a sweep: every trial a run directory; results as SQLite and CSV; plots per field."""
    from insitu.experiments.run import fresh_dir
    from insitu.experiments.sweep import read_sweep
    from insitu.experiments.sweep_runner import backend_name, run_sweep, sweep_trials
    from insitu.experiments.sweep_tune import TuneOptions

    on_tune = backend_name(backend) == "ray-tune"  # also names an unknown backend
    if address is not None and not on_tune:
        raise ConfigError("--address joins a Ray cluster: use it with --backend ray-tune")
    tune_names = ("scheduler", "grace_period", "reduction_factor", "brackets", "num_samples")
    given = [n for n in tune_names if given_explicitly(ctx, n)]
    if given and not on_tune:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"{flag} is a Ray Tune option: use it with --backend ray-tune")
    options = TuneOptions(scheduler, grace_period, reduction_factor, brackets, num_samples)
    tune = options if on_tune else None
    spec, base = read_sweep(sweep_file)
    sweep_trials(spec, base, backend, tune)  # every trial validated before a directory is made
    sweep_dir = out if out is not None else fresh_dir(runs, spec.name)
    result = run_sweep(
        spec,
        base,
        sweep_dir,
        backend=backend,
        address=address,
        workers=workers,
        console=err_console,
        progress=not quiet,
        connect_timeout_s=connect_timeout,
        tune=tune,
    )
    table = Table(title=f"{spec.name}: {len(result.rows)} trials ({result.wall_s:.1f} s)")
    shown = ["trial", "seed", *spec.swept, "status", spec.metric]
    for col in shown:
        table.add_column(col)
    for row in result.rows:
        value = row.get(spec.metric)
        cells = [str(row.get(c)) for c in shown[:-1]]
        table.add_row(*cells, "" if value is None else f"{value:.4g}")
    console.print(table)
    failed = [r for r in result.rows if r["status"] == "failed"]
    for row in failed:
        console.print(f"[red]{row['trial']} failed:[/] {row['error']}")
    console.print(f"sweep directory: {sweep_dir}")
