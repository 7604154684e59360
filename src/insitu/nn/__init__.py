"""insitu as a PyTorch library: analog layers whose weights live on simulated crossbar tiles.

``AnalogLinear`` and ``AnalogConv2d`` are ``nn.Module``s whose forward pass is the tile's read
(DAC, devices, noise, ADC) and whose backward pass is its transposed read; ``InSituSGD`` changes
their weights only by the tile's pulsed updates, and ``Progressive`` by progressive gradient
descent over the model's sequence of analog layers (``AnalogSequence``); ``convert`` puts any
torch model's linear and convolution layers on tiles and leaves the rest digital; ``events``
sums what the hardware did.
``LIF`` and ``SpikingLinear`` are spiking layers (software models over the pure LIF step of
:mod:`insitu.hardware.lif`); ``PerStep`` runs a frame-wise front-end on every time step;
``ChipSNN`` holds the layers of a spiking chip trained in the loop behind any torch front-end.

Imports only from :mod:`insitu.devices`, :mod:`insitu.hardware` and :mod:`insitu.errors`, except
:mod:`insitu.nn.chip`, which uses the spiking trainers' model and injection
(:mod:`insitu.algorithms`).
"""

from insitu.nn.chip import ChipSNN
from insitu.nn.conv import AnalogConv2d
from insitu.nn.convert import StackInstances, convert, instance_loss
from insitu.nn.layer import AnalogLayer, TileParameter, analog_layers, events
from insitu.nn.linear import AnalogLinear
from insitu.nn.optim import InSituSGD
from insitu.nn.options import TileOptions, tile_config
from insitu.nn.progressive import AnalogSequence, Progressive
from insitu.nn.spiking import LIF, PerStep, SpikingLinear, nominal_params

__all__ = [
    "LIF",
    "AnalogConv2d",
    "AnalogLayer",
    "AnalogLinear",
    "AnalogSequence",
    "ChipSNN",
    "InSituSGD",
    "PerStep",
    "Progressive",
    "SpikingLinear",
    "StackInstances",
    "TileOptions",
    "TileParameter",
    "analog_layers",
    "convert",
    "events",
    "instance_loss",
    "nominal_params",
    "tile_config",
]
