"""The ``insitu`` command line: a thin face over insitu.experiments."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from insitu import __version__
from insitu.errors import ConfigError, InsituError, StorageError

app = typer.Typer(
    help="Train neural networks in situ on simulated analog and neuromorphic hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
devices_app = typer.Typer(
    help="Device presets: list them, plot their pulse response, fit one to measurements."
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


@app.command()
def train(
    ctx: typer.Context,
    algorithm: Annotated[str, typer.Option(help="Learning rule (see `insitu algorithms`).")] = (
        "analog-sgd"
    ),
    device: Annotated[str, typer.Option(help="Device preset (see `insitu devices`).")] = (
        "ecram-organic"
    ),
    dataset: Annotated[
        str, typer.Option(help="digits, mnist, fashion-mnist or braille.")
    ] = "digits",
    hidden: Annotated[
        list[int] | None, typer.Option(help="Hidden layer size; repeat for more layers.")
    ] = None,
    activation: Annotated[str, typer.Option(help="sigmoid, tanh, relu, hard-sigmoid.")] = (
        "sigmoid"
    ),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 10,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.1,
    instances: Annotated[int, typer.Option(help="Chip instances trained at once.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of every random draw in the run.")] = 0,
    variation: Annotated[
        float | None, typer.Option(help="Device-to-device spread, e.g. 0.1 for 10%.")
    ] = None,
    pair: Annotated[str, typer.Option(help="differential or reference.")] = "differential",
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder holding the original dataset files.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (new or empty); default under runs/.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Where new run directories go.")] = Path("runs"),
    config: Annotated[
        Path | None, typer.Option(help="YAML config; options given here override it.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: key.path=value (YAML value)."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train one network and write a run directory (config, metrics, summary, plots).

    Every config field, for --set or a YAML file, with its default and range:
    insitu config.
    """
    from insitu.experiments import make_config
    from insitu.experiments import train as run_train
    from insitu.experiments.config import read_config_file
    from insitu.experiments.run import new_run_dir

    values: dict[str, Any] = {}
    if config is not None:
        values.update(read_config_file(config))
    given = {
        "algorithm": algorithm,
        "device": device,
        "dataset": dataset,
        "hidden": hidden or [32],
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
        if config is None or _explicit(ctx, key):
            values[key] = value
    values = _apply_sets(values, set_ or [])
    cfg = make_config(values)
    run_dir = out if out is not None else new_run_dir(runs, cfg)
    result = run_train(cfg, run_dir, console=err_console, progress=not quiet)
    _print_result(result)


def _print_result(result: Any) -> None:
    s = result.summary
    if s.get("test_acc_mean") is None:
        console.print(f"run {s.get('status')}: {s.get('message')}")
        console.print(f"run directory: {result.run_dir}")
        return
    accuracy = f"{100 * s['test_acc_mean']:.2f} ± {100 * s['test_acc_std']:.2f} %"
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
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: key.path=value (YAML value)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue this interrupted run directory from its last checkpoint."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (new or empty); default under runs/.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Where new run directories go.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Run one config file: `insitu run CONFIG.yaml [--set k=v ...] [--resume RUN_DIR]`."""
    from insitu.experiments import make_config
    from insitu.experiments import train as run_train
    from insitu.experiments.config import read_config_file
    from insitu.experiments.run import new_run_dir

    if resume is not None and out is not None:
        raise ConfigError("give either --resume RUN_DIR or --out, not both")
    if config is None and resume is None:
        raise ConfigError("give a CONFIG.yaml to run, or --resume RUN_DIR to continue a run")
    if config is None:
        assert resume is not None
        if not (resume / "config.yaml").is_file():
            raise ConfigError(f"{resume} is not a run directory (it has no config.yaml)")
        config = resume / "config.yaml"
    values = _apply_sets(read_config_file(config), set_ or [])
    if values.get("kind") == "spiking":  # a spiking run's config (and run directory)
        from insitu.experiments.spiking_run import result_line, run_spiking

        spiking_result = run_spiking(
            values, out=out, runs=runs, resume=resume, console=err_console, progress=not quiet
        )
        console.print(result_line(spiking_result))
        console.print(f"run directory: {spiking_result.run_dir}")
        return
    cfg = make_config(values)
    if resume is not None:
        result = run_train(cfg, resume, console=err_console, progress=not quiet, resume=True)
    else:
        run_dir = out if out is not None else new_run_dir(runs, cfg)
        result = run_train(cfg, run_dir, console=err_console, progress=not quiet)
    _print_result(result)


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML: base, grid/random, seeds.")],
    backend: Annotated[
        str, typer.Option(help="local (a process pool on this machine) or ray.")
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
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Run a sweep: every trial a run directory; results as SQLite and CSV; plots per field."""
    from insitu.experiments.run import fresh_dir
    from insitu.experiments.sweep import expand, read_sweep
    from insitu.experiments.sweep_runner import run_sweep

    if address is not None and backend != "ray":
        raise ConfigError("--address joins a Ray cluster: use it with --backend ray")
    spec, base = read_sweep(sweep_file)
    expand(spec, base)  # every trial validated before a directory is made
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


def _explicit(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


@app.command()
def spiking(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config of a spiking run (optional).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config field: key.path=value (YAML value)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue this interrupted run directory from its last checkpoint."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (new or empty); default under runs/.")
    ] = None,
    runs: Annotated[Path, typer.Option(help="Where new run directories go.")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Train a spiking network: in-the-loop on the analog chip, deploy, or software.

    Every config field, for --set or a YAML file, with its default and range:
    insitu config --kind spiking.
    """
    if resume is not None:  # `insitu run` resumes, routed by the config's kind
        run_config(config, ["kind=spiking", *(set_ or [])], resume, out, runs, quiet)
        return
    from insitu.experiments.config import read_config_file
    from insitu.experiments.spiking_run import result_line, run_spiking

    values = read_config_file(config) if config is not None else {}
    values = _apply_sets(values, set_ or [])
    result = run_spiking(values, out=out, runs=runs, console=err_console, progress=not quiet)
    console.print(result_line(result))
    console.print(f"run directory: {result.run_dir}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo's runs go.")] = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option(help="A smoke run in seconds: 1 epoch, 1 chip, few samples.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """The three seed systems beside their baselines and the papers' figures, energy against a
    GPU, and one HTML report (embedded data, a few minutes)."""
    from insitu.experiments.demo import quick_settings, run_demo
    from insitu.experiments.run import fresh_dir

    stamp_dir = fresh_dir(out)
    adjust = quick_settings if quick else None
    run_demo(stamp_dir, console=console, progress=not quiet, adjust=adjust)


@app.command()
def algorithms() -> None:
    """List the learning rules."""
    from insitu.algorithms import ALGORITHMS
    from insitu.algorithms.spiking import SPIKING_ALGORITHMS

    table = Table(title="algorithms")
    table.add_column("name")
    table.add_column("command")
    table.add_column("what it does")
    for name in sorted(ALGORITHMS):
        table.add_row(name, "train", ALGORITHMS[name].description)
    for name in sorted(SPIKING_ALGORITHMS):
        table.add_row(name, "spiking", SPIKING_ALGORITHMS[name].description)
    console.print(table)


@app.command("config")
def config_fields(
    kind: Annotated[
        str, typer.Option(help="crossbar (insitu train, insitu run) or spiking (insitu spiking).")
    ] = "crossbar",
) -> None:
    """Every config field (a YAML key, or --set NAME=VALUE): type, default, allowed values."""
    from pydantic import BaseModel

    from insitu.experiments.config import TrainConfig, field_docs
    from insitu.experiments.spiking_config import SpikingTrainConfig

    models: dict[str, type[BaseModel]] = {"crossbar": TrainConfig, "spiking": SpikingTrainConfig}
    if kind not in models:
        raise ConfigError(f"--kind {kind!r}: expected crossbar or spiking")
    table = Table(title=f"fields of a {kind} run config", box=box.SIMPLE_HEAD)
    table.add_column("field", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("default", overflow="fold")
    table.add_column("allowed", overflow="fold")
    docs = field_docs(models[kind])
    for doc in docs:
        table.add_row(*(escape(cell) for cell in doc))  # "list[int]" is not rich markup
    console.print(table)
    nested = next(d for d in docs if "." in d.name)
    console.print(
        escape("Ranges: [ ] include the bound, ( ) exclude it. Set a field as a YAML key or")
        + f" with --set NAME=VALUE, e.g. --set {nested.name}={nested.default}"
    )


@app.command()
def energy(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A finished run directory (holds summary.json).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Cost profile; default: the one for the run's chip.")
    ] = None,
    gpu: Annotated[str, typer.Option(help="GPU reference: h100 or h100-fp32.")] = "h100",
    out: Annotated[
        Path | None, typer.Option(help="Folder for the report files; default: the run dir.")
    ] = None,
    profiles: Annotated[
        bool,
        typer.Option(
            "--profiles",
            help="List the cost profiles; with --profile NAME, its every price and source.",
        ),
    ] = False,
) -> None:
    """Energy and time of a run per training sample and per inference, against a GPU."""
    if profiles:
        if profile is None:
            _print_profiles()
        else:
            _print_profile(profile)
        return
    if run_dir is None:
        raise ConfigError("give a run directory (insitu energy RUN_DIR) or --profiles")
    from insitu.experiments.energy import run_energy_report

    report, json_path, png_path = run_energy_report(run_dir, profile=profile, gpu=gpu, out=out)
    _print_energy(report)
    console.print(f"saved {json_path} and {png_path}")


def _print_profiles() -> None:
    from insitu.energy import PROFILES

    table = Table(title="energy cost profiles", box=box.SIMPLE_HEAD)
    table.add_column("name", no_wrap=True)
    table.add_column("for runs", no_wrap=True)
    table.add_column("chip", overflow="fold")
    for name, prof in sorted(PROFILES.items()):
        table.add_row(name, prof.chip_kind, prof.description)
    console.print(table)
    console.print("every price with its source: insitu energy --profiles --profile NAME")


def _print_profile(name: str) -> None:
    from insitu.energy import get_profile

    prof = get_profile(name)
    absent = set(prof.not_applicable())
    table = Table(title=f"{name}: {prof.description}", box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column("event", no_wrap=True)
    table.add_column("J/event", no_wrap=True)
    table.add_column("s/event", no_wrap=True)
    table.add_column("sources (energy; time)", overflow="fold")
    for kind, cost in prof:
        if kind in absent:
            continue
        sources = f"J: {cost.joules.source}\ns: {cost.seconds.source}"
        table.add_row(kind, f"{cost.joules.value:.3g}", f"{cost.seconds.value:.3g}", sources)
    console.print(table)
    if absent:
        console.print(f"not logged by this chip, priced 0 J and 0 s: {', '.join(sorted(absent))}")


def _print_energy(report: dict[str, Any]) -> None:
    from insitu.experiments.energy import comparison_sentence

    def fmt(v: float | None, unit: str) -> str:
        return "-" if v is None else f"{v:.3g}{unit}"

    table = Table(title=f"profile {report['profile']}, one chip", box=box.SIMPLE_HEAD)
    for col in ("", "chip", "GPU", "GPU/chip"):
        table.add_column(col, justify="left" if not col else "right")
    ratios = report["gpu_over_chip"]
    for label, key, rkey in (
        ("train sample", "per_train_sample", "train"),
        ("inference", "per_inference", "inference"),
    ):
        chip, gpu = report[key], report["gpu"][key]
        for quantity, field, unit in (("energy", "joules", " J"), ("time", "seconds", " s")):
            table.add_row(
                f"{quantity} per {label}",
                fmt(chip[field], unit),
                fmt(gpu[field], unit),
                fmt(ratios[f"{rkey}_{quantity}"], "x"),
            )
    console.print(table)
    console.print(comparison_sentence(report) + ".")
    kinds = Table(title="per train sample, by event kind", box=box.SIMPLE_HEAD)
    for col in ("event", "count", "energy", "time"):
        kinds.add_column(col, no_wrap=True)
    for kind, v in report["per_train_sample"]["by_kind"].items():
        kinds.add_row(kind, f"{v['count']:.4g}", fmt(v["joules"], " J"), fmt(v["seconds"], " s"))
    console.print(kinds)
    setup = report["setup_per_chip"]
    console.print(
        f"setup once per chip (e.g. programming the initial weights): "
        f"{fmt(setup['joules'], ' J')}, {fmt(setup['seconds'], ' s')}"
    )
    g = report["gpu"]
    console.print(f"GPU reference: {g['name']}; {g['source']}")
    for note in report["notes"]:
        console.print(f"note: {note}")


@devices_app.callback(invoke_without_command=True)
def devices_list(ctx: typer.Context) -> None:
    """List the device presets (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    from insitu.devices import device_names, get_device

    table = Table(title="device presets", box=box.SIMPLE_HEAD)
    for col in ("name", "model", "states", "asym.", "step noise", "dtod"):
        table.add_column(col, no_wrap=True)
    for name in device_names():
        p = get_device(name)
        table.add_row(
            name,
            str(p.model),
            f"{p.states:.0f}",
            f"{p.up_down:+.2f}",
            f"{p.dw_min_std:g}" + ("x" if p.noise_mode == "multiplicative" else " add"),
            f"{p.dw_min_dtod:g}",
        )
    console.print(table)
    console.print("every parameter and its source: insitu devices show NAME")


@devices_app.command("show")
def devices_show(
    name: Annotated[str, typer.Argument(help="Device preset, or a preset file (.yaml).")],
) -> None:
    """Every parameter of one device preset, and where its values come from."""
    import dataclasses

    from insitu.devices import get_device

    params = get_device(name)
    table = Table(title=f"device preset {name}", box=box.SIMPLE_HEAD)
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", overflow="fold")
    for f in dataclasses.fields(params):
        if f.name != "source":
            value = getattr(params, f.name)
            table.add_row(f.name, f"{value:g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"source: {params.source}")


@devices_app.command("plot")
def devices_plot(
    name: Annotated[str, typer.Argument(help="Device preset, or a preset file (.yaml).")],
    out: Annotated[Path | None, typer.Option(help="PNG file to write.")] = None,
    instances: Annotated[int, typer.Option(help="Device instances drawn.")] = 4,
    pulses: Annotated[int, typer.Option(help="Pulses up, then as many down.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the variation draw.")] = 0,
) -> None:
    """Save a PNG of the response to N up then N down pulses for a few device instances."""
    from insitu.devices import get_device
    from insitu.experiments.plots import device_response

    params = get_device(name)
    if pulses < 1 or instances < 1:
        raise ConfigError("pulses and instances must be >= 1")
    path = out or Path(f"{name}-response.png")
    device_response(params, path, instances=instances, pulses=pulses, seed=seed)
    console.print(f"saved {path}")


@devices_app.command("fit")
def devices_fit(
    file: Annotated[
        Path,
        typer.Argument(help="Pulse-response CSV: device, cycle, pulse, direction, conductance."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="constant-step, linear-step, soft-bounds (default: the best) or power-step."
        ),
    ] = None,
    g_ref: Annotated[
        float | None,
        typer.Option(help="Reference conductance of dw_min/up_down; default: symmetry point."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Preset name; default: FILE's stem.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Preset YAML to write; default FILE-preset.yaml.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG of the fit; default FILE-fit.png.")] = None,
) -> None:
    """Fit a device preset to a lab's pulse-response measurement; write it and plot the fit.

    The preset file works wherever a preset name does: --device FILE, get_device(path).
    """
    from insitu.devices.preset_file import is_preset_path
    from insitu.experiments.device_fit import run_fit

    if out is not None and not is_preset_path(out):
        raise ConfigError(f"--out {out}: a preset file ends in .yaml or .yml")
    fit, preset, png = run_fit(file, model=model, g_ref=g_ref, name=name, out=out, plot=plot)
    _print_fit(fit)
    console.print(f"saved {preset}\nsaved {png}\nuse it: --device {preset}", soft_wrap=True)


def _print_fit(fit: Any) -> None:
    p = fit.params
    step_noise = "x step" if p.noise_mode == "multiplicative" else "x dw_min"
    step_noise = f"step noise, {p.noise_mode} ({step_noise})"
    rows = (
        ("g_min", "lower bound (g)"),
        ("g_max", "upper bound (g)"),
        ("g_ref", "where dw_min and up_down apply (g)"),
        ("dw_min", "step at g_ref (g)"),
        ("up_down", "asymmetry: steps dw_min*(1 +- it)"),
        ("slope_up", "step lost between g_ref and g_max"),
        ("slope_down", "step lost between g_ref and g_min"),
        *([("exponent", "power of the step's decline")] if p.model == "power-step" else []),
        ("dw_min_std", step_noise),
        ("read_noise", "read noise (x g_max - g_min)"),
        ("dw_min_dtod", "dw_min spread between devices (rel.)"),
        ("up_down_dtod", "up_down spread between devices"),
        ("bounds_dtod", "bounds spread between devices (rel.)"),
        ("slope_dtod", "slope spread between devices"),
    )
    width = min(console.width, 80)
    table = Table(
        title=f"{p.name}: {p.model}, {len(fit.devices)} devices; g in {fit.unit}",
        box=box.SIMPLE_HEAD,
    )
    for col in ("parameter", "value", "+-", "meaning"):
        table.add_column(col, no_wrap=col != "meaning", overflow="fold")
    for field, meaning in rows:
        err = fit.uncertainty.get(field)
        value = getattr(p, field)
        table.add_row(field, f"{value:.4g}", "-" if err is None else f"{err:.2g}", meaning)
    console.print(table, width=width)
    ranked = sorted(fit.scores.items(), key=lambda kv: kv[1])
    console.print(
        f"step residual RMS {fit.residual_rms:.3g} (g); model BIC, best first: "
        + ", ".join(f"{k} {v:.0f}" for k, v in ranked),
        width=width,
    )
    if fit.stuck:
        console.print(
            f"stuck, left out: {', '.join(fit.stuck)} (stuck_low {p.stuck_low:.3g}, "
            f"stuck_high {p.stuck_high:.3g})",
            width=width,
        )


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
