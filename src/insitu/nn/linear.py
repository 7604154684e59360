"""A fully connected layer on one crossbar tile."""

from __future__ import annotations

from typing import Unpack

from torch import Tensor

from insitu.nn.layer import AnalogLayer
from insitu.nn.options import TileOptions, whole_number


class AnalogLinear(AnalogLayer):
    """``y = W x + b`` read through a crossbar tile (the analog counterpart of
    ``torch.nn.Linear``), for ``instances`` chips at once.

    Input (batch, in_features), the same for every chip, or (instances, batch, in_features);
    output (instances, batch, out_features). In a converted model (:func:`insitu.nn.convert`)
    the chips' batches travel stacked instead: (instances * batch, features) in and out.

    ``init_weight`` (out_features, in_features) and ``init_bias`` (out_features,): initial
    state (see :class:`insitu.nn.layer.AnalogLayer`); further options
    (``device="ecram-organic"``, ``instances=1``, ``seed=0``, periphery, update, pair,
    weight_scale): :class:`insitu.nn.options.TileOptions`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        init_weight: Tensor | None = None,
        init_bias: Tensor | None = None,
        **options: Unpack[TileOptions],
    ) -> None:
        super().__init__(
            whole_number("in_features", in_features, 1),
            whole_number("out_features", out_features, 1),
            bias,
            init_weight,
            init_bias,
            options,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Outputs of inputs ``x`` (see the class docstring for the shapes)."""
        if self.stacked:
            return self.read(self.unstack(x)).flatten(0, 1)
        return self.read(x)
