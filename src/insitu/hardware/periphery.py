"""Periphery of a crossbar tile: DAC on the inputs, ADC on the outputs, noise and saturation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from insitu.errors import ConfigError, check_range


@dataclass(frozen=True)
class Periphery:
    """Converters and analog non-idealities around the array.

    Attributes:
        dac_bits: input DAC resolution (signed, ``2**bits - 1`` levels over
            ``[-input_bound, input_bound]``); None = ideal inputs.
        adc_bits: output ADC resolution over ``[-output_bound, output_bound]``; None = ideal.
        input_bound: DAC full scale (inputs beyond it saturate).
        output_bound: ADC full scale in weight-times-input units (outputs beyond it saturate).
        output_noise: standard deviation of the additive noise on every output line before the
            ADC, in weight-times-input units.
        noise_management: scale every input vector by its largest magnitude before the DAC and
            undo it digitally after the ADC, so small signals (errors) use the DAC's full range.
    """

    dac_bits: int | None = 7
    adc_bits: int | None = 9
    input_bound: float = 1.0
    output_bound: float = 12.0
    output_noise: float = 0.06
    noise_management: bool = True

    def __post_init__(self) -> None:
        for name in ("dac_bits", "adc_bits"):
            bits = getattr(self, name)
            if bits is not None and not 1 <= bits <= 24:
                raise ConfigError(f"{name} = {bits}; need 1 to 24 bits (or None for ideal)")
        check_range("input_bound", self.input_bound, low=0.0, low_open=True)
        check_range("output_bound", self.output_bound, low=0.0, low_open=True)
        check_range("output_noise", self.output_noise, low=0.0)

    @property
    def dac_step(self) -> float:
        """The DAC's step in input units (0: ideal inputs)."""
        return 0.0 if self.dac_bits is None else 2 * self.input_bound / (2**self.dac_bits - 2)

    @property
    def adc_step(self) -> float:
        """The ADC's step in output units (0: ideal outputs)."""
        return 0.0 if self.adc_bits is None else 2 * self.output_bound / (2**self.adc_bits - 2)

    def convert_input(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """DAC: returns the driven voltages and the per-vector scale to undo (or None)."""
        scale = None
        if self.noise_management:
            scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / self.input_bound
            x = x / scale
        x = x.clamp(-self.input_bound, self.input_bound)
        if self.dac_bits is not None:
            x = torch.round(x / self.dac_step) * self.dac_step
        return x, scale

    def full_scale(self, x: Tensor) -> Tensor:
        """Largest output magnitude the ADC reports for input vectors ``x`` (..., in): its
        full-scale code after the digital rescale, one value per vector (..., 1).

        An output read at this magnitude is over range (the ADC's overflow flag): the true
        value may be anywhere beyond it.
        """
        bound = torch.full((*x.shape[:-1], 1), self.output_bound, dtype=x.dtype, device=x.device)
        if self.noise_management:
            bound = bound * x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / self.input_bound
        return bound

    def over_range(self, y: Tensor, x: Tensor) -> Tensor:
        """The ADC overflow flags of outputs ``y`` (..., out) read from inputs ``x`` (..., in):
        True where an output reads at :meth:`full_scale`."""
        return y.abs() >= self.full_scale(x) * (1 - 1e-6)

    def convert_output(self, y: Tensor, scale: Tensor | None, gen: torch.Generator) -> Tensor:
        """Output noise, ADC saturation and quantisation, then the digital rescale."""
        if self.output_noise > 0:
            y = y + self.output_noise * torch.randn(y.shape, generator=gen, device=y.device)
        y = y.clamp(-self.output_bound, self.output_bound)
        if self.adc_bits is not None:
            y = torch.round(y / self.adc_step) * self.adc_step
        if scale is not None:
            y = y * scale
        return y


IDEAL_PERIPHERY = Periphery(
    dac_bits=None,
    adc_bits=None,
    input_bound=1e9,
    output_bound=1e9,
    output_noise=0.0,
    noise_management=False,
)
"""Exact inputs and outputs: no conversion, noise or saturation (a floating-point reference)."""
