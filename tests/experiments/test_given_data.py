"""Crossbar runs on data given in Python (torch datasets): the provenance they record, and
resumes refused on other data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_checkpoint import Interrupted, assert_same_run, interrupt_after
from torch.utils.data import DataLoader, TensorDataset

from insitu.data import content_sha256, from_torch
from insitu.errors import ConfigError
from insitu.experiments import load_config, make_config, train
from insitu.experiments.checkpoint import CHECKPOINT_NAME
from insitu.experiments.config import TrainConfig
from insitu.experiments.run import new_run_dir

SMALL = {"epochs": 2, "instances": 1, "hidden": [4], "batch_size": 8, "eval_train_limit": 16}


def bars(n: int, seed: int) -> TensorDataset:
    """``n`` noisy 3x3 pictures of a horizontal (class 0) or vertical (class 1) bar."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.2 * torch.rand(n, 1, 3, 3, generator=g)
    for i in range(n):
        row = int(torch.randint(0, 3, (), generator=g))
        if y[i] == 0:
            x[i, 0, row, :] = 1.0
        else:
            x[i, 0, :, row] = 1.0
    return TensorDataset(x, y)


def pair() -> tuple[TensorDataset, TensorDataset]:
    return bars(32, seed=0), bars(16, seed=1)


def cfg(**changes: object) -> TrainConfig:
    return make_config({**SMALL, **changes})


def test_a_torch_pair_trains_and_is_recorded_with_its_hash(tmp_path: Path) -> None:
    train_set, test_set = pair()
    run = tmp_path / "run"
    result = train(
        cfg(), run, dataset=(train_set, DataLoader(test_set, batch_size=5)), progress=False
    )
    assert result.summary["status"] == "finished"
    assert [r["epoch"] for r in result.rows] == [0, 1, 2]

    expected = content_sha256(from_torch(train_set, test_set))
    origin = (
        "torch.utils.data.dataset.TensorDataset (train), "
        "DataLoader over torch.utils.data.dataset.TensorDataset (test)"
    )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"] == "TensorDataset"
    assert summary["dataset_source"] == "given in Python"
    assert summary["dataset_sizes"] == {"train": 32, "test": 16}
    assert summary["dataset_origin"] == origin
    assert summary["dataset_sha256"] == expected
    assert summary["layers"] == [9, 4, 2]  # 3x3 pictures flattened, two classes
    record = json.loads((run / "dataset.json").read_text())
    assert record == {
        "name": "TensorDataset",
        "origin": origin,
        "train": 32,
        "test": 16,
        "sha256": expected,
    }
    text = (run / "config.yaml").read_text()
    head = text.splitlines()[0]
    assert head.startswith("# data given in Python: dataset 'TensorDataset' (")
    assert f"32 train / 16 test samples, sha256 {expected}; the `dataset` field" in head
    assert "dataset: digits  # NOT USED: the run trained on 'TensorDataset'" in text
    assert load_config(run / "config.yaml") == cfg()


def test_the_same_data_gives_the_same_hash_and_run(tmp_path: Path) -> None:
    first = train(cfg(epochs=1), tmp_path / "a", dataset=pair(), progress=False)
    second = train(cfg(epochs=1), tmp_path / "b", dataset=pair(), progress=False)
    assert first.summary["dataset_sha256"] == second.summary["dataset_sha256"]
    assert first.final_test_acc == second.final_test_acc
    other = train(cfg(epochs=1), tmp_path / "c", dataset=(bars(32, 5), bars(16, 1)), progress=False)
    assert other.summary["dataset_sha256"] != first.summary["dataset_sha256"]


def test_an_interrupted_run_resumes_on_the_same_data_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cfg(checkpoint_every=3)
    reference = tmp_path / "reference"
    train(config, reference, dataset=pair(), progress=False)
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)  # dies at its first checkpoint: batch 3 of 4 in epoch 1
        with pytest.raises(Interrupted):
            train(config, run, dataset=pair(), progress=False)
    assert (run / CHECKPOINT_NAME).exists() and not (run / "summary.json").exists()
    train(config, run, dataset=pair(), progress=False, resume=True)
    assert_same_run(run, reference)


def test_a_resume_on_other_data_is_refused_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(Interrupted):
            train(cfg(), run, dataset=pair(), progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    train_set, test_set = pair()
    changed = TensorDataset(train_set.tensors[0], 1 - train_set.tensors[1])  # labels swapped
    with pytest.raises(ConfigError) as info:
        train(cfg(), run, dataset=(changed, test_set), progress=False, resume=True)
    message = str(info.value)
    kept = json.loads((run / "dataset.json").read_text())["sha256"]
    assert f"cannot resume {run} with different data: it trained on dataset 'TensorDataset'" in (
        message
    )
    assert kept in message and content_sha256(from_torch(changed, test_set)) in message
    assert "give the same data in Python, or start a new run" in message
    with pytest.raises(ConfigError, match="without its data: it trained on dataset"):
        train(cfg(), run, progress=False, resume=True)  # would silently train on digits
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_finished_run_is_returned_only_for_its_own_data(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = train(cfg(epochs=1), run, dataset=pair(), progress=False)
    again = train(cfg(epochs=1), run, dataset=pair(), progress=False, resume=True)
    assert again.summary == done.summary
    with pytest.raises(ConfigError, match="with different data"):
        train(cfg(epochs=1), run, dataset=(bars(32, 7), bars(16, 1)), resume=True, progress=False)


def test_a_run_on_given_data_without_its_record_is_not_resumed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(cfg(epochs=1), run, dataset=pair(), progress=False)
    (run / "dataset.json").unlink()  # as a run from before records were kept
    for data in (pair(), None):
        with pytest.raises(ConfigError, match=r"holds no dataset\.json to check the data against"):
            train(cfg(epochs=1), run, dataset=data, progress=False, resume=True)


def test_a_run_of_the_config_data_refuses_data_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(cfg(epochs=1, limit_train=20, limit_test=10), run, progress=False)
    assert not (run / "dataset.json").exists()
    with pytest.raises(ConfigError, match="it trained on its config's dataset 'digits', not on"):
        train(
            cfg(epochs=1, limit_train=20, limit_test=10),
            run,
            dataset=pair(),
            resume=True,
            progress=False,
        )


def test_malformed_data_fails_before_the_run_directory_is_made(tmp_path: Path) -> None:
    train_set, test_set = pair()
    floats = TensorDataset(train_set.tensors[0], train_set.tensors[1].float())
    with pytest.raises(ConfigError, match="second tensor must be integer classes"):
        train(cfg(), tmp_path / "run", dataset=(floats, test_set), progress=False)
    with pytest.raises(ConfigError, match="must be a pair \\(train, test\\)"):
        train(cfg(), tmp_path / "run", dataset=train_set)  # type: ignore[arg-type]
    assert not (tmp_path / "run").exists()


def test_new_run_directories_are_named_after_the_data_given(tmp_path: Path) -> None:
    made = new_run_dir(tmp_path, cfg(), "mypkg.data:make_data")
    assert made.name.endswith("-analog-sgd-ecram-organic-mypkg.data-make_data")
    assert new_run_dir(tmp_path, cfg()).name.endswith("-analog-sgd-ecram-organic-digits")
