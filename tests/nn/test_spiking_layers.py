"""Spiking nn.Modules over the pure LIF step: shapes, composition with a torch front-end, and
agreement with the software model (forward values and surrogate gradients)."""

from __future__ import annotations

import torch
from torch import nn

from insitu.algorithms.spiking_model import SpikingNetwork
from insitu.algorithms.spiking_options import SpikingOptions
from insitu.hardware.spiking import NeuronParams, SpikingChipConfig, SpikingLayerConfig
from insitu.nn.spiking import LIF, PerStep, SpikingLinear, nominal_params

NEURON = NeuronParams(refractory_steps=1)


def test_shapes_and_non_spiking_readout() -> None:
    x = torch.rand(3, 7, 5)
    spikes = LIF(nominal_params(NEURON))(x)
    assert spikes.shape == (3, 7, 5)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    membrane = LIF(nominal_params(NEURON, spiking=False))(x)
    assert membrane.shape == (3, 7, 5) and membrane.abs().sum() > 0


def test_gradient_reaches_a_convolutional_front_end() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3)
    net = nn.Sequential(
        PerStep(conv),
        PerStep(nn.Flatten()),
        SpikingLinear(2 * 6 * 6, 16, nominal_params(NEURON)),
        SpikingLinear(16, 4, nominal_params(NEURON, spiking=False)),
    )
    with torch.no_grad():
        net[2].weight.mul_(20.0)  # enough drive that the hidden layer spikes
    x = (torch.rand(2, 10, 1, 8, 8) < 0.3).float()
    out = net(x)
    assert out.shape == (2, 10, 4)
    out.amax(dim=1).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def _network(recurrent: bool = False) -> tuple[SpikingNetwork, SpikingChipConfig]:
    config = SpikingChipConfig(
        inputs=6,
        layers=(SpikingLayerConfig(8), SpikingLayerConfig(3, spiking=False)),
        neuron=NEURON,
        time_steps=12,
    )
    gen = torch.Generator().manual_seed(3)
    net = SpikingNetwork(
        config,
        instances=1,
        options=SpikingOptions(init_scale=8.0),
        gen=gen,
        device=torch.device("cpu"),
        backend="torch",
    )
    return net, config


def test_modules_equal_the_software_model() -> None:
    net, config = _network()
    x = torch.rand(4, config.time_steps, 6, generator=torch.Generator().manual_seed(1)) < 0.4
    x = x.float()
    hidden = SpikingLinear(6, 8, nominal_params(NEURON))
    readout = SpikingLinear(8, 3, nominal_params(NEURON, spiking=False))
    with torch.no_grad():
        hidden.weight.copy_(net.weights[0][0])
        readout.weight.copy_(net.weights[1][0])

    v_ref, spikes_ref = net.forward(x)  # (T, I, B, N)
    z = hidden(x)
    v = readout(z)
    assert spikes_ref[0].sum() > 0
    assert torch.equal(z, spikes_ref[0][:, 0].transpose(0, 1))
    torch.testing.assert_close(v, v_ref[:, 0].transpose(0, 1), rtol=1e-5, atol=1e-6)

    # The surrogate gradients agree with the model's hand-written backward pass.
    g = torch.randn_like(v)
    (v_ref[:, 0].transpose(0, 1) * g).sum().backward()
    (v * g).sum().backward()
    assert hidden.weight.grad is not None and readout.weight.grad is not None
    assert hidden.weight.grad.abs().sum() > 0
    torch.testing.assert_close(hidden.weight.grad, net.weights[0].grad[0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(readout.weight.grad, net.weights[1].grad[0], rtol=1e-4, atol=1e-6)
