"""A spiking analog chip in the style of BrainScaleS-2: LIF neurons with mismatch and noise.

After Cramer, Billaudelle, Kanya, ..., Schemmel, Zenke, "Surrogate gradients for analog
neuromorphic computing", PNAS 119, e2109194119 (2022): analog current-based leaky
integrate-and-fire neurons running 1000x faster than biology; every connection is an excitatory
and an inhibitory 6-bit synapse, i.e. a signed integer weight in -63..63; membrane voltages are
sampled by a column-parallel 8-bit ADC every ~1.7 us; every neuron's time constants, threshold
and leak carry fixed-pattern mismatch, and the membrane carries trial-to-trial noise.

Chip protocol (what an algorithm may call): ``write_weights`` (signed integers) and
``run(input_spikes) -> Recording``. The drawn neuron parameters and the stored weights are
private; tests and plots reach them through :mod:`insitu.hardware.inspection`.

Dynamics in discrete time, one step = one ADC sample period (``dt_seconds``), per neuron with
membrane ``V``, synaptic current ``I``, input spikes ``x`` and the layer's own spikes ``z``::

    V[t] = leak + (V[t-1] - leak) * exp(-1/tau_m) + I[t-1] + membrane_noise * xi[t]
    z[t] = V[t] >= threshold            (unless refractory or dead)
    I[t] = I[t-1] * exp(-1/tau_s) + gain * (W x[t] + W_rec z[t])

with ``V[-1] = leak`` and ``I[-1] = 0``. After a spike ``V`` is set to ``reset`` and held there
for ``refractory_steps`` steps. The sample at step t is ``V[t]`` before the reset: a spike's own
sample shows the threshold crossing, the reset shows from the next sample. An input spike at step
t moves the membrane from step t+1 on, so each layer adds one step of latency. A non-spiking
readout layer is the same leaky integrator without threshold; its membrane is the output.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from insitu.errors import ConfigError, check_range
from insitu.hardware.backend import BackendChoice, choose
from insitu.hardware.events import Event, EventLog
from insitu.hardware.lif_emulation import adc_measure, layer_emulation
from insitu.hardware.neurons import IDEAL_NEURON, NeuronArray, NeuronParams, sample_neurons
from insitu.hardware.synapses import synaptic_backend

__all__ = [
    "IDEAL_NEURON",
    "WEIGHT_LIMIT",
    "NeuronArray",
    "NeuronParams",
    "Recording",
    "SpikingChip",
    "SpikingChipConfig",
    "SpikingLayerConfig",
    "adc_measure",
    "sample_neurons",
]

WEIGHT_LIMIT = 63
"""Largest weight magnitude: a 6-bit synapse; the sign picks the excitatory or inhibitory row."""


@dataclass(frozen=True)
class SpikingLayerConfig:
    """One layer of neurons and the synapses feeding it.

    Attributes:
        size: number of neurons.
        recurrent: the layer's own spikes also drive it through a second weight matrix.
        spiking: False makes a non-spiking leaky-integrator readout (only the last layer).
        neuron: this layer's neuron parameters; None = the chip's.
    """

    size: int
    recurrent: bool = False
    spiking: bool = True
    neuron: NeuronParams | None = None

    def __post_init__(self) -> None:
        if int(self.size) != self.size or self.size < 1:
            raise ConfigError(f"layer size = {self.size!r}; need an integer >= 1")
        if self.recurrent and not self.spiking:
            raise ConfigError("a non-spiking readout layer has no spikes to recur: recurrent")


@dataclass(frozen=True)
class SpikingChipConfig:
    """A feed-forward stack of (optionally recurrent) LIF layers.

    Attributes:
        inputs: number of input channels (spike sources driving the first layer).
        layers: the layers in order; only the last may be a non-spiking readout.
        neuron: neuron parameters of every layer that does not set its own.
        time_steps: steps per sample (each ``neuron.dt_seconds`` long).
    """

    inputs: int
    layers: tuple[SpikingLayerConfig, ...]
    neuron: NeuronParams = field(default_factory=NeuronParams)
    time_steps: int = 30

    def __post_init__(self) -> None:
        layers = tuple(
            SpikingLayerConfig(**lay) if isinstance(lay, Mapping) else lay for lay in self.layers
        )
        object.__setattr__(self, "layers", layers)
        if int(self.inputs) != self.inputs or self.inputs < 1:
            raise ConfigError(f"inputs = {self.inputs!r}; need an integer >= 1")
        if not layers:
            raise ConfigError("layers is empty; need at least one layer")
        if any(not lay.spiking for lay in layers[:-1]):
            raise ConfigError("only the last layer may be a non-spiking readout")
        if int(self.time_steps) != self.time_steps:
            raise ConfigError(f"time_steps = {self.time_steps!r}; need an integer")
        check_range("time_steps", self.time_steps, low=1, high=1_000_000)

    @classmethod
    def from_sizes(
        cls,
        sizes: Sequence[int],
        *,
        recurrent: bool | Sequence[bool] = False,
        readout: bool = True,
        neuron: NeuronParams | None = None,
        time_steps: int = 30,
    ) -> SpikingChipConfig:
        """``sizes = (inputs, hidden..., outputs)``; ``recurrent`` per layer or for every
        spiking hidden layer; ``readout`` makes the last layer a non-spiking integrator."""
        n = len(sizes) - 1
        if n < 1:
            raise ConfigError(f"sizes = {tuple(sizes)}; need inputs and at least one layer")
        if isinstance(recurrent, bool):
            rec = [recurrent and not (readout and k == n - 1) for k in range(n)]
        else:
            rec = list(recurrent)
            if len(rec) != n:
                raise ConfigError(f"recurrent has {len(rec)} entries for {n} layers")
        layers = tuple(
            SpikingLayerConfig(size, recurrent=r, spiking=not (readout and k == n - 1))
            for k, (size, r) in enumerate(zip(sizes[1:], rec, strict=True))
        )
        return cls(sizes[0], layers, neuron or NeuronParams(), time_steps)

    @property
    def sizes(self) -> tuple[int, ...]:
        """(inputs, layer sizes...)."""
        return (self.inputs, *(lay.size for lay in self.layers))

    def neuron_params(self, layer: int) -> NeuronParams:
        """The neuron parameters of ``layer``."""
        return self.layers[layer].neuron or self.neuron


class Recording(NamedTuple):
    """What a run sends back to the host; every tensor is (instances, batch, time, neurons)."""

    # Fields spelled torch.Tensor: the API reference (pdoc) resolves a NamedTuple's generated
    # __new__ annotations without this module's names.
    spikes: tuple[torch.Tensor, ...]  # per layer, 0/1 float32 (all 0 for a non-spiking readout)
    membrane: tuple[torch.Tensor, ...]  # per layer, ADC-measured membrane voltages

    @property
    def readout(self) -> Tensor:
        """The last layer's measured membrane (the readout traces)."""
        return self.membrane[-1]


