"""The ``insitu`` command line: a thin face over insitu.experiments."""

from __future__ import annotations

import enum
import statistics
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from insitu import __version__
from insitu.cli_devices import devices_app
from insitu.cli_energy import energy
from insitu.cli_lists import algorithms, config_fields
from insitu.cli_options import QuietOption, given_explicitly
from insitu.cli_sweep import sweep
from insitu.errors import ConfigError, InsituError, StorageError

app = typer.Typer(
    help="Train neural networks in situ on simulated analog and neuromorphic hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(devices_app, name="devices")
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"insitu {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """insitu: in-situ training on neuromorphic and analog in-memory hardware."""


def _apply_sets(values: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML)."""
    from insitu.experiments.config import set_dotted

    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set lr=0.05")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as err:
            # PyYAML's own message spans several lines; its problem and column say enough.
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            mark = getattr(err, "problem_mark", None)
            at = f" at character {mark.column + 1}" if mark is not None else ""
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({problem}{at}); "
                "e.g. --set lr=0.05 or --set 'hidden=[64,32]'"
            ) from None
        set_dotted(values, key, value)
    return values


# Options of the commands that start runs, stated once.
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any config field: key.path=value (YAML value)."),
]
ResumeOption = Annotated[
    Path | None,
    typer.Option(help="Continue this interrupted run directory from its last checkpoint."),
]
OutOption = Annotated[
    Path | None, typer.Option(help="Run directory (new or empty); default under runs/.")
]
RunsOption = Annotated[Path, typer.Option(help="Where new run directories go.")]
DataOption = Annotated[
    str | None,
    typer.Option(
        help="Your own data instead of --dataset: module:attribute naming a (train, test) pair "
        "of torch Datasets or DataLoaders, or a function returning one (modules in the working "
        "directory import, as with python -m).",
    ),
]


class _ConfigDefault:
    """A ``train`` option's default: its TrainConfig field's, read when it is needed (a run, or
    --help), so the command line states no default of its own and starts without torch."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> Any:
        from insitu.experiments.config import TrainConfig

        value = TrainConfig.model_fields[self.name].get_default(call_default_factory=True)
        return value.value if isinstance(value, enum.Enum) else value

    def __str__(self) -> str:  # what --help shows
        return str(self())


def _from_config(name: str, help: str) -> Any:
    """A ``train`` option defaulting to the TrainConfig field ``name``."""
    return typer.Option(default_factory=_ConfigDefault(name), help=help)


@app.command()
def train(
    ctx: typer.Context,
    *,
    algorithm: Annotated[
        str, _from_config("algorithm", "Learning rule (see `insitu algorithms`).")
    ],
    device: Annotated[str, _from_config("device", "Device preset (see `insitu devices`).")],
    dataset: Annotated[str, _from_config("dataset", "digits, mnist, fashion-mnist or braille.")],
    hidden: Annotated[
        list[int], _from_config("hidden", "Hidden layer size; repeat for more layers.")
    ],
    activation: Annotated[str, _from_config("activation", "sigmoid, tanh, relu, hard-sigmoid.")],
    epochs: Annotated[int, _from_config("epochs", "Training epochs.")],
    batch_size: Annotated[int, _from_config("batch_size", "Mini-batch size.")],
    lr: Annotated[float, _from_config("lr", "Learning rate.")],
    instances: Annotated[int, _from_config("instances", "Chip instances trained at once.")],
    seed: Annotated[int, _from_config("seed", "Seed of every random draw in the run.")],
    variation: Annotated[
        float | None, typer.Option(help="Device-to-device spread, e.g. 0.1 for 10%.")
    ] = None,
    pair: Annotated[str, _from_config("pair", "differential or reference.")],
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder holding the original dataset files.")
    ] = None,
    out: OutOption = None,
    runs: RunsOption = Path("runs"),
    config: Annotated[
        Path | None, typer.Option(help="YAML config; options given here override it.")
    ] = None,
    set_: SetOption = None,
    data: DataOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train one network and write a run directory (config, metrics, summary, plots).

    Every config field, for --set or a YAML file, with its default and range:
    insitu config.
    """
    if data is not None and given_explicitly(ctx, "dataset"):
        raise ConfigError("give either --dataset NAME or --data module:attribute, not both")
    values = _config_values(config, None, out, [])
    given = {
        "algorithm": algorithm,
        "device": device,
        "dataset": dataset,
        "hidden": hidden,
        "activation": activation,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "instances": instances,
        "seed": seed,
        "variation": variation,
        "pair": pair,
        "data_dir": str(data_dir) if data_dir else None,
    }
    for key, value in given.items():
        # Options left at their defaults do not override the config file.
        if config is None or given_explicitly(ctx, key):
            values[key] = value
    _run(_apply_sets(values, set_ or []), "crossbar", out, runs, None, quiet, data)


def _config_values(
    config: Path | None, resume: Path | None, out: Path | None, sets: list[str]
) -> dict[str, Any]:
    """The fields of ``config`` (or of the run ``resume``'s own config; none: {}), with
    ``sets`` applied."""
    from insitu.experiments.config import read_config_file

    if resume is not None and out is not None:
        raise ConfigError("give either --resume RUN_DIR or --out, not both")
    if config is None and resume is not None:
        if not (resume / "config.yaml").is_file():
            raise ConfigError(f"{resume} is not a run directory (it has no config.yaml)")
        config = resume / "config.yaml"
    values = read_config_file(config) if config is not None else {}
    return _apply_sets(values, sets)


