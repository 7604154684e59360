"""Typed, validated run configurations (pydantic), one base for every kind of run: every field
checked before any work starts, every default stated once (the hardware's own where a config
wraps a hardware dataclass)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from insitu.algorithms import ALGORITHMS, rule_names
from insitu.algorithms.base import parse_options
from insitu.algorithms.registry import RuleKind
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.data import DATASET_NAMES, check_dataset_options
from insitu.data.tonic_source import TONIC_DATASETS, tonic_options
from insitu.devices import DeviceParams, get_device
from insitu.devices.preset_file import is_preset_path
from insitu.energy import check_profile_kind
from insitu.errors import ConfigError, UnknownNameError
from insitu.experiments.config_docs import FieldDoc, field_docs
from insitu.experiments.config_files import (
    StrictModel,
    describe_errors,
    read_config_file,
    set_dotted,
)
from insitu.experiments.config_tile import (
    CellConfig,
    PeripheryConfig,
    UpdateConfig,
    hardware_default,
)
from insitu.hardware import (
    Activation,
    CellParams,
    ChipConfig,
    PairMode,
    Periphery,
    TileConfig,
    UpdateParams,
)
from insitu.hardware.spiking import NeuronParams, SpikingChipConfig

__all__ = [
    "IMAGE_SPIKING_DATASETS",
    "SPIKING_DATASETS",
    "CellConfig",
    "EncodingConfig",
    "FieldDoc",
    "PeripheryConfig",
    "RunConfigBase",
    "SpikingTrainConfig",
    "TrainConfig",
    "UpdateConfig",
    "field_docs",
    "load_config",
    "load_spiking_config",
    "make_config",
    "make_spiking_config",
    "read_config_file",
    "set_dotted",
]

# Images latency-coded on load (digits: embedded, no download) and event datasets (read by
# insitu, or by tonic and its transforms).
IMAGE_SPIKING_DATASETS = ("digits", "mnist", "fashion-mnist")
SPIKING_DATASETS = (*IMAGE_SPIKING_DATASETS, "nmnist", "shd", *TONIC_DATASETS)
# The datasets and rules of each kind of run, and the command that starts one.
_DATASETS: dict[RuleKind, tuple[str, ...]] = {
    "crossbar": DATASET_NAMES,
    "spiking": SPIKING_DATASETS,
}
_COMMANDS: dict[RuleKind, str] = {
    "crossbar": "insitu train --{field} {name}",
    "spiking": "insitu spiking --set {field}={name}",
}


def check_choice(field: Literal["algorithm", "dataset"], name: str, kind: RuleKind) -> str:
    """``name`` if it is a rule (``field`` "algorithm") or dataset of ``kind`` runs; otherwise
    a ValueError naming the valid ones and, for one of the other kind, the command it takes."""
    choices = {k: tuple(rule_names(k)) for k in _COMMANDS} if field == "algorithm" else _DATASETS
    valid = ", ".join(choices[kind])
    if name in choices[kind]:
        return name
    noun = "rule" if field == "algorithm" else "dataset"
    for other, names in choices.items():
        if other != kind and name in names:
            use = _COMMANDS[other].format(field=field, name=name)
            raise ValueError(f"{name} is a {other} {noun}: use `{use}` ({kind} {noun}s: {valid})")
    spiking = "spiking " if kind == "spiking" else ""
    raise ValueError(f"unknown {spiking}{field} {name!r}; valid: {valid}")


class EncodingConfig(StrictModel):
    """Images -> spikes: resize to ``size`` x ``size`` (after cropping ``crop`` pixels per side)
    and one latency spike per pixel at ``t = tau ln(x / (x - threshold))`` (steps)."""

    size: int | None = Field(None, ge=1, le=1024)  # None: 8 for digits (as stored), else 16
    crop: int | None = Field(None, ge=0, le=100)  # None: 2 for MNIST (28 -> 24 -> 16), else 0
    tau: float = Field(8.0, gt=0, le=1e6)
    threshold: float = Field(0.2, ge=0, lt=1)


# Fields whose default differs by kind: their type, range and description, stated once.
RuleName = Annotated[str, Field(description="see insitu algorithms")]
LayerSizes = Annotated[list[int], Field(description="sizes, each >= 1")]
BatchSize = Annotated[int, Field(ge=1, le=100_000)]
Instances = Annotated[int, Field(ge=1, le=4096)]


class RunConfigBase(StrictModel):
    """What every run has; each kind adds its chip's fields and its own defaults."""

    rule_kind: ClassVar[RuleKind]  # the rules, datasets and energy profiles it takes
    min_hidden_layers: ClassVar[int] = 0

    # Descriptions are what `insitu config` shows for fields without a range or choices.
    algorithm: RuleName
    algorithm_options: dict[str, Any] = Field(default_factory=dict, description="per rule")
    dataset: str  # each kind lists its own
    dataset_options: dict[str, Any] = Field(
        default_factory=dict, description="per dataset: braille; nmnist, shd, tonic:nmnist"
    )
    hidden: LayerSizes
    epochs: int = Field(20, ge=1, le=100_000)
    batch_size: BatchSize
    lr_decay: float = Field(1.0, gt=0, le=1)  # the learning rate is multiplied by this per epoch
    instances: Instances
    seed: int = Field(0, ge=0, le=2**63 - 1)  # torch generators take seeds below 2**64
    data_dir: str | None = Field(None, description="an existing folder")
    limit_train: int | None = Field(None, ge=1)
    limit_test: int | None = Field(None, ge=1)
    eval_train_limit: int | None = Field(2000, ge=1)
    energy_profile: str | None = Field(
        None, description="see insitu energy --profiles; null: the chip's own"
    )
    # Save the full run state every this many training batches (and always at epoch ends),
    # so a killed run resumes with `insitu run --resume RUN_DIR`; None: at epoch ends only.
    checkpoint_every: int | None = Field(None, ge=1)

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, v: str) -> str:
        return check_choice("algorithm", v, cls.rule_kind)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        return check_choice("dataset", v, cls.rule_kind)

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        if len(v) < cls.min_hidden_layers or any(n < 1 for n in v):
            need = " (at least one layer)" if cls.min_hidden_layers else ""
            raise ValueError(f"hidden layer sizes must be >= 1{need}, got {v}")
        return v

    @field_validator("energy_profile")
    @classmethod
    def _known_profile(cls, v: str | None) -> str | None:
        if v is not None:
            check_profile_kind(v, cls.rule_kind)
        return v

    def run_name(self, dataset: str | None = None) -> str:
        """What new run directories of this config are named after (``dataset``: the name of
        data given instead of the config's)."""
        return f"{self.algorithm}-{dataset or self.dataset}"

    def check(self) -> None:
        """Checks beyond the fields' own (each kind's)."""


