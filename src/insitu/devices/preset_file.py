"""Device presets as YAML files: a lab's own device, usable wherever a preset name is.

A preset file holds the :class:`DeviceParams` fields by name (any left out keep their
defaults; ``model`` is required, ``name`` defaults to the file's stem) and an optional ``fit``
section that :func:`read_preset` ignores (what ``insitu devices fit`` measured: uncertainties,
residuals, the models it compared)::

    name: my-taox
    model: linear-step
    g_min: 0.0
    g_max: 1.0
    g_ref: 0.5
    dw_min: 0.025
    up_down: 0.26
    source: fitted by insitu devices fit to taox.csv on 2026-12-04 14:00 UTC ...
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from insitu.devices.params import DeviceParams
from insitu.errors import ConfigError

PRESET_SUFFIXES = (".yaml", ".yml")
# Fields of DeviceParams and the YAML types each accepts.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {}
for _f in dataclasses.fields(DeviceParams):
    _hint = str(typing.get_type_hints(DeviceParams)[_f.name])
    if "float" in _hint:
        _FIELD_TYPES[_f.name] = (int, float)
    elif "int" in _hint:
        _FIELD_TYPES[_f.name] = (int,)
    elif "bool" in _hint:
        _FIELD_TYPES[_f.name] = (bool,)
    else:
        _FIELD_TYPES[_f.name] = (str,)
_OPTIONAL = {"n_states", "retention_tau"}


def is_preset_path(name: str | Path) -> bool:
    """Whether ``name`` names a preset file (a ``.yaml``/``.yml`` path) rather than a preset."""
    return str(name).lower().endswith(PRESET_SUFFIXES)


def preset_to_dict(params: DeviceParams) -> dict[str, Any]:
    """The preset's fields as plain YAML values."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        out[f.name] = str(value) if isinstance(value, str) else value
    return out


def write_preset(params: DeviceParams, path: str | Path, fit: dict[str, Any] | None = None) -> Path:
    """Write ``params`` (and what the fit saw, ``fit``) as a preset file."""
    from insitu.atomic import write_text

    doc = preset_to_dict(params)
    if fit is not None:
        doc["fit"] = fit
    text = f"# insitu device preset ({params.model}); read with get_device(path)\n"
    text += yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    write_text(path, text)
    return Path(path)


def read_preset(path: str | Path) -> DeviceParams:
    """The preset in file ``path``; any fault is one ConfigError naming the file."""
    path = Path(path)
    where = f"device preset file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise ConfigError(f"{where} cannot be read ({reason})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML ({problem}{at})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping of device parameters, got {doc!r:.40}")
    doc = {str(k): v for k, v in doc.items() if k != "fit"}
    unknown = sorted(set(doc) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(
            f"{where}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(_FIELD_TYPES))}"
        )
    if "model" not in doc:
        raise ConfigError(f"{where}: no model (e.g. model: linear-step)")
    for key, value in doc.items():
        types = _FIELD_TYPES[key]
        ok = (value is None and key in _OPTIONAL) or (
            isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        )
        if not ok:
            want = "/".join(t.__name__ for t in types) + (" or null" if key in _OPTIONAL else "")
            raise ConfigError(f"{where}: {key} = {value!r} is not a {want}")
        if float in types and isinstance(value, int):
            doc[key] = float(value)
    doc.setdefault("name", path.stem)
    try:
        return DeviceParams(**doc)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
