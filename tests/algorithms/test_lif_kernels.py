"""The compiled LIF forward and BPTT loops equal the torch loops they stand in for."""

from __future__ import annotations

import math

import pytest
import torch

from insitu.algorithms import lif_kernels
from insitu.algorithms.lif_graph import (
    KernelLIFModel,
    LIFModelParams,
    lif_backend,
    lif_layer,
    simulate,
)
from insitu.hardware.backend import choose


def _params(refractory: int, spiking: bool = True) -> LIFModelParams:
    d = math.exp(-1.0 / 3.5)
    return LIFModelParams(d, d, 1.0, 0.1, 0.0, refractory, 10.0, spiking)


def _case(recurrent: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    drive = torch.randn((25, 2, 6, 13), generator=g) * 0.4
    w_rec = torch.randn((2, 13, 13), generator=g) * 0.3 if recurrent else None
    return drive, w_rec


@pytest.mark.parametrize(
    ("refractory", "recurrent", "spiking"),
    [(0, False, True), (1, False, True), (3, False, True), (0, True, True), (2, True, True),
     (0, False, False)],
)  # fmt: skip
def test_kernel_loops_equal_torch_loops(
    monkeypatch: pytest.MonkeyPatch, refractory: int, recurrent: bool, spiking: bool
) -> None:
    drive, w_rec = _case(recurrent)
    p = _params(refractory, spiking)
    g = torch.Generator().manual_seed(1)
    grad_v = torch.randn(drive.shape, generator=g)
    grad_z = torch.randn(drive.shape, generator=g)
    out = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("INSITU_KERNELS", flag)  # read when a model's backend is chosen
        model = lif_backend(choose(drive.device)).model
        assert isinstance(model, KernelLIFModel) == (flag == "1")
        assert lif_kernels.supported(drive, w_rec)
        v, z = model.simulate(drive, w_rec, p)
        out[flag] = (v, z, *model.backward_through_time(grad_v, grad_z, v, z, w_rec, p))
    v, z, grad_drive, grad_w_rec = out["1"]
    v_ref, z_ref, grad_drive_ref, grad_w_rec_ref = out["0"]
    # Same float32 operations in the same order: the forward pass is exact.
    assert torch.equal(z, z_ref)
    if recurrent:  # recurrent input summed in another order: equal to rounding
        torch.testing.assert_close(v, v_ref)
    else:
        assert torch.equal(v, v_ref)
    if spiking:
        assert 0.02 < float(z.mean()) < 0.5  # the case exercises spikes and resets
        if refractory:  # and the hold: no neuron spikes twice within `refractory` steps
            window = z.unfold(0, refractory + 1, 1).sum(-1)
            assert float(window.max()) == 1.0
    torch.testing.assert_close(grad_drive, grad_drive_ref, rtol=1e-5, atol=1e-5)
    if recurrent:
        assert grad_w_rec is not None and grad_w_rec_ref is not None
        torch.testing.assert_close(grad_w_rec, grad_w_rec_ref, rtol=1e-5, atol=1e-5)
    else:
        assert grad_w_rec is None and grad_w_rec_ref is None


@pytest.mark.parametrize("recurrent", [False, True])
def test_layer_gradients_equal_with_and_without_kernels(
    monkeypatch: pytest.MonkeyPatch, recurrent: bool
) -> None:
    """Through lif_layer (autograd, simulated and injected with time-last measurements)."""
    g = torch.Generator().manual_seed(2)
    inp = (torch.rand((20, 5, 30), generator=g) < 0.2).float()
    w0 = torch.randn((2, 9, 30), generator=g) * 0.5
    r0 = torch.randn((2, 9, 9), generator=g) * 0.3 if recurrent else None
    p = _params(1)
    measured_vz = simulate(torch.randn((20, 2, 5, 9), generator=g), r0, p)
    # the chip's recordings are (I, B, T, N): inject them through the same permuted views
    measured = tuple(m.permute(1, 2, 0, 3).contiguous().permute(2, 0, 1, 3) for m in measured_vz)
    results = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("INSITU_KERNELS", flag)
        backend = lif_backend(choose(inp.device))
        for inject in (False, True):
            w = w0.clone().requires_grad_(True)
            r = None if r0 is None else r0.clone().requires_grad_(True)
            x = inp.clone().requires_grad_(True)
            v, z = lif_layer(x, w, p, r, measured if inject else None, backend)  # type: ignore[arg-type]
            (v.square().mean() + (z * torch.linspace(0, 1, 9)).sum()).backward()
            grads = [x.grad, w.grad] + ([] if r is None else [r.grad])
            results[flag, inject] = (v.detach(), z.detach(), grads)
    for inject in (False, True):
        v, z, grads = results["1", inject]
        v_ref, z_ref, grads_ref = results["0", inject]
        assert torch.equal(z, z_ref)
        torch.testing.assert_close(v, v_ref)
        for a, b in zip(grads, grads_ref, strict=True):
            assert a is not None and b is not None
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
