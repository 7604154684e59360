"""The compiled event-driven drive and weight gradient equal the torch path's."""

from __future__ import annotations

import pytest
import torch

from insitu.hardware import synapse_kernels
from insitu.hardware.backend import choose
from insitu.hardware.synapses import KernelSynapses, TorchSynapses, synaptic_backend


def _both_paths(
    monkeypatch: pytest.MonkeyPatch, spikes: torch.Tensor, w: torch.Tensor, grad: torch.Tensor
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    monkeypatch.setenv("INSITU_KERNELS", "1")
    fast = synaptic_backend(choose(spikes.device))
    assert isinstance(fast, KernelSynapses) and fast.events(spikes, w) is not None
    kernel = fast.drive(spikes, w), fast.weight_gradient(spikes, grad)
    monkeypatch.setenv("INSITU_KERNELS", "0")
    slow = synaptic_backend(choose(spikes.device))
    assert isinstance(slow, TorchSynapses)
    reference = slow.drive(spikes, w), slow.weight_gradient(spikes, grad)
    return kernel, reference


@pytest.mark.parametrize("spike_dtype", [torch.bool, torch.float32])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_kernels_equal_torch_path(
    monkeypatch: pytest.MonkeyPatch, spike_dtype: torch.dtype, shared: bool, dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(3)
    i_n, rows, n_in, n_out = 3, 90, 33, 11
    w = torch.randn((i_n, n_out, n_in), generator=g, dtype=dtype)
    shape = (rows, n_in) if shared else (i_n, rows, n_in)
    spikes = (torch.rand(shape, generator=g) < 0.02).to(spike_dtype)
    assert 0 < int(spikes.count_nonzero()) < 0.05 * spikes.numel()  # the event-driven path
    grad = torch.randn((i_n, rows, n_out), generator=g, dtype=dtype)
    (drive, grad_w), (drive_ref, grad_w_ref) = _both_paths(monkeypatch, spikes, w, grad)
    assert drive.shape == (i_n, rows, n_out) and drive.dtype == dtype
    assert grad_w.shape == (i_n, n_out, n_in) and grad_w.dtype == dtype
    torch.testing.assert_close(drive, drive_ref)
    torch.testing.assert_close(grad_w, grad_w_ref)
    # and both equal the dense products they stand for
    x = spikes.to(dtype).expand(i_n, rows, n_in)
    torch.testing.assert_close(drive, x @ w.transpose(1, 2))
    torch.testing.assert_close(grad_w, grad.transpose(1, 2) @ x)


def test_dense_spikes_take_the_matrix_product(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(4)
    w = torch.randn((2, 5, 20), generator=g)
    spikes = (torch.rand((2, 30, 20), generator=g) < 0.4).float()
    grad = torch.randn((2, 30, 5), generator=g)
    (drive, grad_w), (drive_ref, grad_w_ref) = _both_paths(monkeypatch, spikes, w, grad)
    torch.testing.assert_close(drive, drive_ref)
    torch.testing.assert_close(grad_w, grad_w_ref)


def test_silent_rows_and_inputs_give_zeros() -> None:
    """Rows without events get zero drive and inputs that never spiked zero gradient, also
    where the output buffers start with garbage (np.empty)."""
    kernels = KernelSynapses()
    w = torch.ones((2, 4, 6))
    spikes = torch.zeros((40, 6), dtype=torch.bool)
    spikes[3, 1] = True
    drive = kernels.drive(spikes, w)
    assert float(drive.abs().sum()) == 2 * 4  # one event, every instance, every output
    assert float(drive[:, 3].sum()) == 2 * 4
    grad = torch.ones((2, 40, 4))
    grad_w = kernels.weight_gradient(spikes, grad)
    assert float(grad_w[:, :, 1].sum()) == 2 * 4
    assert float(grad_w.abs().sum()) == 2 * 4


def test_events_are_csr_rows() -> None:
    spikes = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.float32)
    events = synapse_kernels.events(spikes)
    assert events.indptr.tolist() == [0, 2, 2, 3]
    assert events.cols.tolist() == [1, 3, 0]
    assert events.n_events == 3
