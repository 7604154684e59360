"""A fully connected layer on one crossbar tile."""

from __future__ import annotations

from torch import Tensor

from insitu.devices import DeviceParams
from insitu.errors import ConfigError
from insitu.hardware import PairMode, Periphery, TileConfig, UpdateParams
from insitu.nn.layer import AnalogLayer
from insitu.nn.options import DEFAULT_DEVICE


class AnalogLinear(AnalogLayer):
    """``y = W x + b`` read through a crossbar tile (the analog counterpart of
    ``torch.nn.Linear``), for ``instances`` chips at once.

    Input (batch, in_features), the same for every chip, or (instances, batch, in_features);
    output (instances, batch, out_features). In a converted model (:func:`insitu.nn.convert`)
    the chips' batches travel stacked instead: (instances * batch, features) in and out.

    Arguments after ``bias`` are those of :class:`insitu.nn.layer.AnalogLayer`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        device: str | DeviceParams | TileConfig = DEFAULT_DEVICE,
        instances: int = 1,
        seed: int = 0,
        periphery: Periphery | None = None,
        update: UpdateParams | None = None,
        pair: PairMode | str | None = None,
        weight_scale: float | None = None,
        init_weight: Tensor | None = None,
        init_bias: Tensor | None = None,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"AnalogLinear {name} = {value!r}; need a whole number >= 1")
        super().__init__(
            in_features,
            out_features,
            bias,
            device=device,
            instances=instances,
            seed=seed,
            periphery=periphery,
            update=update,
            pair=pair,
            weight_scale=weight_scale,
            init_weight=init_weight,
            init_bias=init_bias,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Outputs of inputs ``x`` (see the class docstring for the shapes)."""
        if self.stacked:
            return self.read(self.unstack(x), "AnalogLinear input").flatten(0, 1)
        return self.read(x, "AnalogLinear input")
