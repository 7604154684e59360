"""The tile design an analog layer is built with: device preset, periphery, update scheme.

The defaults are the hardware's own (:class:`insitu.hardware.TileConfig`); an option left at
None keeps them, so they are stated in one place.
"""

from __future__ import annotations

from insitu.devices import DeviceParams, get_device
from insitu.errors import ConfigError
from insitu.hardware import PairMode, Periphery, TileConfig, UpdateParams

DEFAULT_DEVICE = "ecram-organic"


def tile_config(
    device: str | DeviceParams | TileConfig = DEFAULT_DEVICE,
    *,
    periphery: Periphery | None = None,
    update: UpdateParams | None = None,
    pair: PairMode | str | None = None,
    weight_scale: float | None = None,
) -> TileConfig:
    """A :class:`TileConfig` from a device (preset name, parameters, or a whole tile design)
    and the options that override the hardware defaults.

    ``weight_scale`` is the weight of one unit of conductance difference (weight units per
    conductance unit of the preset). A whole ``TileConfig`` takes no further options.
    """
    if isinstance(device, TileConfig):
        extra = [
            name
            for name, v in (
                ("periphery", periphery),
                ("update", update),
                ("pair", pair),
                ("weight_scale", weight_scale),
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
    default = TileConfig(device)
    return TileConfig(
        device,
        default.periphery if periphery is None else periphery,
        default.update if update is None else update,
        default.pair if pair is None else PairMode(pair),
        default.weight_scale if weight_scale is None else weight_scale,
    )
