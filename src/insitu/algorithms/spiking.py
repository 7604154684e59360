"""Surrogate-gradient training of spiking networks: in software, in the loop, and deployed.

After Cramer, Billaudelle, ..., Schemmel, Zenke, "Surrogate gradients for analog neuromorphic
computing", PNAS 119, e2109194119 (2022):

- ``snn-software``: the software model (ideal, uniform LIF neurons) trained alone by
  backpropagation through time with a surrogate spike derivative.
- ``in-the-loop``: every forward pass runs on the chip (mismatch, temporal noise, 8-bit ADC);
  the measured membrane traces and spikes are injected into the model's graph
  (:class:`insitu.hardware.observables.Observables` through
  :func:`insitu.algorithms.lif_graph.lif_layer`: measured values forward, the model linearised
  at them backward), gradients come from the model, and the
  updated weights are scaled, rounded and clipped to 6 bit + sign and written back.
- ``deploy``: trained like ``snn-software``, evaluated by writing the weights to the chip.

The loss is the NLL of a softmax over the readout's maximum over time (or its sum over time,
for SHD), plus an L2 penalty on the readout's amplitude and an upper-bound penalty on each hidden
neuron's spike count per sample. The paper names both penalties; their exact forms and weights
here are this project's choices (options).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from insitu.algorithms.injection import measured_layer
from insitu.algorithms.lif_graph import LIFModelParams, layer_drive, lif_backend, lif_layer
from insitu.errors import ConfigError, DivergenceError, check_range
from insitu.hardware.backend import BackendChoice, choose
from insitu.hardware.events import EventLog
from insitu.hardware.lif import nominal_params
from insitu.hardware.spiking import WEIGHT_LIMIT, Recording, SpikingChip, SpikingChipConfig

# Valid range of every numeric option: (low, high, low excluded). Wide enough for any sane
# run, narrow enough that a typo (lr = 1e9, a penalty of 1e6) is caught before training.
_OPTION_RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, 1.0, True),
    "surrogate_beta": (0.0, 1e4, True),
    "readout_penalty": (0.0, 1e3, False),
    "rate_penalty": (0.0, 1e3, False),
    "rate_limit": (0.0, 1e6, False),
    "init_scale": (0.0, 1e3, True),
    "sum_scale": (0.0, 1e6, True),
    "logit_scale": (0.0, 1e6, True),
}


def _range_text(name: str) -> str:
    low, high, low_open = _OPTION_RANGES[name]
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def _number(name: str, value: object) -> float:
    """``value`` as a float: numbers, and text that reads as one (YAML reads ``1e9`` and
    ``nan`` as text); anything else names the option and its range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{name} = {value!r} is not a number; expected one in {_range_text(name)}")


@dataclass(frozen=True)
class SpikingOptions:
    """Options of the spiking trainers (valid ranges in ``_OPTION_RANGES``).

    Attributes:
        lr: Adam learning rate (model weight units: voltage per spike), in (0, 1].
        surrogate_beta: steepness of the SuperSpike surrogate derivative, per threshold-to-leak
            voltage, in (0, 1e4].
        readout: ``max`` (maximum over time, the paper's MNIST readout) or ``sum`` (sum over
            time, its SHD readout) of the readout membrane, fed to the softmax.
        readout_penalty: weight of mean((readout maximum)^2), keeps the readout in ADC range;
            in [0, 1e3].
        rate_penalty: weight of mean(relu(count - rate_limit)^2) over hidden neurons and
            samples (count = spikes of one neuron in one sample); in [0, 1e3].
        rate_limit: spikes per hidden neuron per sample tolerated without penalty; [0, 1e6].
        init_scale: initial weights are normal with std ``init_scale / sqrt(fan_in)`` in units of
            the threshold-to-leak voltage; clipped to what the synapses can hold; (0, 1e3].
        sum_scale: readout sum over time is divided by this before the softmax (``sum`` only);
            (0, 1e6].
        logit_scale: the softmax's inputs are the readout scores times this: the readout
            membrane must stay inside the ADC's range, which is narrow for logits; (0, 1e6].
    """

    lr: float = 2e-3
    surrogate_beta: float = 10.0
    readout: Literal["max", "sum"] = "max"
    readout_penalty: float = 1e-3
    rate_penalty: float = 1e-3
    rate_limit: float = 2.0
    init_scale: float = 2.0
    sum_scale: float = 10.0
    logit_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, (low, high, low_open) in _OPTION_RANGES.items():
            value = _number(name, getattr(self, name))
            check_range(name, value, low=low, high=high, low_open=low_open)  # NaN fails too
            object.__setattr__(self, name, value)
        if self.readout not in ("max", "sum"):
            raise ConfigError(f"readout = {self.readout!r}; expected 'max' or 'sum'")

    @classmethod
    def parse(cls, values: dict[str, Any] | None) -> SpikingOptions:
        """Options from a mapping; unknown keys are named with the valid ones."""
        values = dict(values or {})
        valid = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - valid, key=str)
        if unknown:
            raise ConfigError(f"unknown spiking option(s) {unknown}; valid: {sorted(valid)}")
        try:
            return cls(**values)
        except ConfigError as err:  # the config's own name for the field
            raise ConfigError(f"algorithm_options.{err}") from None


