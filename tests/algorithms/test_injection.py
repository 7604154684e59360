"""The in-the-loop injection: measured values forward, the model's gradient backward."""

from __future__ import annotations

import pytest
import torch

from insitu.algorithms.injection import inject, measured_forward_model_backward, measured_layer
from insitu.hardware.observables import Observables
from insitu.hardware.spiking import Recording


def test_forward_is_the_measurement_backward_the_models_gradient() -> None:
    model = torch.randn(3, 4, requires_grad=True)
    measured = torch.randn(3, 4)
    out = measured_forward_model_backward(model * 2.0, measured)
    assert torch.equal(out, measured)
    assert out.data_ptr() != measured.data_ptr()  # a copy, never an alias
    g = torch.randn(3, 4)
    out.backward(g)
    assert model.grad is not None
    assert torch.equal(model.grad, 2.0 * g)


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="shape"):
        measured_forward_model_backward(torch.zeros(2, 3), torch.zeros(3, 2))


def test_inject_swaps_every_measured_observable() -> None:
    v = torch.randn(5, requires_grad=True)
    z = torch.rand(5, requires_grad=True)
    adaptation = torch.randn(5, requires_grad=True)
    kept = torch.randn(5, requires_grad=True)
    model = Observables(v, z, {"adaptation": adaptation, "current": kept})
    measured = Observables(torch.ones(5), torch.zeros(5), {"adaptation": torch.full((5,), 3.0)})
    out = inject(model, measured)
    assert torch.equal(out.membrane, measured.membrane)
    assert torch.equal(out.spikes, measured.spikes)
    assert torch.equal(out.extra["adaptation"], measured.extra["adaptation"])
    assert out.extra["current"] is kept  # not measured: the model's own value
    (out.membrane + 2 * out.spikes + 3 * out.extra["adaptation"]).sum().backward()
    for t, k in ((v, 1.0), (z, 2.0), (adaptation, 3.0)):
        assert t.grad is not None and torch.equal(t.grad, torch.full((5,), k))


def test_measured_layer_is_time_major() -> None:
    spikes = torch.rand(2, 3, 7, 4)  # (I, B, T, N) as the chip records
    membrane = torch.rand(2, 3, 7, 4)
    obs = measured_layer(Recording((spikes,), (membrane,)), 0)
    assert obs.membrane.shape == (7, 2, 3, 4)
    assert torch.equal(obs.spikes[5, 1, 2], spikes[1, 2, 5])
