"""Output targets: squared error to target vectors and nearest-target decoding."""

from __future__ import annotations

import pytest
import torch

from insitu.algorithms import make_trainer, squared_error
from insitu.devices import get_device
from insitu.errors import ConfigError, DivergenceError
from insitu.hardware import ChipConfig, TileConfig

CONFIG = ChipConfig((4, 5, 3), TileConfig(get_device("ideal")))


def test_squared_error_and_its_gradient() -> None:
    out = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    loss, grad = squared_error(out, target)
    assert loss.shape == (1,)
    assert float(loss.detach()[0]) == pytest.approx(0.5 * (1 + 4 + 1) / 2)
    (auto,) = torch.autograd.grad(loss.sum(), out)
    assert torch.allclose(grad, auto)


def test_squared_error_rejects_nan() -> None:
    with pytest.raises(DivergenceError):
        squared_error(torch.full((1, 2, 3), float("nan")), torch.zeros(2, 3))


def test_classify_decodes_the_nearest_target() -> None:
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    trainer = make_trainer("software", CONFIG, instances=1, targets=targets)
    out = torch.tensor([[[0.9, 0.6, 0.4], [0.1, 0.3, 0.8], [0.6, 0.9, 0.55]]])
    assert trainer.classify(out).tolist() == [[0, 1, 0]]
    # The largest output would have said class 0, 2, 1: a different rule.
    assert out.argmax(-1).tolist() != trainer.classify(out).tolist()


def test_without_targets_classify_is_argmax_and_targets_are_one_hot() -> None:
    trainer = make_trainer("software", CONFIG, instances=1)
    out = torch.tensor([[[0.1, 0.7, 0.2]]])
    assert trainer.classify(out).tolist() == [[1]]
    assert trainer.target_vectors(torch.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]


def test_target_shape_must_match_the_output_layer() -> None:
    with pytest.raises(ConfigError, match=r"need \(classes, 3\)"):
        make_trainer("software", CONFIG, targets=torch.zeros(2, 4))


@pytest.mark.parametrize("name", ["software", "analog-sgd", "progressive", "transfer"])
def test_backprop_rules_descend_the_squared_error_with_targets(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(3, 3, generator=gen) > 0.5).float()
    trainer = make_trainer(name, CONFIG, instances=1, lr=0.2, targets=targets)
    x = torch.rand(30, 4, generator=gen)
    y = torch.arange(30) % 3
    before = float(squared_error(trainer.predict(x), targets[y])[0][0])
    for _ in range(100):
        trainer.train_batch(x, y)
    trainer.finish()
    after = float(squared_error(trainer.predict(x), targets[y])[0][0])
    assert after < 0.7 * before
