"""What ``insitu config`` lists: every field of a config model, read from the model itself."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, NamedTuple

import annotated_types
import yaml
from pydantic import BaseModel


class FieldDoc(NamedTuple):
    """One settable field of a config model, as ``insitu config`` lists it."""

    name: str  # dotted, as --set takes it: "periphery.adc_bits"
    type: str
    default: str
    allowed: str  # the range from the Field constraints, the choices, or the description


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal or (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    ):
        return "choice"
    if origin in (types.UnionType, typing.Union):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "None"
    return str(annotation) if origin is not None else str(annotation.__name__)


def _bound(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10**7:
        return f"{value:.2e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _allowed(info: Any) -> str:
    """The interval of ge/gt/le/lt constraints, or the choices of an enum or Literal."""
    low = high = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            low = f"[{_bound(m.ge)}"
        elif isinstance(m, annotated_types.Gt):
            low = f"({_bound(m.gt)}"
        elif isinstance(m, annotated_types.Le):
            high = f"{_bound(m.le)}]"
        elif isinstance(m, annotated_types.Lt):
            high = f"{_bound(m.lt)})"
    if low is not None or high is not None:
        return f"{low or '(-inf'}, {high or 'inf)'}"
    choices = [
        a
        for a in (info.annotation, *typing.get_args(info.annotation))
        if isinstance(a, type) and issubclass(a, enum.Enum)
    ]
    if choices:
        return ", ".join(str(c.value) for c in choices[0])
    if typing.get_origin(info.annotation) is typing.Literal:
        return ", ".join(str(a) for a in typing.get_args(info.annotation))
    return info.description or ""


def field_docs(model: type[BaseModel], prefix: str = "") -> list[FieldDoc]:
    """Every field of ``model`` and of the models nested in it (dotted names), read from the
    pydantic model itself, so the listing cannot fall behind the config."""
    docs: list[FieldDoc] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            docs += field_docs(annotation, f"{prefix}{name}.")
            continue
        default = info.get_default(call_default_factory=True)
        shown = yaml.safe_dump(
            default.value if isinstance(default, enum.Enum) else default,
            default_flow_style=True,
        ).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        docs.append(FieldDoc(prefix + name, _type_name(annotation), shown, _allowed(info)))
    return docs
