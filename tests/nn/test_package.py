"""insitu.nn sits on the hardware layer: it imports only devices, hardware and errors; the one
exception is the spiking chip layer (insitu.nn.chip), which trains in the loop with the spiking
trainers' model and injection, and nothing in insitu.algorithms imports insitu.nn."""

from __future__ import annotations

import ast
from pathlib import Path

import insitu.nn

ALLOWED = ("insitu.devices", "insitu.hardware", "insitu.errors", "insitu.nn")
IN_THE_LOOP = ("insitu.algorithms.spiking_model", "insitu.algorithms.spiking_options")


def _imports(path: Path) -> set[str]:
    seen: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            seen.add(node.module)
        elif isinstance(node, ast.Import):
            seen.update(alias.name for alias in node.names)
    return seen


def test_insitu_nn_imports_only_the_layers_below_it() -> None:
    package = Path(insitu.nn.__file__).parent
    seen = set()
    for path in package.glob("*.py"):
        imported = _imports(path)
        if path.name == "chip.py":
            imported -= set(IN_THE_LOOP)
        seen |= imported
    ours = {m for m in seen if m.split(".")[0] == "insitu"}
    assert ours, "no insitu import found: the check reads nothing"
    assert sorted(m for m in ours if not m.startswith(ALLOWED)) == []
    assert "insitu.hardware.inspection" not in ours  # the window algorithms do not open


def test_insitu_algorithms_never_imports_insitu_nn() -> None:
    package = Path(insitu.nn.__file__).parents[1] / "algorithms"
    imported = set().union(*(_imports(path) for path in package.glob("*.py")))
    assert len(imported) > 10, "the check reads nothing"
    assert sorted(m for m in imported if m.startswith("insitu.nn")) == []
