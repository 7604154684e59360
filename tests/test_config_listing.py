"""`insitu config`: every field of the run configs, read from the pydantic models themselves."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from insitu import cli
from insitu.errors import ConfigError
from insitu.experiments import make_config
from insitu.experiments.config import (
    SpikingTrainConfig,
    TrainConfig,
    field_docs,
    make_spiking_config,
    set_dotted,
)
from insitu.hardware import Activation

KINDS: dict[str, type[BaseModel]] = {"crossbar": TrainConfig, "spiking": SpikingTrainConfig}


def leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Dotted name -> field, walking nested models (the test's own walk of the model)."""
    out: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out |= leaf_fields(info.annotation, f"{prefix}{name}.")
        else:
            out[prefix + name] = info
    return out


def listing(*args: str) -> list[str]:
    result = CliRunner().invoke(cli.app, ["config", *args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    return lines


def rows(lines: list[str]) -> dict[str, str]:
    """Field name -> its first table line."""
    return {line.split()[0]: line for line in lines if line.startswith("  ") and line.split()}


@pytest.mark.parametrize("kind", ["crossbar", "spiking"])
def test_every_field_is_listed_once_with_its_type_and_default(kind: str) -> None:
    model = KINDS[kind]
    args = [] if kind == "crossbar" else ["--kind", "spiking"]
    table = rows(listing(*args))
    fields = leaf_fields(model)
    assert set(fields) <= set(table)
    defaults = model().model_dump(mode="json")
    for name in fields:
        value: Any = defaults
        for part in name.split("."):
            value = value[part]
        cells = table[name].split()
        shown = yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()
        assert shown in cells, (name, shown, table[name])


def test_the_short_run_fields_are_discoverable() -> None:
    table = rows(listing())
    for name, default in (
        ("limit_train", "null"),
        ("limit_test", "null"),
        ("eval_train_limit", "2000"),
        ("checkpoint_every", "null"),
    ):
        assert " ".join(table[name].split()) == f"{name} int | None {default} [1, inf)"


@pytest.mark.parametrize("kind", ["crossbar", "spiking"])
def test_ranges_come_from_the_field_constraints(kind: str) -> None:
    docs = {d.name: d for d in field_docs(KINDS[kind])}
    for name, info in leaf_fields(KINDS[kind]).items():
        bounds = {type(m).__name__: m for m in info.metadata}
        if not bounds:
            continue
        allowed = docs[name].allowed
        low, high = (part.strip() for part in allowed.split(","))
        if "Ge" in bounds:
            assert low.startswith("[")
        elif "Gt" in bounds:
            assert low.startswith("(")
        else:
            assert low == "(-inf"
        if "Le" in bounds:
            assert high.endswith("]")
        elif "Lt" in bounds:
            assert high.endswith(")")
        else:
            assert high == "inf)"


def _at(name: str, value: float) -> dict[str, Any]:
    values: dict[str, Any] = {}
    set_dotted(values, name, value)
    return values


@pytest.mark.parametrize("kind", ["crossbar", "spiking"])
def test_a_listed_bound_is_what_validation_accepts_and_refuses(kind: str) -> None:
    make = make_config if kind == "crossbar" else make_spiking_config
    checked = 0
    for doc in field_docs(KINDS[kind]):
        interval = doc.allowed[:1] in ("[", "(") and doc.allowed[-1:] in ("]", ")")
        if not interval or "e+" in doc.allowed:  # choices or a description; or rounded
            continue
        low, high = (part.strip() for part in doc.allowed.split(","))
        cast = int if doc.type.startswith("int") else float
        for bound, closed in ((low[1:], low[0] == "["), (high[:-1], high[-1] == "]")):
            if "inf" in bound:
                continue
            value = cast(float(bound))
            if closed:
                make(_at(doc.name, value))
            else:
                with pytest.raises(ConfigError, match=doc.name.split(".")[-1]):
                    make(_at(doc.name, value))
            checked += 1
    assert checked >= 10


def test_choices_are_listed_from_the_enum() -> None:
    table = " ".join(" ".join(listing()).split())
    assert ", ".join(a.value for a in Activation) in table


def test_help_of_train_and_spiking_points_to_insitu_config() -> None:
    runner = CliRunner()
    train_help = runner.invoke(cli.app, ["train", "--help"], env={"COLUMNS": "200"}).stdout
    assert "insitu config." in " ".join(train_help.split())
    spiking_help = runner.invoke(cli.app, ["spiking", "--help"], env={"COLUMNS": "200"}).stdout
    assert "insitu config --kind spiking" in " ".join(spiking_help.split())


def test_an_unknown_kind_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["insitu", "config", "--kind", "analog"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --kind 'analog': expected crossbar or spiking"
    )
