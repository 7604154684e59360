"""Options and helpers the ``insitu`` commands share."""

from __future__ import annotations

from typing import Annotated

import typer

QuietOption = Annotated[bool, typer.Option(help="No progress bars.")]


def given_explicitly(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"