def _run(
    values: dict[str, Any],
    kind: Literal["crossbar", "spiking"] | None,
    out: Path | None,
    runs: Path,
    resume: Path | None,
    quiet: bool,
    data: str | None = None,
) -> None:
    """Run (or resume) ``values`` as a ``kind`` run (None: the kind they say), on the data
    ``data`` names if given, and print how it went."""
    from insitu.experiments.launch import launch

    result = launch(
        values,
        kind=kind,
        out=out,
        runs=runs,
        resume=resume,
        data=data,
        console=err_console,
        progress=not quiet,
    )
    _print_result(result)


def _print_result(result: Any) -> None:
    s = result.summary
    if s.get("test_acc_mean") is None:
        console.print(f"run {s.get('status')}: {s.get('message')}")
        console.print(f"run directory: {result.run_dir}")
        return
    if s.get("kind") == "spiking":
        from insitu.experiments.spiking_run import result_line

        console.print(result_line(result))
        console.print(f"run directory: {result.run_dir}")
        return
    from insitu.experiments.run import accuracy_text

    accuracy = accuracy_text(s)
    exact = s.get("test_exact_reconstruction")
    if exact:  # a task with target patterns: restoring them exactly is what counts
        # The spread over instances as the summary gives test_acc_std: population std.
        restored = f"{100 * statistics.fmean(exact):.2f} ± {100 * statistics.pstdev(exact):.2f} %"
        head = f"exact restoration {restored} of test patterns (class accuracy {accuracy})"
    else:
        head = f"test accuracy {accuracy}"
    console.print(
        f"{head} over {result.config.instances} instance(s); "
        f"device pulses {s['events'].get('device_pulse', 0):.4g}"
    )
    console.print(f"run directory: {result.run_dir}")


@app.command("run")
def run_config(
    config: Annotated[
        Path | None,
        typer.Argument(help="YAML config (optional with --resume: the run's own is used)."),
    ] = None,
    set_: SetOption = None,
    resume: ResumeOption = None,
    out: OutOption = None,
    runs: RunsOption = Path("runs"),
    data: DataOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run one config file: `insitu run CONFIG.yaml [--set k=v ...] [--resume RUN_DIR]`
    (--data MODULE:ATTR: on your own data)."""
    if resume is None and config is None:
        raise ConfigError("give a CONFIG.yaml to run, or --resume RUN_DIR to continue a run")
    values = _config_values(config, resume, out, set_ or [])
    _run(values, None, out, runs, resume, quiet, data)


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="A run directory or a sweep directory.")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file to write; default FOLDER/report.html.")
    ] = None,
) -> None:
    """One self-contained HTML page (plots embedded) of a run or a sweep, viewable offline."""
    from insitu.experiments.report import write_report

    path = write_report(folder, out)
    console.print(f"report: {path}")


@app.command()
def spiking(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config of a spiking run (optional).")
    ] = None,
    set_: SetOption = None,
    resume: ResumeOption = None,
    out: OutOption = None,
    runs: RunsOption = Path("runs"),
    quiet: QuietOption = False,
) -> None:
    """Train a spiking network: in-the-loop on the analog chip, deploy, or software.

    Every config field, for --set or a YAML file, with its default and range:
    insitu config --kind spiking.
    """
    values = _config_values(config, resume, out, set_ or [])
    _run(values, "spiking", out, runs, resume, quiet)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo's runs go.")] = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option(help="A smoke run in seconds: 1 epoch, 1 chip, few samples.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """The three seed systems beside their baselines and the papers' figures, a weight cell on
    ReRAM, energy against a GPU, and one HTML report (embedded data, a few minutes)."""
    from insitu.experiments.demo import quick_settings, run_demo
    from insitu.experiments.run import fresh_dir

    stamp_dir = fresh_dir(out)
    adjust = quick_settings if quick else None
    run_demo(stamp_dir, console=console, progress=not quiet, adjust=adjust)


app.command()(algorithms)
app.command("config")(config_fields)
app.command()(energy)
app.command()(sweep)


def _go_on(err: StorageError) -> str:
    """How to go on after a failed write, judged by what its directory holds."""
    from insitu.experiments.config import load_config
    from insitu.experiments.sweep_runner import SWEEP_FILE

    where = err.directory
    fix = "free space" if err.no_space else f"make {where} writable"
    if (where / "config.yaml").is_file() and not (where / "summary.json").is_file():
        try:
            load_config(where / "config.yaml")  # a crossbar run: those resume
            copy = "" if err.no_space else " (or resume a writable copy of it)"
            return f"{fix}, then `insitu run --resume {where}`{copy}"
        except InsituError:
            pass
    if (where / SWEEP_FILE).is_file():
        return f"{fix}, then run the same sweep with --out {where} (trials that ended are kept)"
    return "free space, then run again" if err.no_space else "choose another --runs/--out"


def _fail(message: str) -> NoReturn:
    # One line however wide the terminal (soft_wrap), the message taken literally (escape).
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(2)


def main() -> None:
    """Console entry point: insitu errors become one clear line and exit status 2."""
    try:
        app()
    except StorageError as err:
        _fail(f"{err}: {_go_on(err)}")
    except InsituError as err:
        _fail(str(err))
    except OSError as err:  # a file fault no check above names
        where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
        _fail(f"{where or 'a file'}: {err.strerror or err}")
