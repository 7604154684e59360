"""A crossbar chip: a stack of tiles with activation circuits, bias columns and one event log."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from insitu.errors import ConfigError
from insitu.hardware.activation import Activation
from insitu.hardware.backend import BackendChoice
from insitu.hardware.cells import WeightArray, make_tile
from insitu.hardware.events import Event, EventLog
from insitu.hardware.tile import ProgramResult, Tile, TileConfig, check_batch
from insitu.hardware.tile_grid import TileGrid
from insitu.hardware.tile_pulses import apply_tile_entries


@dataclass(frozen=True)
class ChipConfig:
    """Layer sizes (inputs first), hidden activation circuit and the tile design (its ``cell``
    makes every layer a plain tile or a compound cell: :mod:`insitu.hardware.cells`)."""

    layers: tuple[int, ...]
    tile: TileConfig
    activation: Activation = Activation.SIGMOID

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        object.__setattr__(self, "activation", Activation(self.activation))
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ConfigError(f"layers = {self.layers}; need at least 2 sizes, each >= 1")


class CrossbarChip:
    """N instances of a multilayer crossbar network, each with its own device variation.

    Each layer is one tile whose last input column is driven at 1 (the bias). Hidden layers
    pass through the activation circuit; the output layer is read out linearly.

    ``backend``: ``auto``, ``torch`` or ``kernel``, the implementation of the tiles' reads and
    updates, chosen once here (see :func:`insitu.hardware.backend.choose`).
    """

    def __init__(
        self,
        config: ChipConfig,
        *,
        instances: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
        backend: BackendChoice = "auto",
    ) -> None:
        self.config = config
        self.instances = instances
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.log = EventLog()
        sizes = config.layers
        self.tiles: list[WeightArray] = [
            make_tile(
                n_in + 1,
                n_out,
                config.tile,
                instances=instances,
                generator=self.generator,
                log=self.log,
                device=self.device,
                backend=backend,
            )
            for n_in, n_out in itertools.pairwise(sizes)
        ]
        # Compiled updates run tile by tile (fastest); the reference pools every tile's pulses.
        # Compound cells (config.tile.cell) update on their own.
        self._pooled: list[Tile] | None = [t for t in self.tiles if isinstance(t, Tile)]
        if len(self._pooled) < len(self.tiles) or all(t.kernel_ready() for t in self._pooled):
            self._pooled = None
        # Each layer's last read input, its version and the padded copy the tile was driven
        # with: an update from the same, unchanged activations reuses the copy.
        self._driven: list[tuple[Tensor, int, Tensor] | None] = [None] * len(self.tiles)

    @property
    def n_layers(self) -> int:
        """Number of weight layers (tiles)."""
        return len(self.tiles)

    def with_bias(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        """Append the bias input: 1, or ``bias`` (the value on the bias row per sample)."""
        if bias is None:
            return torch.nn.functional.pad(x, (0, 1), value=1.0)  # one op, not ones + cat
        col = bias.to(x.dtype).unsqueeze(-1).expand(*x.shape[:-1], 1)
        return torch.cat([x, col], dim=-1)

    def read(self, layer: int, x: Tensor) -> Tensor:
        """Pre-activation of ``layer`` for inputs ``x`` (bias column added here)."""
        # Checked before the bias column is appended, so a wrong shape is named as given.
        tile = self.tiles[layer]
        check_batch(x, tile.in_features - 1, self.instances, f"layer {layer} input")
        padded = self.with_bias(x)
        self._driven[layer] = (x, x._version, padded)
        return self.tiles[layer].read(padded)

    def _update_input(self, layer: int, x: Tensor) -> Tensor:
        """``x`` with the bias input, as the last read of ``layer`` had it if that read was
        driven by this very tensor, unchanged since (``_version`` counts in-place writes)."""
        driven = self._driven[layer]
        if driven is not None and driven[0] is x and driven[1] == x._version:
            return driven[2]
        return self.with_bias(x)

    def over_range(self, layer: int, x: Tensor, y: Tensor) -> Tensor:
        """The ADC overflow flags of ``layer``'s read ``y`` (I, B, out) from inputs ``x``: True
        where an output line reads at full scale (its true value may lie beyond). A layer split
        over several arrays (:mod:`insitu.hardware.tile_grid`) is flagged where any of its
        arrays' ADCs is, each against the full scale of its own slice of the inputs; ``x``
        must then be the inputs of the layer's last read."""
        tile = self.tiles[layer]
        if isinstance(tile, TileGrid):
            return tile.over_range(self._update_input(layer, x))
        self.log.add(Event.DIGITAL_OP, y.numel())  # one comparison per output line
        return self.config.tile.periphery.over_range(y, self.with_bias(x))

    def read_transposed(self, layer: int, d: Tensor) -> Tensor:
        """Error carried back through ``layer`` (the bias row dropped)."""
        return self.tiles[layer].read_transposed(d)[..., :-1]

    def update(
        self, layer: int, x: Tensor, d: Tensor, lr: float, bias: Tensor | None = None
    ) -> None:
        """Pulsed SGD step on ``layer`` from its inputs ``x`` and output errors ``d``.

        ``bias`` (one value per sample, broadcast like ``x[..., 0]``) drives the bias row
        instead of 1, for updates whose rows carry differences or sums of activities.
        """
        self.tiles[layer].update(
            self._update_input(layer, x) if bias is None else self.with_bias(x, bias), d, lr
        )

    def update_layers(self, xs: Sequence[Tensor], ds: Sequence[Tensor], lr: float) -> None:
        """Pulsed SGD step on every layer in one update cycle (layer k from ``xs[k]``, ``ds[k]``).

        The same pulses as :meth:`update` layer by layer (the tiles hold separate devices), with
        the physics of all tiles computed in one pass.
        """
        if len(xs) != self.n_layers or len(ds) != self.n_layers:
            raise ValueError(
                f"got {len(xs)} inputs and {len(ds)} errors for {self.n_layers} layers"
            )
        inputs = [self._update_input(k, x) for k, x in enumerate(xs)]
        if self._pooled is None:
            for t, x, d in zip(self.tiles, inputs, ds, strict=True):
                t.update(x, d, lr)
            return
        entries = [
            t.update_entries(x, d, lr) for t, x, d in zip(self._pooled, inputs, ds, strict=True)
        ]
        apply_tile_entries(self._pooled, entries)

    def activate(self, layer: int, y: Tensor) -> Tensor:
        """Activation circuit of ``layer`` (identity for the output layer)."""
        if layer == self.n_layers - 1:
            return y
        self.log.add(Event.ACTIVATION, y.numel())
        return self.config.activation(y)

    def derivative(self, layer: int, a: Tensor) -> Tensor:
        """Derivative circuit of ``layer``'s activation, from its output ``a``."""
        if layer == self.n_layers - 1:
            return torch.ones_like(a)
        self.log.add(Event.ACTIVATION, a.numel())
        return self.config.activation.derivative(a)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Inputs of every layer followed by the output: ``[x, a_1, ..., y]``."""
        acts = [x]
        for layer in range(self.n_layers):
            acts.append(self.activate(layer, self.read(layer, acts[-1])))
        return acts

    def infer(self, x: Tensor) -> Tensor:
        """Output (I, B, out) for inputs (B, in)."""
        return self.forward(x)[-1]

    def program(
        self,
        weights: Sequence[Tensor],
        tolerance: float | None = None,
        max_iterations: int = 20,
    ) -> list[ProgramResult]:
        """Write-verify every layer to ``weights`` ((out, in+1) or (I, out, in+1) each)."""
        if len(weights) != self.n_layers:
            raise ValueError(f"got {len(weights)} weight matrices for {self.n_layers} layers")
        return [
            t.program(w.to(self.device), tolerance, max_iterations)
            for t, w in zip(self.tiles, weights, strict=True)
        ]

    def relax(self, seconds: float) -> None:
        """Let ``seconds`` pass on every tile."""
        for t in self.tiles:
            t.relax(seconds)

    def state_dict(self) -> dict[str, Any]:
        """Full chip state: tiles, event log and the generator."""
        return {
            "tiles": [t.state_dict() for t in self.tiles],
            "log": self.log.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        for t, s in zip(self.tiles, state["tiles"], strict=True):
            t.load_state_dict(s)
        self.log.load_state_dict(state["log"])
        self.generator.set_state(state["generator"])
