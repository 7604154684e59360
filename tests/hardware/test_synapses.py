"""Event-driven synaptic drive equals the dense matrix product."""

from __future__ import annotations

import pytest
import torch

from insitu.hardware.synapses import SPARSE_BELOW, is_sparse, synaptic_drive, weight_gradient


@pytest.mark.parametrize("density", [0.01, 0.3])
@pytest.mark.parametrize("shared", [True, False])
def test_drive_and_weight_gradient_equal_dense(density: float, shared: bool) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn((3, 7, 40), generator=g, dtype=torch.float64)
    shape = (50, 40) if shared else (3, 50, 40)
    spikes = torch.rand(shape, generator=g) < density
    assert is_sparse(spikes) == (density < SPARSE_BELOW)
    x = spikes.to(torch.float64)
    dense = torch.matmul(x, w.transpose(-1, -2))
    torch.testing.assert_close(synaptic_drive(spikes, w), dense)
    torch.testing.assert_close(synaptic_drive(x, w), dense)
    grad = torch.randn((3, 50, 7), generator=g, dtype=torch.float64)
    want = torch.matmul(grad.transpose(-1, -2), x.expand(3, 50, 40))
    torch.testing.assert_close(weight_gradient(spikes, grad), want)


def test_no_spikes_no_drive() -> None:
    w = torch.ones((2, 3, 4))
    assert synaptic_drive(torch.zeros((5, 4), dtype=torch.bool), w).abs().sum() == 0
