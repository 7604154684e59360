"""The compiled softmax cross-entropy against the torch reference it replaces on the CPU."""

from __future__ import annotations

import math

import pytest
import torch

from insitu.algorithms import loss_kernels, softmax_error
from insitu.algorithms.base import compiled_softmax_error, softmax_backend
from insitu.errors import ConfigError, DivergenceError
from insitu.hardware.backend import choose


def _reference(
    logits: torch.Tensor, y: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> tuple[torch.Tensor, torch.Tensor]:
    with monkeypatch.context() as m:
        m.setenv("INSITU_KERNELS", "0")  # read when the implementation is chosen
        error = softmax_backend(choose(logits.device))
        assert error is softmax_error
        return error(logits, y)


@pytest.mark.parametrize(("instances", "batch", "classes"), [(1, 1, 2), (1, 10, 10), (8, 7, 5)])
def test_kernel_matches_the_torch_path(
    instances: int, batch: int, classes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(instances * 31 + batch)
    logits = 4 * torch.randn((instances, batch, classes), generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    assert loss_kernels.supported(logits, y)

    loss, grad = compiled_softmax_error(logits, y)
    want_loss, want_grad = _reference(logits, y, monkeypatch)

    assert loss.dtype == grad.dtype == torch.float32
    assert loss.shape == (instances,) and grad.shape == logits.shape
    torch.testing.assert_close(loss, want_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, want_grad, rtol=1e-6, atol=1e-7)
    # The gradient of a mean cross-entropy sums to zero over the classes of each sample.
    torch.testing.assert_close(grad.sum(-1), torch.zeros(instances, batch), atol=1e-6, rtol=0)


def test_kernel_serves_only_float32_cpu_logits_outside_autograd() -> None:
    y = torch.tensor([0, 1])
    assert loss_kernels.supported(torch.zeros(1, 2, 3), y)
    assert not loss_kernels.supported(torch.zeros(1, 2, 3, dtype=torch.float64), y)
    assert not loss_kernels.supported(torch.zeros(1, 2, 3, requires_grad=True), y)
    assert not loss_kernels.supported(torch.zeros(2, 3), y)
    assert not loss_kernels.supported(torch.zeros(1, 0, 3), y[:0])  # empty batch
    assert not loss_kernels.supported(torch.zeros(1, 2, 3), y.float())  # labels must be integers


def test_non_contiguous_logits_and_int32_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn((6, 2, 3), generator=gen).transpose(0, 1)  # (2, 6, 3), strided
    y = torch.tensor([2, 0, 1, 1, 0, 2], dtype=torch.int32)
    loss, grad = compiled_softmax_error(logits, y)
    want_loss, want_grad = _reference(logits, y.long(), monkeypatch)
    torch.testing.assert_close(loss, want_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, want_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("kernels", ["1", "0"])
def test_both_paths_raise_divergence_on_a_nonfinite_logit(
    bad: float, kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSITU_KERNELS", kernels)
    error = softmax_backend(choose("cpu"))
    assert (error is compiled_softmax_error) == (kernels == "1")
    logits = torch.zeros((2, 3, 4))
    logits[1, 2, 3] = bad  # not the labelled class: every logit counts
    with pytest.raises(DivergenceError, match="NaN or infinite"):
        error(logits, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("label", [-1, 4])
def test_kernel_names_labels_outside_the_outputs(label: int) -> None:
    with pytest.raises(ConfigError, match=r"need 0 to 3 for 4 outputs"):
        compiled_softmax_error(torch.zeros((1, 2, 4)), torch.tensor([0, label]))


def test_kernel_rejects_labels_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"labels have shape \(3,\); need \(2,\)"):
        compiled_softmax_error(torch.zeros((1, 2, 4)), torch.tensor([0, 1, 2]))
