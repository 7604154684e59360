"""``insitu energy``: a run's energy and time against a GPU, and the cost profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from insitu.errors import ConfigError

console = Console()


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
    assumptions: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="Also price the network from the roofline to launch-bound eager execution: "
            "gpu (H100) or cpu (Xeon 8380).",
        ),
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

    report, json_path, png_path = run_energy_report(
        run_dir, profile=profile, gpu=gpu, out=out, assumptions=assumptions
    )
    _print_energy(report)
    if "reference_range" in report:
        _print_range(report["reference_range"], assumptions or "")
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


def _print_range(rows: list[dict[str, Any]], name: str) -> None:
    """The reference range in at most 80 columns; sources follow the table."""

    def fmt(v: float | None, unit: str) -> str:
        return "-" if v is None else f"{v:.3g}{unit}"

    table = Table(
        title=f"{name} assumptions, per sample (ratio: reference / chip)", box=box.SIMPLE_HEAD
    )
    table.add_column("assumption", overflow="fold")
    for col in ("train", "ratio", "inference", "ratio"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        r = row["over_chip"]
        table.add_row(
            row["label"],
            fmt(row["per_train_sample"]["joules"], " J"),
            fmt(r["train_energy"], "x"),
            fmt(row["per_inference"]["joules"], " J"),
            fmt(r["inference_energy"], "x"),
        )
    console.print(table)
    for row in rows:
        console.print(f"{row['label']}: {row['processor']}, batch {row['batch_size']}")
    console.print("every assumption with its source: reference_range in the JSON report")
