"""Options of activity-difference training (:mod:`insitu.algorithms.activity_difference`).

Yi et al., Nature Electronics 6, 45-51 (2023), doi:10.1038/s41928-022-00869-w; the symmetric
nudging after Laborieux et al., Front. Neurosci. 15:633674 (2021).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from insitu.algorithms.chip_trainer import parse_layer_lr

Nudging = Literal["one-sided", "random-sign", "symmetric"]
UpdateForm = Literal["difference", "two-phase"]


@dataclass(frozen=True)
class ActivityDifferenceOptions:
    """Choices of activity-difference training.

    Attributes:
        phase: ``nudged`` (the output is pulled toward the target with strength ``beta``) or
            ``clamped`` (the output is forced to the target; the update is then not divided
            by beta).
        beta: nudging strength, > 0.
        nudging: for the nudged phase: ``one-sided`` (+beta against the free phase),
            ``random-sign`` (+beta or -beta at random per mini-batch, against the free phase)
            or ``symmetric`` (a +beta and a -beta phase against each other; default).
        free_steps: settling steps of the free phase (at most; see ``tolerance``).
        nudged_steps: settling steps of each nudged or clamped phase, started from the free
            equilibrium.
        tolerance: stop a phase early once no activity moves by more than this in a step
            (None: always run the full number of steps).
        output: ``activation``: the output neurons pass the activation circuit too (bounded
            outputs, as in Scellier & Bengio 2017; targets should lie in its range) or
            ``linear`` (the energy's linear units).
        update_form: how the contrast reaches the devices (see :func:`contrast_update`):
            ``difference`` (activity differences and means, default) or ``two-phase`` (each
            phase's products at opposite signs).
        layer_lr: a factor on the learning rate per weight layer, inputs first (None: all 1).
            The linear output layer is a least-mean-squares filter whose stable rate falls
            with the width of the layer below; the hidden layers want larger steps.
        average_steps: each phase's activities are the mean over its last this many settling
            steps (1: the last step's). Every step reads the arrays afresh, so on a chip the
            read noise of the settled activities averages down, at no extra read; it matters
            because the contrast of two phases is a small difference of noisy activities.
            Must not exceed ``nudged_steps``.
        input_read: ``per-phase``: the held input's current is read (with its own read noise
            and conversion) at the start of every phase; ``once``: read once per sample in the
            free phase and the converted value held for the nudged phases. The input is the
            same in every phase, so one conversion serves all, and read noise in it then
            cancels in the contrast instead of entering every hidden neuron's difference.
    """

    phase: Literal["nudged", "clamped"] = "nudged"
    beta: float = 0.5
    nudging: Nudging | None = None
    free_steps: int = 20
    nudged_steps: int = 8
    tolerance: float | None = None
    output: Literal["activation", "linear"] = "activation"
    update_form: UpdateForm = "difference"
    layer_lr: tuple[float, ...] | None = None
    average_steps: int = 1
    input_read: Literal["per-phase", "once"] = "per-phase"

    def __post_init__(self) -> None:
        if self.update_form not in ("difference", "two-phase"):
            raise ValueError(f"update_form = {self.update_form!r}; valid: difference, two-phase")
        if self.input_read not in ("per-phase", "once"):
            raise ValueError(f"input_read = {self.input_read!r}; valid: per-phase, once")
        if self.output not in ("activation", "linear"):
            raise ValueError(f"output = {self.output!r}; valid: activation, linear")
        object.__setattr__(self, "layer_lr", parse_layer_lr(self.layer_lr))
        if self.phase not in ("nudged", "clamped"):
            raise ValueError(f"phase = {self.phase!r}; valid: nudged, clamped")
        if self.nudging is not None:
            if self.nudging not in ("one-sided", "random-sign", "symmetric"):
                raise ValueError(
                    f"nudging = {self.nudging!r}; valid: one-sided, random-sign, symmetric"
                )
            if self.phase == "clamped":
                raise ValueError("nudging applies to phase 'nudged' only, not to 'clamped'")
        if not isinstance(self.beta, (int, float)) or not 0 < self.beta <= 100:
            raise ValueError(f"beta = {self.beta!r}; need a number in (0, 100]")
        for name in ("free_steps", "nudged_steps", "average_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10_000:
                raise ValueError(f"{name} = {v!r}; need a whole number in 1..10000")
        if self.average_steps > min(self.free_steps, self.nudged_steps):
            raise ValueError(
                f"average_steps = {self.average_steps}; need at most free_steps and "
                f"nudged_steps ({min(self.free_steps, self.nudged_steps)})"
            )
        if self.tolerance is not None and not (
            isinstance(self.tolerance, (int, float)) and self.tolerance > 0
        ):
            raise ValueError(f"tolerance = {self.tolerance!r}; need a positive number or null")

    @property
    def scheme(self) -> Nudging | Literal["clamped"]:
        """The nudging scheme in effect."""
        if self.phase == "clamped":
            return "clamped"
        return self.nudging or "symmetric"