class SpikingChip:
    """N instances of a spiking analog chip, each with its own fixed-pattern mismatch.

    Weights start at 0. Every run draws fresh temporal noise from the chip's generator.
    ``backend``: ``auto``, ``torch`` or ``kernel``, the implementation of the synaptic drive
    and the neurons' time loop, chosen once here (see :func:`insitu.hardware.backend.choose`).
    """

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        backend: BackendChoice = "auto",
    ) -> None:
        if instances < 1:
            raise ConfigError(f"instances = {instances}; need at least 1")
        self.config = config
        self.instances = instances
        self.device = torch.device(device)
        implementation = choose(self.device, torch.float32, backend)
        self._synapses = synaptic_backend(implementation)
        self._emulate = layer_emulation(implementation)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.log = EventLog()
        sizes = config.sizes
        self._neurons = [
            sample_neurons(
                config.neuron_params(k),
                (instances, lay.size),
                self.generator,
                self.device,
                lay.spiking,
            )
            for k, lay in enumerate(config.layers)
        ]
        self._w = [
            torch.zeros((instances, n_out, n_in), dtype=torch.int8, device=self.device)
            for n_in, n_out in itertools.pairwise(sizes)
        ]
        self._w_rec: list[Tensor | None] = [
            torch.zeros((instances, lay.size, lay.size), dtype=torch.int8, device=self.device)
            if lay.recurrent
            else None
            for lay in config.layers
        ]

    @property
    def n_layers(self) -> int:
        """Number of neuron layers (weight matrices excluding recurrent ones)."""
        return len(self.config.layers)

    @property
    def sample_seconds(self) -> float:
        """Hardware time of one sample: ``time_steps * dt_seconds``."""
        return self.config.time_steps * self.config.neuron.dt_seconds

    def weight_shape(self, layer: int, recurrent: bool = False) -> tuple[int, int]:
        """(out, in) of ``layer``'s feed-forward (or recurrent) weights."""
        sizes = self.config.sizes
        n_out = sizes[layer + 1]
        return (n_out, n_out) if recurrent else (n_out, sizes[layer])

    # -- protocol ---------------------------------------------------------------------------
    def write_weights(self, layer: int, weights: Tensor, recurrent: bool = False) -> None:
        """Write signed integer weights in -63..63, (out, in) for every instance or
        (instances, out, in). Anything else is refused: scale, round and clip before writing."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer = {layer}; the chip has layers 0 to {self.n_layers - 1}")
        if recurrent and self._w_rec[layer] is None:
            raise ValueError(f"layer {layer} has no recurrent synapses (recurrent=False)")
        kind = "recurrent" if recurrent else "feed-forward"
        shape = self.weight_shape(layer, recurrent)
        w = weights.to(self.device)
        if w.dim() == 2:
            w = w.unsqueeze(0).expand(self.instances, -1, -1)
        if tuple(w.shape) != (self.instances, *shape):
            raise ValueError(
                f"layer {layer} {kind} weights have shape {tuple(weights.shape)}; expected "
                f"{shape} or ({self.instances}, {shape[0]}, {shape[1]})"
            )
        if w.dtype == torch.bool or w.is_complex():
            raise ValueError(f"layer {layer} {kind} weights have dtype {w.dtype}; need integers")
        if w.is_floating_point() and not bool((torch.isfinite(w) & (w == w.round())).all()):
            raise ValueError(
                f"layer {layer} {kind} weights must be integers (6-bit synapses); got "
                "non-integer values: round them before writing"
            )
        lo, hi = (int(v) for v in torch.aminmax(w))
        if lo < -WEIGHT_LIMIT or hi > WEIGHT_LIMIT:
            raise ValueError(
                f"layer {layer} {kind} weights must lie in [-{WEIGHT_LIMIT}, {WEIGHT_LIMIT}] "
                f"(6-bit synapses, the sign picks the excitatory or inhibitory row); got values "
                f"from {lo} to {hi}: scale and clip before writing"
            )
        stored = w.to(torch.int8).clone()
        if recurrent:
            self._w_rec[layer] = stored
        else:
            self._w[layer] = stored
        self.log.add(Event.HOST_BYTES_IN, stored.numel())  # one byte per synapse

    def run(self, input_spikes: Tensor) -> Recording:
        """Emulate every layer for ``input_spikes`` (batch, time, inputs) shared by all
        instances, or (instances, batch, time, inputs); values 0 or 1."""
        x = self._check_input(input_spikes)
        i_n = self.instances
        b, t = x.shape[-3], x.shape[-2]
        copies = i_n if x.dim() == 3 else 1  # shared inputs are sent to every instance
        in_spikes = x.sum() * copies
        self.log.add(Event.HOST_BYTES_IN, 4 * in_spikes)
        self.log.add(Event.EMULATION_STEP, i_n * b * t)
        spikes: list[Tensor] = []
        membrane: list[Tensor] = []
        for layer, lay in enumerate(self.config.layers):
            self.log.add(Event.SYNAPTIC_EVENT, in_spikes * lay.size)
            z, v = self._run_layer(layer, x)
            out_spikes = z.sum()
            if lay.recurrent:
                self.log.add(Event.SYNAPTIC_EVENT, out_spikes * lay.size)
            samples = v.numel()
            self.log.add(Event.NEURON_STEP, samples)
            self.log.add(Event.ADC_SAMPLE, samples)
            self.log.add(Event.HOST_BYTES_OUT, samples)  # one byte per ADC sample
            if lay.spiking:
                self.log.add(Event.HOST_BYTES_OUT, 4 * out_spikes)
            spikes.append(z)
            membrane.append(v)
            x, in_spikes = z, out_spikes
        return Recording(tuple(spikes), tuple(membrane))

    # -- simulation -------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> Tensor:
        n_in, steps = self.config.inputs, self.config.time_steps
        shared_ok = x.dim() == 3
        own_ok = x.dim() == 4 and x.shape[0] == self.instances
        if not (shared_ok or own_ok) or x.shape[-1] != n_in or x.shape[-2] != steps:
            raise ValueError(
                f"input spikes have shape {tuple(x.shape)}; expected (batch, {steps}, {n_in}) "
                f"or ({self.instances}, batch, {steps}, {n_in})"
            )
        x = x.to(self.device)
        if x.dtype != torch.bool and bool(((x != 0) & (x != 1)).any()):
            raise ValueError("input spikes must be 0 or 1 (one spike per input per step)")
        return x.to(torch.float32)

    def _run_layer(self, layer: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """Spikes (0/1 float) and ADC-measured membrane of ``layer``, each (I, B, T, N)."""
        lay = self.config.layers[layer]
        p = self.config.neuron_params(layer)
        nrn = self._neurons[layer]
        i_n, n = self.instances, lay.size
        b, t_steps, n_in = x.shape[-3:]
        # Gain belongs to the post-synaptic neuron: fold it into its row of weights.
        w = self._w[layer].to(torch.float32) * nrn.gain.unsqueeze(-1)  # (I, N, in)
        flat = x.reshape(b * t_steps, n_in) if x.dim() == 3 else x.reshape(i_n, b * t_steps, n_in)
        drive = self._synapses.drive(flat, w).view(i_n, b, t_steps, n)
        w_rec = self._w_rec[layer]
        rec_t = None
        if w_rec is not None:
            rec_t = (w_rec.to(torch.float32) * nrn.gain.unsqueeze(-1)).transpose(1, 2)
        noise = None
        if p.membrane_noise > 0:
            shape = (t_steps, i_n, b, n)
            noise = p.membrane_noise * torch.randn(shape, generator=self.generator, device=x.device)
        refractory = p.refractory_steps if lay.spiking else 0
        return self._emulate(drive, noise, nrn, p, lay.spiking, refractory, rec_t)

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Full chip state: weights, drawn neuron parameters, event log and the generator."""
        return {
            "weights": [w.clone() for w in self._w],
            "recurrent_weights": [None if w is None else w.clone() for w in self._w_rec],
            "neurons": [{k: v.clone() for k, v in nrn._asdict().items()} for nrn in self._neurons],
            "log": self.log.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self._w = [w.to(self.device).clone() for w in state["weights"]]
        self._w_rec = [
            None if w is None else w.to(self.device).clone() for w in state["recurrent_weights"]
        ]
        self._neurons = [
            NeuronArray(**{k: v.to(self.device).clone() for k, v in nrn.items()})
            for nrn in state["neurons"]
        ]
        self.log.load_state_dict(state["log"])
        self.generator.set_state(state["generator"])