C = TypeVar("C", bound=RunConfigBase)


class TrainConfig(RunConfigBase):
    """One crossbar training run."""

    rule_kind = "crossbar"

    algorithm: RuleName = "analog-sgd"
    dataset: str = Field("digits", description=", ".join(DATASET_NAMES))
    hidden: LayerSizes = Field(default_factory=lambda: [32])
    batch_size: BatchSize = 10
    instances: Instances = 4
    device: str = Field("ecram-organic", description="see insitu devices")
    activation: Activation = hardware_default(ChipConfig, "activation")
    lr: float = Field(0.1, gt=0, le=100)
    variation: float | None = Field(None, ge=0, le=2)
    device_overrides: dict[str, Any] = Field(
        default_factory=dict, description="see insitu devices show"
    )
    pair: PairMode = hardware_default(TileConfig, "pair")
    weight_scale: float = Field(hardware_default(TileConfig, "weight_scale"), gt=0)
    periphery: PeripheryConfig = PeripheryConfig()
    update: UpdateConfig = UpdateConfig()
    cell: CellConfig = CellConfig()
    # The size of one array (input lines, output lines); a larger layer is split over a grid of
    # arrays (insitu.hardware.tile_grid). None: one array per layer, whatever its size.
    max_inputs: int | None = Field(hardware_default(TileConfig, "max_inputs"), ge=1)
    max_outputs: int | None = Field(hardware_default(TileConfig, "max_outputs"), ge=1)
    validation_fraction: float = Field(0.0, ge=0, lt=1)

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        get_device(v)  # a preset name or a preset file (insitu devices fit); unknown: named
        # A file is kept by its absolute path, so a resume from elsewhere finds it.
        return str(Path(v).resolve()) if is_preset_path(v) else v

    @field_validator("device_overrides")
    @classmethod
    def _typed_overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Each value must have its DeviceParams field's type; unknown names are left for
        # DeviceParams.replace, which names them and lists the valid ones.
        hints = typing.get_type_hints(DeviceParams)
        typed = {}
        for key, value in v.items():
            if key in hints:
                try:
                    value = TypeAdapter(hints[key]).validate_python(value)
                except ValidationError as err:
                    msg = err.errors()[0]["msg"]
                    raise ValueError(f"{key} = {value!r}: {msg}") from None
            typed[key] = value
        return typed

    def run_name(self, dataset: str | None = None) -> str:
        """What new run directories of this config are named after (``dataset``: the name of
        data given instead of the config's)."""
        device = Path(self.device).stem if is_preset_path(self.device) else self.device
        return f"{self.algorithm}-{device}-{dataset or self.dataset}"

    def check(self) -> None:
        """What the fields alone cannot say: device overrides and variation are validated by
        the physics, the cell's fields together by the cell, options by the rule and the
        dataset."""
        self.device_params()
        self.cell_params()
        parse_options(ALGORITHMS[self.algorithm], self.algorithm_options)
        check_dataset_options(self.dataset, self.dataset_options)

    def device_params(self) -> DeviceParams:
        """The device preset with variation and overrides applied (validated)."""
        params = get_device(self.device)
        if self.variation is not None:
            params = params.with_variation(self.variation)
        if self.device_overrides:
            params = params.replace(**self.device_overrides)
        return params

    def cell_params(self) -> CellParams:
        """The weight cell design (validated: e.g. agad needs chop_prob > 0)."""
        return CellParams(**self.cell.model_dump())

    def chip_config(self, n_features: int, n_outputs: int) -> ChipConfig:
        """The chip this run trains on."""
        tile = TileConfig(
            device=self.device_params(),
            periphery=Periphery(**self.periphery.model_dump()),
            update=UpdateParams(**self.update.model_dump()),
            pair=self.pair,
            weight_scale=self.weight_scale,
            cell=self.cell_params(),
            max_inputs=self.max_inputs,
            max_outputs=self.max_outputs,
        )
        return ChipConfig((n_features, *self.hidden, n_outputs), tile, self.activation)


