"""Typed configs, the runner (run directories, metrics, plots) and the demo."""

from insitu.experiments.config import TrainConfig, load_config, make_config
from insitu.experiments.crossbar_run import train
from insitu.experiments.run_kind import RunResult

__all__ = ["RunResult", "TrainConfig", "load_config", "make_config", "train"]
