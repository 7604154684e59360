"""``activity-difference``: local learning from the difference of two settled phases.

Yi, Kendall, Williams, Kumar, "Activity-difference training of deep neural networks using
memristor crossbars", Nature Electronics 6, 45-51 (2023; online 2022),
doi:10.1038/s41928-022-00869-w. The nudged form is equilibrium propagation: Scellier & Bengio,
"Equilibrium propagation", Front. Comput. Neurosci. 11:24 (2017); the symmetric (+beta, -beta)
estimate is from Laborieux et al., "Scaling equilibrium propagation to deep ConvNets",
Front. Neurosci. 15:633674 (2021).

The network is an energy-based system on crossbars: a tile read one way gives ``W s`` and read
the other way gives ``W^T s``, so one set of devices couples neighbouring layers in both
directions (symmetric connections for free). Each hidden layer settles to

    s_k = f(W_{k-1} s_{k-1} + b_{k-1} + W_k^T s_{k+1})

with the activation circuit ``f`` in the periphery, and the (linear) output layer to
``s_L = (W_{L-1} s_{L-1} + b + beta * t) / (1 + beta)``: the target ``t`` pulls on it through a
conductance ``beta`` (the stationary point of the energy plus ``beta`` times the squared error).
With ``f`` a clipped line (``hard-sigmoid``) this is the box-constrained minimum of the energy,
for which the estimate below is exact as ``beta -> 0``; the logistic sigmoid is close to it.

Training runs two phases on the same hardware: a *free* phase (input held, output free) and a
second phase in which the output is nudged toward the target (``phase: nudged``) or forced to it
(``phase: clamped``). Every weight then moves by the difference of the products of its two
neighbouring activities in the two phases,

    dW_k = lr / beta * (s_{k+1}' s_k'^T - s_{k+1} s_k^T),

which needs nothing but the activities at the two ends of the weight's row and column lines:
the update is the tile's ordinary parallel update, fed with the second phase's activities at
one sign and the first phase's at the other (each phase a rank-1 update per sample).

Options (all documented in :class:`ActivityDifferenceOptions`): the second phase (nudged or
clamped), beta, the nudging scheme (one-sided, random-sign, symmetric +beta/-beta, which
cancels the first-order bias of the one-sided estimate), settling steps and tolerance. The
settling is a discrete model of the circuit's relaxation: each step updates the layers in turn
from the input side (forward read of the layer below plus transposed read of the layer above,
then the activation circuit). The input is held on the first tile's rows for a whole phase, so
its current is read once per phase.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from insitu.algorithms.activity_options import ActivityDifferenceOptions, UpdateForm
from insitu.algorithms.base import Trainer, glorot_weights, squared_error
from insitu.algorithms.chip_trainer import ChipTrainer, check_layer_lr
from insitu.algorithms.software import SoftwareMLP
from insitu.errors import DivergenceError
from insitu.hardware import ChipConfig, Event, EventLog


class Network(Protocol):
    """What settling needs: the chip's read protocol (a CrossbarChip or a SoftwareMLP)."""

    @property
    def n_layers(self) -> int: ...

    def read(self, layer: int, x: Tensor) -> Tensor: ...

    def read_transposed(self, layer: int, d: Tensor) -> Tensor: ...

    def activate(self, layer: int, y: Tensor) -> Tensor: ...

    def update(
        self, layer: int, x: Tensor, d: Tensor, lr: float, bias: Tensor | None = None
    ) -> None: ...