class SpikingTrainConfig(RunConfigBase):
    """One spiking training run (Cramer et al., PNAS 2022, by default: MNIST 256-246-10)."""

    rule_kind = "spiking"
    min_hidden_layers = 1

    algorithm: RuleName = "in-the-loop"
    dataset: str = Field("mnist", description=", ".join(SPIKING_DATASETS))
    hidden: LayerSizes = Field(default_factory=lambda: [246])
    batch_size: BatchSize = 256
    instances: Instances = 1
    energy_profile: str = "brainscales2"  # insitu.energy profile pricing the chip's events
    kind: Literal["spiking"] = "spiking"
    encoding: EncodingConfig = EncodingConfig()
    recurrent: bool = False
    time_steps: int = Field(hardware_default(SpikingChipConfig, "time_steps"), ge=1, le=100_000)
    neuron: dict[str, Any] = Field(default_factory=dict)  # NeuronParams overrides
    readout_neuron: dict[str, Any] = Field(default_factory=dict)  # further ones for the readout
    mismatch: float | None = Field(None, ge=0, le=2)  # sigma_d: every fixed-pattern sigma
    # Training pictures moved by up to this many pixels each way (augmentation; 0 = none).
    augment_shift: int = Field(0, ge=0, le=8)

    def run_name(self, dataset: str | None = None) -> str:
        """What new run directories of this config are named after (``dataset``: the name of
        data given instead of the config's)."""
        sigma = "" if self.mismatch is None else f"-sigma{self.mismatch:g}"
        return f"{self.algorithm}-{dataset or self.dataset}{sigma}"

    def check(self) -> None:
        """What the fields alone cannot say: the rule's options, the neurons' overrides and a
        tonic dataset's options."""
        try:
            self.options()
            self.readout_params()
        except (TypeError, UnknownNameError) as err:
            raise ConfigError(f"invalid configuration: {err}") from None
        if self.dataset in TONIC_DATASETS:
            tonic_options(self.dataset, self.dataset_options)

    def options(self) -> SpikingOptions:
        """The trainer's options (validated)."""
        return SpikingOptions.parse(self.algorithm_options)

    def neuron_params(self) -> NeuronParams:
        """The chip's neuron: defaults, then overrides, then the mismatch sweep's sigma_d."""
        params = NeuronParams().replace(**self.neuron) if self.neuron else NeuronParams()
        return params if self.mismatch is None else params.with_mismatch(self.mismatch)

    def readout_params(self) -> NeuronParams:
        """The readout layer's neuron: the chip's with ``readout_neuron`` applied."""
        params = self.neuron_params()
        return params.replace(**self.readout_neuron) if self.readout_neuron else params

    def chip_config(self, n_inputs: int, n_classes: int) -> SpikingChipConfig:
        """The chip (and model) this run uses."""
        cfg = SpikingChipConfig.from_sizes(
            (n_inputs, *self.hidden, n_classes),
            recurrent=self.recurrent,
            neuron=self.neuron_params(),
            time_steps=self.time_steps,
        )
        if not self.readout_neuron:
            return cfg
        readout = dataclasses.replace(cfg.layers[-1], neuron=self.readout_params())
        return dataclasses.replace(cfg, layers=(*cfg.layers[:-1], readout))


def _validate(model: type[C], values: dict[str, Any]) -> C:
    """Validate ``values`` into a ``model`` config; errors name each offending field."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"a configuration must be a mapping of fields, got {type(values).__name__}"
        )
    odd = [k for k in values if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"configuration field names must be text, got {odd[0]!r}")
    try:
        cfg = model(**values)
    except ValidationError as err:
        raise ConfigError(describe_errors(err)) from None
    cfg.check()
    return cfg


def make_config(values: dict[str, Any]) -> TrainConfig:
    """Validate ``values`` into a TrainConfig; errors name each offending field."""
    return _validate(TrainConfig, values)


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML config file."""
    return make_config(read_config_file(path))


def make_spiking_config(values: dict[str, Any]) -> SpikingTrainConfig:
    """Validate ``values`` into a SpikingTrainConfig; errors name each offending field."""
    return _validate(SpikingTrainConfig, values)


def load_spiking_config(path: str | Path) -> SpikingTrainConfig:
    """Read and validate a spiking run's YAML config file."""
    return make_spiking_config(read_config_file(path))
