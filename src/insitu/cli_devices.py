"""``insitu devices``: the device presets, every parameter with its source, their response."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from insitu.errors import ConfigError

devices_app = typer.Typer(help="Device presets: list them, plot their pulse response.")
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
def devices_show(name: Annotated[str, typer.Argument(help="Device preset.")]) -> None:
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
    name: Annotated[str, typer.Argument(help="Device preset.")],
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