def model_params(config: SpikingChipConfig, layer: int, beta: float) -> LIFModelParams:
    """The nominal neuron of ``layer`` as the model sees it: no mismatch, no noise."""
    n = config.neuron_params(layer)
    step = nominal_params(n, spiking=config.layers[layer].spiking)  # one place for the decays
    return LIFModelParams(
        decay_m=float(step.decay_m),
        decay_s=float(step.decay_s),
        threshold=n.threshold,
        leak=n.leak,
        reset=n.reset,
        refractory_steps=int(n.refractory_steps),
        surrogate_beta=beta / (n.threshold - n.leak),
        spiking=step.spiking,
    )


def to_integer_weights(w: Tensor, scale: float) -> Tensor:
    """Model weights (voltage per spike) as 6-bit signed synapse values: w / scale rounded and
    clipped to -63..63 (int8)."""
    return (w / scale).round().clamp(-WEIGHT_LIMIT, WEIGHT_LIMIT).to(torch.int8)


class SpikingNetwork:
    """The software model: float weights per chip instance, nominal neurons.

    Weights are in voltage units (the membrane step one spike causes); ``scale[k]`` is the
    nominal synapse gain of layer k, the voltage one integer weight step is worth on the chip.
    """

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int,
        options: SpikingOptions,
        gen: torch.Generator,
        device: torch.device,
        backend: BackendChoice = "auto",
    ) -> None:
        self.config = config
        self.options = options
        # Torch loops or compiled kernels, chosen once (see insitu.hardware.backend.choose).
        self.backend = lif_backend(choose(device, torch.float32, backend))
        self.params = [
            model_params(config, k, options.surrogate_beta) for k in range(len(config.layers))
        ]
        self.scale = [config.neuron_params(k).synapse_gain for k in range(len(config.layers))]
        sizes = config.sizes
        self.weights: list[Tensor] = []
        self.recurrent: list[Tensor | None] = []
        for k, lay in enumerate(config.layers):
            n_in, n_out = sizes[k], sizes[k + 1]
            span = config.neuron_params(k).threshold - config.neuron_params(k).leak
            # Scaled to the fan-in, but well inside what the synapses hold (no clipped init).
            limit = WEIGHT_LIMIT * self.scale[k]
            std = min(options.init_scale * span / math.sqrt(n_in), limit / 3)
            w = torch.randn((instances, n_out, n_in), generator=gen, device=device) * std
            self.weights.append(self.clip(w, k).requires_grad_(True))
            if lay.recurrent:
                std_r = min(options.init_scale * span / math.sqrt(n_out), limit / 3)
                r = torch.randn((instances, n_out, n_out), generator=gen, device=device) * std_r
                self.recurrent.append(self.clip(r, k).requires_grad_(True))
            else:
                self.recurrent.append(None)

    def parameters(self) -> list[Tensor]:
        """Every trainable tensor."""
        return [*self.weights, *(r for r in self.recurrent if r is not None)]

    def clip(self, w: Tensor, layer: int) -> Tensor:
        """``w`` limited to what a 6-bit synapse can hold."""
        limit = WEIGHT_LIMIT * self.scale[layer]
        return w.clamp(-limit, limit)

    @torch.no_grad()
    def clip_(self) -> None:
        """Clip every weight in place after an optimiser step."""
        for k, w in enumerate(self.weights):
            w.copy_(self.clip(w, k))
            r = self.recurrent[k]
            if r is not None:
                r.copy_(self.clip(r, k))

    def integer_weights(self, layer: int, recurrent: bool = False) -> Tensor:
        """Layer ``layer``'s weights as the chip stores them, (instances, out, in) int8."""
        w = self.recurrent[layer] if recurrent else self.weights[layer]
        assert w is not None
        return to_integer_weights(w.detach(), self.scale[layer])

    def forward(self, x: Tensor, recording: Recording | None = None) -> tuple[Tensor, list[Tensor]]:
        """Readout membrane (T, I, B, C) and hidden spikes [(T, I, B, N)] for input spikes ``x``
        (B, T, inputs) or (I, B, T, inputs).

        With ``recording`` (the chip's measurement for the same input), every layer's forward
        values are the measured ones and the gradients the model's at them.
        """
        inp = _time_major(x)
        hidden: list[Tensor] = []
        v = inp
        for k, w in enumerate(self.weights):
            measured = None if recording is None else measured_layer(recording, k)
            # With the measured observables, lif_layer's forward values are the measurements and
            # its backward the model's, linearised at them: the injection (no second identity
            # on top, which cost a copy of every trace, about a tenth of a training step).
            v, z = lif_layer(inp, w, self.params[k], self.recurrent[k], measured, self.backend)
            if self.params[k].spiking:
                hidden.append(z)
            inp = z
        return v, hidden

    @torch.no_grad()
    def traces(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Every layer's membrane and spikes, each (T, I, B, N), simulated without a graph."""
        inp = _time_major(x)
        membranes, spikes = [], []
        for k, w in enumerate(self.weights):
            drive = layer_drive(inp, w, self.backend.synapses)
            v, inp = self.backend.model.simulate(drive, self.recurrent[k], self.params[k])
            membranes.append(v)
            spikes.append(inp)
        return membranes, spikes

    def simulate(self, x: Tensor) -> Tensor:
        """Readout membrane (T, I, B, C) without a graph (evaluation)."""
        return self.traces(x)[0][-1]


def _time_major(x: Tensor) -> Tensor:
    """Input spikes (B, T, F) -> (T, B, F), or (I, B, T, F) -> (T, I, B, F)."""
    return x.transpose(0, 1) if x.dim() == 3 else x.permute(2, 0, 1, 3)


def readout_scores(v_out: Tensor, options: SpikingOptions) -> Tensor:
    """Class scores (I, B, C) from the readout membrane (T, I, B, C)."""
    if options.readout == "max":
        return v_out.amax(dim=0)
    return v_out.sum(dim=0) / options.sum_scale


def spiking_loss(
    v_out: Tensor, hidden: list[Tensor], y: Tensor, options: SpikingOptions
) -> tuple[Tensor, Tensor]:
    """Total loss (summed over instances, so each instance gets its own gradient) and the per
    instance loss (I,) for logging."""
    scores = readout_scores(v_out, options)
    logp = torch.log_softmax(options.logit_scale * scores, dim=-1)
    nll = -logp.gather(-1, y.view(1, -1, 1).expand(scores.shape[0], -1, 1)).squeeze(-1)
    per_instance = nll.mean(dim=1)
    if options.readout_penalty:
        per_instance = per_instance + options.readout_penalty * v_out.amax(0).square().mean((1, 2))
    if options.rate_penalty:
        for z in hidden:
            excess = (z.sum(0) - options.rate_limit).clamp(min=0.0)
            per_instance = per_instance + options.rate_penalty * excess.square().mean((1, 2))
    if not bool(torch.isfinite(per_instance).all()):
        raise DivergenceError("spiking loss is NaN or infinite: lower the learning rate")
    return per_instance.sum(), per_instance.detach()


class SpikingTrainer:
    """Common base: a model, Adam, and (for chip rules) a spiking chip."""

    name: ClassVar[str]
    description: ClassVar[str]
    uses_chip: ClassVar[bool] = True

    def __init__(
        self,
        config: SpikingChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        options: SpikingOptions | dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.instances = instances
        self.device = torch.device(device)
        self.options = (
            options if isinstance(options, SpikingOptions) else SpikingOptions.parse(options)
        )
        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.model = SpikingNetwork(
            config, instances=instances, options=self.options, gen=gen, device=self.device
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.options.lr)
        # The chip is made from its own seed, so every rule at one seed meets the same chip.
        self.chip = (
            SpikingChip(config, instances=instances, seed=seed + 1, device=self.device)
            if self.uses_chip
            else None
        )
        self._written = False

    @property
    def log(self) -> EventLog:
        """The chip's event log (empty for software)."""
        return self.chip.log if self.chip is not None else EventLog()

    def set_lr(self, lr: float) -> None:
        """Set the Adam learning rate (for schedules)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def write_chip(self) -> None:
        """Write the model's weights (scaled, rounded, clipped) to the chip."""
        assert self.chip is not None
        for k in range(len(self.config.layers)):
            self.chip.write_weights(k, self.model.integer_weights(k))
            if self.model.recurrent[k] is not None:
                self.chip.write_weights(k, self.model.integer_weights(k, True), recurrent=True)
        self._written = True

    def step(self, loss: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.model.clip_()
        self._written = False

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        """One optimiser step on input spikes ``x`` (B, T, inputs); the loss per instance (I,)."""
        raise NotImplementedError

    def predict(self, x: Tensor) -> Tensor:
        """Class scores (I, B, C) of the network as this rule runs it."""
        raise NotImplementedError

    def classify(self, out: Tensor) -> Tensor:
        """Predicted classes (I, B): the highest score."""
        return out.argmax(-1)

    def finish(self) -> None:
        """Nothing to do at the end of training (the runner's hook)."""

    def software_predict(self, x: Tensor) -> Tensor:
        """Class scores of the software model alone (ideal neurons, float weights)."""
        return readout_scores(self.model.simulate(x), self.options)

    def chip_predict(self, x: Tensor) -> Tensor:
        """Class scores measured on the chip with the current weights."""
        assert self.chip is not None
        if not self._written:
            self.write_chip()
        rec = self.chip.run(x)
        return readout_scores(rec.readout.permute(2, 0, 1, 3), self.options)

    def state_dict(self) -> dict[str, Any]:
        """Model weights, optimiser and chip state."""
        return {
            "weights": [w.detach().clone() for w in self.model.parameters()],
            "optimizer": self.optimizer.state_dict(),
            "chip": None if self.chip is None else self.chip.state_dict(),
            "options": asdict(self.options),
            # Whether the chip holds the current weights: a resumed run writes them again
            # exactly when the uninterrupted one would (writes are logged events).
            "written": self._written,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        with torch.no_grad():
            for w, saved in zip(self.model.parameters(), state["weights"], strict=True):
                w.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.chip is not None and state["chip"] is not None:
            self.chip.load_state_dict(state["chip"])
        self._written = bool(state.get("written", False))


class SoftwareSNN(SpikingTrainer):
    """The model alone, with ideal neurons: surrogate-gradient BPTT."""

    name = "snn-software"
    description = "software spiking network (ideal neurons), surrogate-gradient BPTT"
    uses_chip = False

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        v_out, hidden = self.model.forward(x)
        loss, per = spiking_loss(v_out, hidden, y, self.options)
        self.step(loss)
        return per

    def predict(self, x: Tensor) -> Tensor:
        return self.software_predict(x)


class Deploy(SoftwareSNN):
    """Trained in software; evaluated by writing the weights to the (mismatched) chip."""

    name = "deploy"
    description = "train the software model, then write its weights to the chip and run there"
    uses_chip = True

    def predict(self, x: Tensor) -> Tensor:
        return self.chip_predict(x)


class InTheLoop(SpikingTrainer):
    """Forward pass on the chip, measured traces injected, gradients from the model."""

    name = "in-the-loop"
    description = "hardware in the loop: chip forward, injected traces, model gradients"

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        assert self.chip is not None
        if not self._written:
            self.write_chip()
        rec = self.chip.run(x)
        v_out, hidden = self.model.forward(x, rec)
        loss, per = spiking_loss(v_out, hidden, y, self.options)
        self.step(loss)
        return per

    def predict(self, x: Tensor) -> Tensor:
        return self.chip_predict(x)
