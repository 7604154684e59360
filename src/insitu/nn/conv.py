"""A 2-d convolution unfolded onto one crossbar tile: every input patch is one read."""

from __future__ import annotations

from typing import Unpack

from torch import Tensor, nn

from insitu.errors import ConfigError
from insitu.nn.layer import AnalogLayer
from insitu.nn.options import TileOptions, whole_number


def _pair(name: str, value: int | tuple[int, int], low: int) -> tuple[int, int]:
    """``value`` as (height, width), each a whole number >= ``low``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ConfigError(f"AnalogConv2d {name} = {value!r}; need an int or (height, width)")
    if min(pair) < low:
        raise ConfigError(f"AnalogConv2d {name} = {value!r}; need whole numbers >= {low}")
    return pair[0], pair[1]


class AnalogConv2d(AnalogLayer):
    """The analog counterpart of ``torch.nn.Conv2d`` (groups 1, zero padding).

    The kernel is one tile of ``out_channels`` x ``in_channels * kh * kw`` (+ 1 bias column)
    weights; the input is unfolded into its patches, each patch is one read through the tile,
    and the outputs are folded back into feature maps. Backward: a transposed read per patch,
    folded back onto the input. One pulsed update per patch (sequential updates).

    Input (batch, C, H, W), the same for every chip, or (instances, batch, C, H, W); output
    (instances, batch, out_channels, H', W'). In a converted model (:func:`insitu.nn.convert`)
    the chips' batches travel stacked: (instances * batch, C, H, W) in, likewise out.
    ``init_weight`` (out_channels, in_channels, kh, kw), ``init_bias`` and the further options
    as for :class:`insitu.nn.AnalogLinear`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        *,
        init_weight: Tensor | None = None,
        init_bias: Tensor | None = None,
        **options: Unpack[TileOptions],
    ) -> None:
        self.in_channels = whole_number("in_channels", in_channels, 1)
        self.out_channels = whole_number("out_channels", out_channels, 1)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.dilation = _pair("dilation", dilation, 1)
        kh, kw = self.kernel_size
        super().__init__(in_channels * kh * kw, out_channels, bias, init_weight, init_bias, options)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Output feature map (H', W') of an input of ``height`` x ``width`` pixels."""
        size = []
        for n, k, s, p, d in zip(
            (height, width), self.kernel_size, self.stride, self.padding, self.dilation, strict=True
        ):
            size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
        if min(size) < 1:
            raise ConfigError(
                f"AnalogConv2d input of {height}x{width} pixels is smaller than its kernel "
                f"{self.kernel_size} (padding {self.padding}, dilation {self.dilation})"
            )
        return size[0], size[1]

    def forward(self, x: Tensor) -> Tensor:
        """Feature maps of images ``x`` (see the class docstring for the shapes)."""
        if self.stacked:
            x = self.unstack(x)
        shared = x.dim() == 4
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_channels:
            raise ConfigError(
                f"AnalogConv2d input has shape {tuple(x.shape)}; expected (batch, "
                f"{self.in_channels}, H, W) or ({self.instances}, batch, {self.in_channels}, H, W)"
            )
        if not shared and x.shape[0] != self.instances:
            raise ConfigError(
                f"AnalogConv2d input has shape {tuple(x.shape)}, for {x.shape[0]} chip "
                f"instances; this layer has {self.instances}"
            )
        batch = x.shape[-4]
        out_h, out_w = self.output_size(x.shape[-2], x.shape[-1])
        images = x.reshape(-1, *x.shape[-3:])
        patches = nn.functional.unfold(
            images, self.kernel_size, self.dilation, self.padding, self.stride
        )  # (N, in_features, H' * W')
        rows = patches.transpose(1, 2).reshape(*x.shape[:-4], -1, self.in_features)
        y = self.read(rows, "AnalogConv2d patches")  # (I, batch * H' * W', out)
        maps = y.reshape(self.instances, batch, out_h * out_w, self.out_channels).transpose(2, 3)
        maps = maps.reshape(self.instances, batch, self.out_channels, out_h, out_w)
        return maps.flatten(0, 1) if self.stacked else maps

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"bias={self.has_bias}, device={self.tile.config.device.name}, "
            f"instances={self.instances}"
        )
