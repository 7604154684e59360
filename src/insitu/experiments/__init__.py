"""Typed configs, the runner (run directories, metrics, plots) and the demo."""

from insitu.experiments.config import TrainConfig, load_config, make_config
from insitu.experiments.run import RunResult, train

__all__ = ["RunResult", "TrainConfig", "load_config", "make_config", "train"]
