"""The options every analog layer (and ``convert``) takes: the tile design and the chips.

The defaults of the tile design are the hardware's own (:class:`insitu.hardware.TileConfig`);
an option left out keeps them, so they are stated in one place.
"""

from __future__ import annotations

from typing import TypedDict

from insitu.devices import DeviceParams, get_device
from insitu.errors import ConfigError
from insitu.hardware import CellKind, CellParams, PairMode, Periphery, TileConfig, UpdateParams

DEFAULT_DEVICE = "ecram-organic"


class TileOptions(TypedDict, total=False):
    """Keyword options of :class:`AnalogLinear`, :class:`AnalogConv2d` and :func:`convert`.

    Attributes:
        device: a device preset name (``insitu devices``), DeviceParams, or a whole TileConfig
            (default ``"ecram-organic"``).
        instances: chips simulated at once, each with its own device-to-device variation
            (default 1).
        seed: seeds the generator of all random draws (default 0).
        periphery, update, pair, weight_scale, cell: the tile design (see
            :func:`tile_config`).
    """

    device: str | DeviceParams | TileConfig
    instances: int
    seed: int
    periphery: Periphery
    update: UpdateParams
    pair: PairMode | str
    weight_scale: float
    cell: CellParams | CellKind | str


def whole_number(name: str, value: object, low: int) -> int:
    """``value`` if it is a whole number >= ``low``; a ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} = {value!r}; need a whole number >= {low}")
    return value


def check_options(options: TileOptions, where: str) -> TileConfig:
    """The tile design of ``options``, after checking that it names only known options and
    that ``instances`` and ``seed`` are whole numbers."""
    unknown = sorted(set(options) - set(TileOptions.__annotations__))
    if unknown:
        valid = ", ".join(TileOptions.__annotations__)
        raise ConfigError(f"{where} got unknown option(s) {', '.join(unknown)}; valid: {valid}")
    whole_number("instances", options.get("instances", 1), 1)
    whole_number("seed", options.get("seed", 0), 0)
    return tile_config(
        options.get("device", DEFAULT_DEVICE),
        periphery=options.get("periphery"),
        update=options.get("update"),
        pair=options.get("pair"),
        weight_scale=options.get("weight_scale"),
        cell=options.get("cell"),
    )


def tile_config(
    device: str | DeviceParams | TileConfig = DEFAULT_DEVICE,
    *,
    periphery: Periphery | None = None,
    update: UpdateParams | None = None,
    pair: PairMode | str | None = None,
    weight_scale: float | None = None,
    cell: CellParams | CellKind | str | None = None,
) -> TileConfig:
    """A :class:`TileConfig` from a device (preset name, parameters, or a whole tile design)
    and the options that override the hardware defaults.

    ``periphery``: DAC, ADC, noise and saturation; ``update``: the pulsed update scheme;
    ``pair``: two devices per weight (differential) or one against a reference;
    ``weight_scale``: weight units per unit of conductance; ``cell``: a plain tile or a
    compound cell, as :class:`insitu.hardware.CellParams` or just its kind (``"ttv2"``, ...,
    with the default options). A whole ``TileConfig`` takes no further options.
    """
    if isinstance(device, TileConfig):
        extra = [
            name
            for name, v in (
                ("periphery", periphery),
                ("update", update),
                ("pair", pair),
                ("weight_scale", weight_scale),
                ("cell", cell),
            )
            if v is not None
        ]
        if extra:
            raise ConfigError(
                f"device is a whole TileConfig, so set {', '.join(extra)} in it, not beside it"
            )
        return device
    if isinstance(device, str):
        device = get_device(device)
    if not isinstance(device, DeviceParams):
        raise ConfigError(
            f"device = {device!r}; need a preset name (see `insitu devices`), DeviceParams "
            "or a TileConfig"
        )
    if periphery is not None and not isinstance(periphery, Periphery):
        raise ConfigError(f"periphery = {periphery!r}; need an insitu.hardware.Periphery")
    if update is not None and not isinstance(update, UpdateParams):
        raise ConfigError(f"update = {update!r}; need an insitu.hardware.UpdateParams")
    if pair is not None and pair not in set(PairMode):
        raise ConfigError(f"pair = {pair!r}; valid: {', '.join(m.value for m in PairMode)}")
    if isinstance(cell, str):
        cell = CellParams(kind=cell)  # type: ignore[arg-type]  # an unknown kind is named there
    if cell is not None and not isinstance(cell, CellParams):
        raise ConfigError(f"cell = {cell!r}; need an insitu.hardware.CellParams or a cell kind")
    default = TileConfig(device)
    return TileConfig(
        device,
        default.periphery if periphery is None else periphery,
        default.update if update is None else update,
        default.pair if pair is None else PairMode(pair),
        default.weight_scale if weight_scale is None else weight_scale,
        default.cell if cell is None else cell,
    )
