"""Config files: the mapping of fields in one (and ``--set`` overrides of it), a config model
written as YAML (noting data given in Python instead), and validation errors as text."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from insitu.errors import ConfigError
from insitu.experiments.data_record import GIVEN_IN_PYTHON, DataRecord


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``values[a][b] = value`` for ``key`` "a.b", making groups as needed."""
    parts = key.strip().split(".")
    node = values
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {part} is not a group of settings")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping of fields in a YAML config file (not yet validated); empty for an empty file.

    Every way the file can be unreadable (missing, a folder, not UTF-8, not YAML, a YAML value
    PyYAML cannot build such as the date 2001-13-45, not a mapping) raises ConfigError.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {p} cannot be read as UTF-8 text: {err}") from None
    try:
        values = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as err:
        raise ConfigError(f"config file {p} is not valid YAML: {err}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {p} must hold a mapping of fields, got {type(values).__name__}"
        )
    return values


def describe_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n  " + "\n  ".join(lines)


class StrictModel(BaseModel):
    """A config model: unknown fields refused, frozen, defaults validated, no NaN or inf."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    def to_yaml(self, given: DataRecord | None = None) -> str:
        """The resolved configuration as YAML; ``given``: the record of the data the run used
        instead of ``dataset`` (given in Python), said beside that field and above the rest."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        if given is None:
            return text
        head = f"data {GIVEN_IN_PYTHON}: {given.describe()}; the `dataset` field below was not used"
        aside = f"NOT USED: the run trained on {given.name!r}, {GIVEN_IN_PYTHON}"
        lines = [
            f"{line}  # {aside}" if line.startswith("dataset:") else line
            for line in text.splitlines()
        ]
        return f"# {head}\n" + "\n".join(lines) + "\n"
