"""Typed, validated configuration of a spiking-network run (in-the-loop, deploy, software)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from insitu.algorithms.spiking import SpikingOptions
from insitu.data import DATASET_NAMES
from insitu.energy import check_profile_kind
from insitu.errors import ConfigError, UnknownNameError
from insitu.experiments.config import _describe, _Strict, check_rule, read_config_file
from insitu.hardware.spiking import NeuronParams, SpikingChipConfig

# Images latency-coded on load (digits: embedded, no download) and event datasets.
IMAGE_SPIKING_DATASETS = ("digits", "mnist", "fashion-mnist")
SPIKING_DATASETS = (*IMAGE_SPIKING_DATASETS, "nmnist", "shd")


class EncodingConfig(_Strict):
    """Images -> spikes: resize to ``size`` x ``size`` (after cropping ``crop`` pixels per side)
    and one latency spike per pixel at ``t = tau ln(x / (x - threshold))`` (steps)."""

    size: int | None = Field(None, ge=1, le=1024)  # None: 8 for digits (as stored), else 16
    crop: int | None = Field(None, ge=0, le=100)  # None: 2 for MNIST (28 -> 24 -> 16), else 0
    tau: float = Field(8.0, gt=0, le=1e6)
    threshold: float = Field(0.2, ge=0, lt=1)


class SpikingTrainConfig(_Strict):
    """One spiking training run (Cramer et al., PNAS 2022, by default: MNIST 256-246-10)."""

    kind: Literal["spiking"] = "spiking"
    algorithm: str = "in-the-loop"
    algorithm_options: dict[str, Any] = Field(default_factory=dict)
    dataset: str = "mnist"
    dataset_options: dict[str, Any] = Field(default_factory=dict)  # nmnist / shd loader args
    encoding: EncodingConfig = EncodingConfig()
    hidden: list[int] = Field(default_factory=lambda: [246])
    recurrent: bool = False
    time_steps: int = Field(30, ge=1, le=100_000)
    neuron: dict[str, Any] = Field(default_factory=dict)  # NeuronParams overrides
    readout_neuron: dict[str, Any] = Field(default_factory=dict)  # further ones for the readout
    mismatch: float | None = Field(None, ge=0, le=2)  # sigma_d: every fixed-pattern sigma
    epochs: int = Field(20, ge=1, le=100_000)
    batch_size: int = Field(256, ge=1, le=100_000)
    lr_decay: float = Field(1.0, gt=0, le=1)
    # Training pictures moved by up to this many pixels each way (augmentation; 0 = none).
    augment_shift: int = Field(0, ge=0, le=8)
    instances: int = Field(1, ge=1, le=4096)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    data_dir: str | None = None
    limit_train: int | None = Field(None, ge=1)
    limit_test: int | None = Field(None, ge=1)
    eval_train_limit: int | None = Field(2000, ge=1)
    energy_profile: str = "brainscales2"  # insitu.energy profile pricing the chip's events
    # A checkpoint every this many mini-batches (and at each epoch end): resume with --resume.
    checkpoint_every: int | None = Field(None, ge=1)

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, v: str) -> str:
        return check_rule(v, "spiking")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v in DATASET_NAMES and v not in SPIKING_DATASETS:
            raise ValueError(
                f"{v} is a crossbar dataset: use `insitu train --dataset {v}` "
                f"(spiking datasets: {', '.join(SPIKING_DATASETS)})"
            )
        if v not in SPIKING_DATASETS:
            raise ValueError(f"unknown spiking dataset {v!r}; valid: {', '.join(SPIKING_DATASETS)}")
        return v

    @field_validator("energy_profile")
    @classmethod
    def _spiking_profile(cls, v: str) -> str:
        check_profile_kind(v, "spiking")
        return v

    @field_validator("hidden")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        if not v or any(n < 1 for n in v):
            raise ValueError(f"hidden layer sizes must be >= 1 (at least one layer), got {v}")
        return v

    def run_name(self) -> str:
        """What new run directories of this config are named after."""
        sigma = "" if self.mismatch is None else f"-sigma{self.mismatch:g}"
        return f"{self.algorithm}-{self.dataset}{sigma}"

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


def make_spiking_config(values: dict[str, Any]) -> SpikingTrainConfig:
    """Validate ``values`` into a SpikingTrainConfig; errors name each offending field."""
    if not isinstance(values, dict):
        raise ConfigError(
            f"a configuration must be a mapping of fields, got {type(values).__name__}"
        )
    try:
        cfg = SpikingTrainConfig(**values)
        cfg.options()
        cfg.readout_params()
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    except (TypeError, UnknownNameError) as err:
        raise ConfigError(f"invalid configuration: {err}") from None
    return cfg


def load_spiking_config(path: str | Path) -> SpikingTrainConfig:
    """Read and validate a spiking run's YAML config file."""
    return make_spiking_config(read_config_file(path))