def settle(
    net: Network,
    x: Tensor,
    state: list[Tensor] | None,
    steps: int,
    *,
    target: Tensor | None = None,
    beta: float = 0.0,
    clamp: bool = False,
    tolerance: float | None = None,
    output: Callable[[Tensor], Tensor] | None = None,
    average: int = 1,
    drive: Tensor | None = None,
) -> tuple[list[Tensor], int]:
    """Relax the network with input ``x`` held; returns the activities ``[s_1..s_L]`` and the
    number of steps taken.

    ``average``: return each layer's mean over the last ``average`` steps (the steps taken, if
    fewer) instead of the last step's activities. ``drive``: the first layer's current from
    ``x`` as read earlier (None: read it now).

    ``state`` is the starting point (None: all zero, so the first step is a forward pass).
    ``target`` with ``beta`` nudges the output (``clamp``: forces it to the target).
    ``output`` is the output neurons' activation circuit (None: linear outputs). A nonlinear
    output neuron receives the nudging current ``beta * (t - s_L)`` at its input.
    """
    n = net.n_layers
    if drive is None:
        drive = net.read(0, x)  # the input is held on the rows: its current is read once
    s: list[Tensor] = [a.clone() for a in state] if state is not None else [torch.zeros(0)] * n
    recent: deque[list[Tensor]] = deque(maxlen=average)
    taken = 0
    for _ in range(steps):
        taken += 1
        moved = 0.0
        for k in range(n):
            u = drive if k == 0 else net.read(k, s[k - 1])
            if k < n - 1:
                if state is not None or taken > 1:
                    u = u + net.read_transposed(k + 1, s[k + 1])
                new = net.activate(k, u)
            elif clamp and target is not None:
                new = target.expand_as(u)
            elif target is not None and beta != 0.0:
                if output is None:  # the linear neuron's equilibrium, in closed form
                    new = (u + beta * target) / (1.0 + beta)
                else:
                    new = output(u + beta * (target - s[k]))
            else:
                new = u if output is None else output(u)
            if tolerance is not None and s[k].shape == new.shape:
                moved = max(moved, float((new - s[k]).abs().max()))
            s[k] = new
        if not all(bool(torch.isfinite(a).all()) for a in s[-1:]):
            raise DivergenceError(
                "settling diverged: activities became NaN or infinite; lower the learning "
                "rate or beta"
            )
        recent.append(list(s))  # the tensors are replaced, never written in place
        if tolerance is not None and taken > 1 and moved < tolerance:
            break
    if average > 1:
        s = [torch.stack(layer).mean(0) for layer in zip(*recent, strict=True)]
    return s, taken


def contrast_update(
    net: Network,
    x: Tensor,
    plus: list[Tensor],
    minus: list[Tensor],
    lr: float,
    layer_lr: tuple[float, ...] | None = None,
    form: UpdateForm = "difference",
) -> None:
    """Move every weight by ``lr * (a c^T - b d^T)`` summed over the batch, where ``a, c`` are
    its output- and input-side activities in the ``plus`` phase and ``b, d`` in ``minus``.

    ``form="difference"`` applies the identity ``a c^T - b d^T = 1/2 (a+b)(c-d)^T +
    1/2 (a-b)(c+d)^T``: two parallel rank-1 updates per sample driven by each neuron's
    activity difference and mean, small quantities that pulse trains carry well.
    ``form="two-phase"`` pulses the two phases' products at opposite signs, whose large, nearly
    equal halves must cancel in the devices. ``layer_lr`` is a factor per layer.
    """
    inputs_plus = [x, *plus[:-1]]
    inputs_minus = [x, *minus[:-1]]
    instances = plus[0].shape[0]
    for k in range(net.n_layers):
        c, d = inputs_plus[k], inputs_minus[k]
        if c.dim() == 2:
            c = c.unsqueeze(0).expand(instances, -1, -1)
            d = d.unsqueeze(0).expand(instances, -1, -1)
        a, b = plus[k], minus[k]
        rate = lr * (layer_lr[k] if layer_lr else 1.0)
        # update() steps by -rate * sum(e x^T): each term enters with its error side negated.
        if form == "two-phase":
            net.update(k, torch.cat([c, d], dim=1), torch.cat([-a, b], dim=1), rate)
        elif k == 0 and inputs_plus[0] is inputs_minus[0]:
            net.update(k, c, -(a - b), rate)  # the held input is the same in both phases
        else:
            # The bias row is the same (1) in both phases: 0 in the difference, 2 in the sum.
            rows = c.shape[1]
            bias = torch.cat([c.new_zeros(rows), c.new_full((rows,), 2.0)])
            xs = torch.cat([c - d, c + d], dim=1)
            es = torch.cat([-(a + b), -(a - b)], dim=1) / 2
            net.update(k, xs, es, rate, bias.expand(instances, -1))


