"""``insitu algorithms`` and ``insitu config``: the rules, and every field of a run config."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from insitu.errors import ConfigError

console = Console()


def algorithms() -> None:
    """List the learning rules."""
    from insitu.algorithms import RULES, rule_names
    from insitu.algorithms.registry import RULE_KINDS

    commands = {"crossbar": "train", "spiking": "spiking"}
    table = Table(title="algorithms")
    table.add_column("name")
    table.add_column("command")
    table.add_column("what it does")
    for kind in RULE_KINDS:
        for name in rule_names(kind):
            table.add_row(name, commands[kind], RULES[name].description)
    console.print(table)


def config_fields(
    kind: Annotated[
        str, typer.Option(help="crossbar (insitu train, insitu run) or spiking (insitu spiking).")
    ] = "crossbar",
) -> None:
    """Every config field (a YAML key, or --set NAME=VALUE): type, default, allowed values."""
    from pydantic import BaseModel

    from insitu.experiments.config import SpikingTrainConfig, TrainConfig, field_docs

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
