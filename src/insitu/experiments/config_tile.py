"""The tile-design sections of a run configuration (periphery, update, weight cell): each wraps
its hardware dataclass and takes its defaults from it, so every default is stated once."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field

from insitu.experiments.config_files import StrictModel
from insitu.hardware import CellKind, CellParams, Periphery, UpdateMode, UpdateParams


def hardware_default(cls: type[Any], name: str) -> Any:
    """The default of field ``name`` of the hardware dataclass ``cls``: stated there alone."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


class PeripheryConfig(StrictModel):
    """DAC/ADC and analog noise around every tile (see :class:`insitu.hardware.Periphery`)."""

    dac_bits: int | None = Field(hardware_default(Periphery, "dac_bits"), ge=1, le=24)
    adc_bits: int | None = Field(hardware_default(Periphery, "adc_bits"), ge=1, le=24)
    input_bound: float = Field(hardware_default(Periphery, "input_bound"), gt=0)
    output_bound: float = Field(hardware_default(Periphery, "output_bound"), gt=0)
    output_noise: float = Field(hardware_default(Periphery, "output_noise"), ge=0)
    noise_management: bool = hardware_default(Periphery, "noise_management")


class UpdateConfig(StrictModel):
    """How updates become pulses (see :class:`insitu.hardware.UpdateParams`)."""

    mode: UpdateMode = hardware_default(UpdateParams, "mode")
    max_pulses: int = Field(hardware_default(UpdateParams, "max_pulses"), ge=1, le=10_000)
    sequential: bool = hardware_default(UpdateParams, "sequential")
    dynamic_length: bool = hardware_default(UpdateParams, "dynamic_length")
    threshold: float = Field(hardware_default(UpdateParams, "threshold"), ge=0, lt=1)


class CellConfig(StrictModel):
    """How many device arrays hold a weight and how they exchange it: a plain tile or a
    Tiki-Taka / TTv2 / Chopped-TTv2 / AGAD / mixed-precision / residual-learning cell (see
    :class:`insitu.hardware.CellParams`)."""

    kind: CellKind = hardware_default(CellParams, "kind")
    gamma: float = Field(hardware_default(CellParams, "gamma"), ge=0, le=100)
    fast_lr: float = Field(hardware_default(CellParams, "fast_lr"), gt=0, le=1e4)
    transfer_every: int = Field(hardware_default(CellParams, "transfer_every"), ge=1, le=10**6)
    columns: int = Field(hardware_default(CellParams, "columns"), ge=1, le=10**6)
    transfer_lr: float = Field(hardware_default(CellParams, "transfer_lr"), gt=0, le=1e4)
    threshold: float = Field(hardware_default(CellParams, "threshold"), gt=0, le=1e4)
    chop_prob: float = Field(hardware_default(CellParams, "chop_prob"), ge=0, le=1)
    tail_weight: float = Field(hardware_default(CellParams, "tail_weight"), gt=0, le=1e6)
    refresh_every: int = Field(hardware_default(CellParams, "refresh_every"), ge=0, le=10**9)
    refresh_level: float = Field(hardware_default(CellParams, "refresh_level"), gt=0, le=1)
    refresh_floor: float = Field(hardware_default(CellParams, "refresh_floor"), ge=0, lt=1)
    tiles: int = Field(hardware_default(CellParams, "tiles"), ge=2, le=16)
    tile_gamma: float = Field(hardware_default(CellParams, "tile_gamma"), gt=0, le=1)
    period_growth: int = Field(hardware_default(CellParams, "period_growth"), ge=1, le=100)