class _ActivityDifferenceRule:
    """The two-phase procedure, shared by the chip and the float versions."""

    options: ActivityDifferenceOptions
    generator: torch.Generator
    lr: float

    def _network(self) -> Network:
        raise NotImplementedError

    def _targets(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    config: ChipConfig

    def _check_options(self) -> None:
        check_layer_lr(self.options.layer_lr, self.config)

    settle_steps = 0  # settling steps taken so far (a measure of the phases' duration)

    def _note_phases(self, phases: int, batch: int) -> None:
        """Hook for the event log."""

    def _output(self) -> Callable[[Tensor], Tensor] | None:
        """The output neurons' nonlinearity (None: linear)."""
        return None

    def _settle(self, x: Tensor, state: list[Tensor] | None, **kw: Any) -> list[Tensor]:
        o = self.options
        steps = o.free_steps if state is None else o.nudged_steps
        s, taken = settle(
            self._network(),
            x,
            state,
            steps,
            tolerance=o.tolerance,
            output=self._output(),
            average=o.average_steps,
            **kw,
        )
        self.settle_steps += taken
        self._note_average(s)
        return s

    def _note_average(self, s: list[Tensor]) -> None:
        """Hook for the event log: the sums of averaged activities."""

    def _note_held_drive(self, drive: Tensor) -> None:
        """Hook for the event log: the first layer's current held across phases."""

    def _step(self, x: Tensor, y: Tensor) -> Tensor:
        o = self.options
        t = self._targets(y)
        if o.input_read == "once":
            held = self._network().read(0, x)
            self._note_held_drive(held)
            free = self._settle(x, None, drive=held)
            x_kw: dict[str, Any] = {"drive": held}
        else:
            free = self._settle(x, None)
            x_kw = {}
        loss, _ = squared_error(free[-1], t)
        batch = x.shape[-2]
        beta = float(o.beta)
        scheme = o.scheme
        if scheme == "clamped":
            plus = self._settle(x, free, target=t, clamp=True, **x_kw)
            minus, scale, phases = free, self.lr / batch, 2
        elif scheme == "symmetric":
            plus = self._settle(x, free, target=t, beta=beta, **x_kw)
            minus = self._settle(x, free, target=t, beta=-beta, **x_kw)
            scale, phases = self.lr / (2 * beta * batch), 3
        else:
            if scheme == "random-sign":
                flip = torch.rand((), generator=self.generator, device=self.generator.device)
                beta = -beta if float(flip) < 0.5 else beta
            nudged = self._settle(x, free, target=t, beta=beta, **x_kw)
            plus, minus = (nudged, free) if beta > 0 else (free, nudged)
            scale, phases = self.lr / (abs(beta) * batch), 2
        self._note_phases(phases, batch)
        contrast_update(self._network(), x, plus, minus, scale, o.layer_lr, o.update_form)
        return loss

    def _predict(self, x: Tensor) -> Tensor:
        return self._settle(x, None)[-1]


class ActivityDifference(_ActivityDifferenceRule, ChipTrainer):
    """Free and nudged (or clamped) phases settled on the chip; local pulsed updates."""

    name = "activity-difference"
    description = "two settled phases on the chip, local activity-difference pulsed updates"
    Options = ActivityDifferenceOptions

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._check_options()
        self.program_initial_weights()

    def _network(self) -> Network:
        return self.chip

    def _targets(self, y: Tensor) -> Tensor:
        # The target reaches the output neurons as a voltage: it passes the DAC.
        return self.target_vectors(y)

    def _output(self) -> Callable[[Tensor], Tensor] | None:
        if self.options.output == "linear":
            return None
        act = self.config.activation

        def circuit(u: Tensor) -> Tensor:
            self.chip.log.add(Event.ACTIVATION, u.numel())
            return act(u)

        return circuit

    def _note_average(self, s: list[Tensor]) -> None:
        # Averaging k steps: k - 1 additions per neuron (the scale folds into the update).
        if self.options.average_steps > 1:
            adds = (self.options.average_steps - 1) * sum(a.numel() for a in s)
            self.chip.log.add(Event.DIGITAL_OP, adds)

    def _note_held_drive(self, drive: Tensor) -> None:
        self.chip.log.add(Event.STORED_VALUE, drive.numel())

    def _note_phases(self, phases: int, batch: int) -> None:
        # Each neuron's activity in each phase waits at its line until the update.
        held = batch * self.instances * sum(self.config.layers[1:]) * phases
        self.chip.log.add(Event.STORED_VALUE, held)

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self._step(x, y)

    def predict(self, x: Tensor) -> Tensor:
        return self._predict(x)


class ActivityDifferenceFloat(_ActivityDifferenceRule, Trainer):
    """The same rule on exact float weights: the software reference of activity-difference."""

    name = "activity-difference-float"
    description = "activity-difference training on float weights (software reference)"
    uses_chip = False
    Options = ActivityDifferenceOptions

    def __init__(self, config: ChipConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._check_options()
        w = glorot_weights(config.layers, self.instances, self.generator, self.device)
        self.model = SoftwareMLP(w, config.activation)
        self._log = EventLog()

    def _network(self) -> Network:
        return self.model

    def _targets(self, y: Tensor) -> Tensor:
        return self.target_vectors(y)

    def _output(self) -> Callable[[Tensor], Tensor] | None:
        return None if self.options.output == "linear" else self.config.activation

    def train_batch(self, x: Tensor, y: Tensor) -> Tensor:
        return self._step(x, y)

    def predict(self, x: Tensor) -> Tensor:
        return self._predict(x)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weights": [w.clone() for w in self.model.weights]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.weights = [w.clone() for w in state["weights"]]
