"""The progress bars every long job shows (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(
    console: Console, enabled: bool = True, label: str = "{task.description}"
) -> Progress:
    """A bar per task: its label, the bar, done/total, elapsed time and a free ``info`` field."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not enabled,
    )
