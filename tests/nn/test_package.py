"""insitu.nn sits on the hardware layer: it imports only devices, hardware and errors."""

from __future__ import annotations

import ast
from pathlib import Path

import insitu.nn

ALLOWED = ("insitu.devices", "insitu.hardware", "insitu.errors", "insitu.nn")


def test_insitu_nn_imports_only_the_layers_below_it() -> None:
    package = Path(insitu.nn.__file__).parent
    seen = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                seen.add(node.module)
            elif isinstance(node, ast.Import):
                seen.update(alias.name for alias in node.names)
    ours = {m for m in seen if m.split(".")[0] == "insitu"}
    assert ours, "no insitu import found: the check reads nothing"
    assert sorted(m for m in ours if not m.startswith(ALLOWED)) == []
    assert "insitu.hardware.inspection" not in ours  # the window algorithms do not open
