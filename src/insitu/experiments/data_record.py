"""What a run records of its data, and the check that a resumed run trains on the same data.

Data from the config is named by the config (its files checked against published checksums).
Data given in Python, or by ``--data module:attribute`` on the command line, is recorded by
its name, origin, split sizes and content hash
(:func:`insitu.data.torch_dataset.content_sha256`): in ``dataset.json``, written before
``config.yaml`` (so a run directory with a config and no record trained on its config's
data), at the head of ``config.yaml``, and in ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor

from insitu import atomic
from insitu.data.torch_dataset import content_sha256
from insitu.errors import ConfigError

DATA_RECORD = "dataset.json"
GIVEN_IN_PYTHON = "given in Python"


class RecordedData(Protocol):
    """What a run records of its data (a Dataset or a SpikeDataset)."""

    @property
    def name(self) -> str: ...
    @property
    def x_train(self) -> Tensor: ...
    @property
    def y_train(self) -> Tensor: ...
    @property
    def x_test(self) -> Tensor: ...
    @property
    def y_test(self) -> Tensor: ...


@dataclass(frozen=True)
class DataRecord:
    """The provenance of data given to a run: its name, what it was read from (None where
    it does not say), its split sizes and the SHA-256 of its samples."""

    name: str
    origin: str | None
    train: int
    test: int
    sha256: str

    @classmethod
    def of(cls, ds: RecordedData) -> DataRecord:
        """The record of ``ds`` (hashes every sample once)."""
        origin = getattr(ds, "origin", None)
        return cls(ds.name, origin, len(ds.y_train), len(ds.y_test), content_sha256(ds))

    def describe(self) -> str:
        """One line, e.g. ``dataset 'toy' (torch...TensorDataset), 40 train / 20 test samples,
        sha256 3f2a...``."""
        origin = f" ({self.origin})" if self.origin else ""
        return (
            f"dataset {self.name!r}{origin}, {self.train} train / {self.test} test samples, "
            f"sha256 {self.sha256}"
        )

    def resume_hint(self) -> str:
        """How to give this data again."""
        imported = ":" in self.name and " " not in self.name  # named by --data module:attr
        return f"`--data {self.name}`" if imported else "the same data in Python"


def write_record(run_dir: Path, record: DataRecord) -> None:
    """Keep ``record`` in ``run_dir`` (atomically)."""
    atomic.write_json(run_dir / DATA_RECORD, asdict(record))


def read_record(run_dir: Path) -> DataRecord | None:
    """The record kept in ``run_dir``; None where the run trained on its config's data."""
    path = run_dir / DATA_RECORD
    if not path.is_file():
        return None
    try:
        return DataRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path} is not a data record written by insitu: {err}") from None


def summary_fields(ds: RecordedData, given: DataRecord | None) -> dict[str, Any]:
    """The summary fields saying which data a run used: its name, where it came from (the
    config's ``dataset``, or data ``given`` in Python with its origin and hash) and its split
    sizes."""
    fields: dict[str, Any] = {
        "dataset": ds.name,
        "dataset_source": GIVEN_IN_PYTHON if given is not None else "config",
        "dataset_sizes": {"train": len(ds.y_train), "test": len(ds.y_test)},
    }
    if given is not None:
        fields["dataset_origin"] = given.origin
        fields["dataset_sha256"] = given.sha256
    return fields


def check_same_data(run_dir: Path, given: DataRecord | None, config_dataset: str) -> None:
    """Refuse to resume ``run_dir`` on data other than it was started on (``given``: the
    record of the data given now; None: the config's ``config_dataset``)."""
    kept = read_record(run_dir)
    config = run_dir / "config.yaml"
    if kept is None and config.read_text(encoding="utf-8").startswith(f"# data {GIVEN_IN_PYTHON}"):
        raise ConfigError(  # its config says so, but no record: a run from before records
            f"cannot resume {run_dir}: it trained on data given in Python but holds no "
            f"{DATA_RECORD} to check the data against; start a new run"
        )
    if kept is None and given is None:
        return
    if kept is None:
        assert given is not None
        raise ConfigError(
            f"cannot resume {run_dir} with different data: it trained on its config's dataset "
            f"{config_dataset!r}, not on {given.name!r}; resume it without data"
        )
    if given is None:
        raise ConfigError(
            f"cannot resume {run_dir} without its data: it trained on {kept.describe()}; "
            f"resume it with {kept.resume_hint()}"
        )
    if given.sha256 != kept.sha256:
        raise ConfigError(
            f"cannot resume {run_dir} with different data: it trained on {kept.describe()}, "
            f"but the data given now is {given.describe()}; give {kept.resume_hint()}, or "
            "start a new run"
        )
