"""``insitu devices``: the device presets, every parameter with its source, their response."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from insitu.errors import ConfigError

devices_app = typer.Typer(
    help="Device presets: list them, plot their pulse response, fit one to measurements."
)
console = Console()


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
        ("dw_min", "stronger step at g_ref (g)"),
        ("up_down", "asymmetry: weaker step dw_min*(1-|it|)"),
        ("slope_up", "step lost between g_ref and g_max"),
        ("slope_down", "step lost between g_ref and g_min"),
        *([("exponent", "power of the step's decline")] if p.model == "power-step" else []),
        ("dw_min_std", step_noise),
        ("read_noise", "read noise (x g_max - g_min)"),
        ("dw_min_dtod", "dw_min spread between devices (rel.)"),
        ("up_down_dtod", "up_down spread between devices (x dw_min)"),
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
