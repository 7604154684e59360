"""NIR graphs onto the spiking chip: topology check, unit conversion, quantisation.

The conventions (how NIR's ODEs are read, the units table) are in :mod:`insitu.interop.nir`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import nir
import numpy as np
import torch
from torch import Tensor

from insitu.algorithms.spiking import SpikingTrainer
from insitu.errors import ConfigError
from insitu.hardware.spiking import (
    WEIGHT_LIMIT,
    NeuronParams,
    SpikingChipConfig,
    SpikingLayerConfig,
)
from insitu.interop.chip_network import ChipNetwork

SUPPORTED = (
    "a chain Input -> Linear/Affine (zero bias) -> CubaLIF/LIF -> ... -> Linear/Affine -> "
    "CubaLI/LI/CubaLIF/LIF -> Output, with an optional Linear self-loop on a spiking layer "
    "(subgraphs are inlined)"
)
"""The NIR graphs :func:`import_nir` maps onto the chip."""

INSTANT_TAU_S = 1e-3
"""Synaptic time constant (steps) standing in for LIF/LI, which have no synaptic current:
``exp(-1/tau_s)`` is 0, so a spike's current lasts one step."""

_WEIGHT_NODES = (nir.Linear, nir.Affine)
_SPIKING_NODES = (nir.CubaLIF, nir.LIF)
_READOUT_NODES = (nir.CubaLI, nir.LI)
_SIG_DIGITS = 12  # unit conversions (tau * dt / dt) are rounded to this: no 3.5000000000000004


def _snap(x: float) -> float:
    return float(f"{x:.{_SIG_DIGITS}g}")


@dataclass(frozen=True)
class LayerImport:
    """How one NIR layer landed on the chip.

    Attributes:
        nodes: the NIR node names (weights, neurons, recurrent weights or None).
        synapse_gain: voltage one integer weight step is worth (the layer's quantisation step).
        gain_from: ``"metadata"`` (the graph's own, from insitu) or ``"fit"`` (the largest
            weight magnitude maps to 63).
        weight_error: RMS of (quantised - given) chip weights over RMS of the given ones
            (feed-forward and recurrent together; 0 for all-zero weights).
        max_error_steps: largest quantisation error, in integer weight steps (<= 0.5).
        spread: per neuron parameter the graph varied within the layer (tau_m, tau_s in steps;
            threshold, leak, reset in volts): its standard deviation, which the chip, with one
            nominal value per layer, does not keep.
        never_firing: neurons with an infinite threshold (imported at the layer's mean).
    """

    nodes: tuple[str, str, str | None]
    synapse_gain: float
    gain_from: Literal["metadata", "fit"]
    weight_error: float
    max_error_steps: float
    spread: dict[str, float]
    never_firing: int


@dataclass(frozen=True)
class NIRImport:
    """A NIR graph on the chip: the network and how each layer was quantised."""

    network: ChipNetwork
    layers: tuple[LayerImport, ...]
    speedup: float  # graph seconds per chip second: graph dt / chip dt_seconds

    def trainer(self, algorithm: str = "in-the-loop", **kwargs: Any) -> SpikingTrainer:
        """A trainer starting from the imported weights (see :meth:`ChipNetwork.trainer`)."""
        return self.network.trainer(algorithm, **kwargs)

    def summary(self) -> str:
        """One line per layer: nodes, quantisation step and error, spread lost."""
        lines = []
        for k, lay in enumerate(self.layers):
            spread = ", ".join(f"{name} sd {v:.3g}" for name, v in lay.spread.items() if v > 0)
            lines.append(
                f"layer {k} ({' + '.join(n for n in lay.nodes if n)}): gain "
                f"{lay.synapse_gain:.4g} V/step ({lay.gain_from}), weight error "
                f"{100 * lay.weight_error:.2f}% RMS, max {lay.max_error_steps:.2f} steps"
                + (f"; averaged: {spread}" if spread else "")
                + (f"; {lay.never_firing} never fire" if lay.never_firing else "")
            )
        return "\n".join(lines)


def _kind(node: Any) -> str:
    return type(node).__name__


def _unsupported(name: str, node: Any, why: str) -> ConfigError:
    return ConfigError(f"NIR node {name!r} ({_kind(node)}) {why}; supported: {SUPPORTED}")


def _flatten(
    nodes: dict[str, Any], edges: list[tuple[str, str]]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Subgraphs (as snnTorch writes a recurrent layer) inlined: their nodes named
    ``subgraph.node``, their own Input and Output bypassed."""
    flat: dict[str, Any] = {}
    entry: dict[str, list[str]] = {}  # where an edge into a node (or subgraph) lands
    leave: dict[str, list[str]] = {}  # where an edge out of it starts
    inner: list[tuple[str, str]] = []
    for name, node in nodes.items():
        if not isinstance(node, nir.NIRGraph):
            flat[name], entry[name], leave[name] = node, [name], [name]
            continue
        sub_nodes, sub_edges = _flatten(dict(node.nodes), list(node.edges))
        ins = [n for n, v in sub_nodes.items() if isinstance(v, nir.Input)]
        outs = [n for n, v in sub_nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1 or (ins[0], outs[0]) in sub_edges:
            raise _unsupported(name, node, "is a subgraph without one Input and one Output")
        entry[name] = [f"{name}.{b}" for a, b in sub_edges if a == ins[0]]
        leave[name] = [f"{name}.{a}" for a, b in sub_edges if b == outs[0]]
        flat |= {f"{name}.{n}": v for n, v in sub_nodes.items() if n not in (ins[0], outs[0])}
        inner += [
            (f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges if a != ins[0] and b != outs[0]
        ]
    for a, b in edges:
        if a not in leave or b not in entry:
            raise ConfigError(f"NIR edge ({a!r}, {b!r}) names a node the graph does not have")
        inner += [(x, y) for x in leave[a] for y in entry[b]]
    return flat, inner


def _chain(graph: Any) -> tuple[int, list[tuple[str, str, str | None]], dict[str, Any]]:
    """The graph's inputs, per layer (weight node, neuron node, recurrent node or None), and
    its nodes (subgraphs inlined)."""
    nodes, edges = _flatten(dict(graph.nodes), list(graph.edges))
    known = (nir.Input, nir.Output, *_WEIGHT_NODES, *_SPIKING_NODES, *_READOUT_NODES)
    for name, node in nodes.items():
        if not isinstance(node, known):
            raise _unsupported(name, node, "has no counterpart on the spiking chip")
    succ: dict[str, list[str]] = defaultdict(list)
    pred: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(
            f"NIR graph has {len(inputs)} Input and {len(outputs)} Output nodes; need one each; "
            f"supported: {SUPPORTED}"
        )
    shape = np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1)
    if shape.size != 1:
        raise _unsupported(inputs[0], nodes[inputs[0]], f"has shape {shape.tolist()}, not 1-D")
    seen = {inputs[0]}
    stages: list[tuple[str, str, str | None]] = []
    cur = inputs[0]
    while True:
        nxt = succ[cur]
        if len(nxt) != 1:
            raise _unsupported(cur, nodes[cur], f"feeds {len(nxt)} nodes {nxt}, not one")
        w_name = nxt[0]
        if isinstance(nodes[w_name], nir.Output) and stages:
            seen.add(w_name)
            break
        if not isinstance(nodes[w_name], _WEIGHT_NODES):
            raise _unsupported(w_name, nodes[w_name], f"follows {cur!r} where weights must")
        if len(succ[w_name]) != 1 or len(pred[w_name]) != 1:
            raise _unsupported(w_name, nodes[w_name], "is not a link of a single chain")
        n_name = succ[w_name][0]
        neuron = nodes[n_name]
        if not isinstance(neuron, (*_SPIKING_NODES, *_READOUT_NODES)):
            raise _unsupported(n_name, neuron, f"follows weights {w_name!r} where neurons must")
        rec = [p for p in pred[n_name] if p != w_name]
        r_name = None
        if rec:
            r_name = rec[0]
            loop = (
                len(rec) == 1
                and isinstance(nodes[r_name], _WEIGHT_NODES)
                and pred[r_name] == [n_name]
                and succ[r_name] == [n_name]
            )
            if not loop:
                raise _unsupported(n_name, neuron, f"has inputs {pred[n_name]}, not a chain")
            if not isinstance(neuron, _SPIKING_NODES):
                raise _unsupported(n_name, neuron, "is a non-spiking readout with a self-loop")
        if seen & {w_name, n_name}:
            raise _unsupported(n_name, neuron, "closes a loop other than a Linear self-loop")
        seen |= {w_name, n_name} | ({r_name} if r_name else set())
        stages.append((w_name, n_name, r_name))
        outs = [s for s in succ[n_name] if s != r_name]
        if not isinstance(neuron, _SPIKING_NODES) and not (
            len(outs) == 1 and isinstance(nodes[outs[0]], nir.Output)
        ):
            raise _unsupported(n_name, neuron, "is a non-spiking readout but not the last layer")
        succ[n_name] = outs
        cur = n_name
    stray = sorted(set(nodes) - seen)
    if stray:
        raise _unsupported(stray[0], nodes[stray[0]], "is not on the Input -> Output chain")
    return int(shape[0]), stages, nodes


def _field(name: str, node: Any, key: str, n: int) -> np.ndarray:
    value = np.asarray(getattr(node, key), dtype=np.float64)
    try:
        return np.broadcast_to(value.reshape(-1) if value.size == n else value, (n,)).copy()
    except ValueError:
        raise _unsupported(
            name, node, f"has {key} of shape {value.shape} for {n} neurons"
        ) from None


def _positive(name: str, node: Any, key: str, value: np.ndarray) -> np.ndarray:
    if not bool(np.all(np.isfinite(value) & (value > 0))):
        raise _unsupported(name, node, f"has {key} not finite and positive")
    return value


def _neurons(name: str, node: Any, n: int, dt: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-neuron chip parameters (tau in steps, volts) and the input factor ``c``."""
    get = lambda key: _field(name, node, key, n)  # noqa: E731
    r = get("r")
    if not bool(np.all(np.isfinite(r))):
        raise _unsupported(name, node, "has r not finite")
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        tau_mem = _positive(name, node, "tau_mem", get("tau_mem"))
        tau_syn = _positive(name, node, "tau_syn", get("tau_syn"))
        factor = (dt / tau_mem) * r * (dt / tau_syn) * get("w_in")
        tau_s = tau_syn / dt
    else:
        tau_mem = _positive(name, node, "tau", get("tau"))
        factor = (dt / tau_mem) * r
        tau_s = np.full(n, INSTANT_TAU_S)
    if not bool(np.all(np.isfinite(factor))):
        raise _unsupported(name, node, "has r or w_in not finite")
    values = {"tau_m": tau_mem / dt, "tau_s": tau_s, "leak": get("v_leak")}
    if isinstance(node, _SPIKING_NODES):
        values["threshold"] = get("v_threshold")
        reset = node.v_reset
        values["reset"] = np.zeros(n) if reset is None else _field(name, node, "v_reset", n)
    return values, factor


def _gain(
    name: str, node: Any, w: list[np.ndarray], default: float
) -> tuple[float, Literal["metadata", "fit"]]:
    largest = max(float(np.abs(x).max(initial=0.0)) for x in w)
    meta = (getattr(node, "metadata", None) or {}).get("synapse_gain")
    if meta is not None:
        g = float(meta)
        if g > 0 and largest / g <= WEIGHT_LIMIT + 0.5:
            return g, "metadata"
    if largest == 0:
        return default, "fit"
    return largest / WEIGHT_LIMIT, "fit"


def _params_base(graph: Any, neuron: NeuronParams | None, k: int) -> NeuronParams:
    if neuron is not None:
        return neuron
    text = (getattr(graph, "metadata", None) or {}).get("insitu_neurons")
    if text is None:
        return NeuronParams()
    try:
        records = json.loads(text if isinstance(text, str) else bytes(text).decode())
        return NeuronParams(**records[k]) if k < len(records) else NeuronParams()
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"NIR graph metadata 'insitu_neurons' is unreadable: {err}") from None


def import_nir(
    graph: Any,
    *,
    dt: float | None = None,
    time_steps: int | None = None,
    neuron: NeuronParams | None = None,
) -> NIRImport:
    """A NIR graph on the spiking chip: its configuration, integer weights and quantisation.

    Args:
        graph: a ``nir.NIRGraph`` (:func:`load_nir` reads one from a file).
        dt: seconds per time step of the model that exported the graph (snnTorch's and Norse's
            own ``dt``); None = the graph's ``metadata["dt"]`` (insitu writes it).
        time_steps: steps per sample on the chip; None = the graph's metadata, else 30.
        neuron: what NIR does not say (mismatch, noise, ADC, refractory time, the chip's
            ``dt_seconds``); NIR's time constants, voltages and the fitted gain replace its
            fields. None = the graph's own insitu metadata, else ``NeuronParams()``.

    Per layer the chip keeps one value of each neuron parameter: the mean over the layer's
    neurons (their spread is reported); per-neuron ``r`` and ``w_in`` are folded into the
    weights exactly before quantisation. Raises ConfigError naming an unsupported node.
    """
    metadata = getattr(graph, "metadata", None) or {}
    if dt is None:
        if "dt" not in metadata:
            raise ConfigError(
                "NIR graph has no metadata 'dt'; pass dt= (seconds per step of the model that "
                "exported it, e.g. snnTorch's or Norse's dt)"
            )
        dt = float(metadata["dt"])
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt = {dt!r}; need seconds per step > 0")
    if time_steps is None:
        time_steps = int(metadata.get("time_steps", 30))
    inputs, stages, nodes = _chain(graph)
    layers: list[SpikingLayerConfig] = []
    params: list[NeuronParams] = []
    weights: list[Tensor] = []
    recurrent: list[Tensor | None] = []
    reports: list[LayerImport] = []
    n_in = inputs
    for k, (w_name, n_name, r_name) in enumerate(stages):
        w_node, node = nodes[w_name], nodes[n_name]
        w = np.asarray(w_node.weight, dtype=np.float64)
        n = w.shape[0] if w.ndim == 2 else -1
        if not bool(np.all(np.isfinite(w))):
            raise _unsupported(w_name, w_node, "has weights not finite")
        if w.ndim != 2 or w.shape[1] != n_in:
            raise _unsupported(w_name, w_node, f"has weight shape {w.shape}; need (n, {n_in})")
        for name in (w_name, r_name):
            node_w = nodes.get(name) if name else None
            if isinstance(node_w, nir.Affine) and bool(np.any(np.asarray(node_w.bias) != 0)):
                raise _unsupported(name or "", node_w, "has a nonzero bias, which the chip has not")
        values, factor = _neurons(n_name, node, n, dt)
        given = [w * factor[:, None]]
        if r_name is not None:
            w_r = np.asarray(nodes[r_name].weight, dtype=np.float64)
            if w_r.shape != (n, n):
                raise _unsupported(r_name, nodes[r_name], f"has shape {w_r.shape}; need {(n, n)}")
            given.append(w_r * factor[:, None])
        base = _params_base(graph, neuron, k)
        gain, gain_from = _gain(w_name, w_node, given, base.synapse_gain)
        ints = [np.clip(np.rint(x / gain), -WEIGHT_LIMIT, WEIGHT_LIMIT) for x in given]
        err = np.concatenate([(q * gain - x).ravel() for q, x in zip(ints, given, strict=True)])
        ref = np.concatenate([x.ravel() for x in given])
        rms = float(np.sqrt(np.mean(ref**2)))
        finite = np.isfinite(values.get("threshold", np.zeros(n)))
        if "threshold" in values and not finite.any():
            raise _unsupported(n_name, node, "has no neuron with a finite threshold")
        chosen: dict[str, float] = {}
        spread: dict[str, float] = {}
        for key, v in values.items():
            v = v[finite] if key == "threshold" else v
            chosen[key] = _snap(float(v.mean()))
            spread[key] = float(v.std())
        spiking = isinstance(node, _SPIKING_NODES)
        if not spiking and chosen["leak"] >= base.threshold:  # a readout never fires
            chosen |= {"threshold": chosen["leak"] + 1.0, "reset": chosen["leak"]}
        try:
            p = base.replace(synapse_gain=gain, **chosen)
        except ConfigError as e:
            raise _unsupported(n_name, node, f"maps to an invalid chip neuron ({e})") from None
        lo, hi = p.adc_range
        if p.adc_bits is not None and not (
            lo <= p.leak <= hi and (not spiking or p.threshold <= hi)
        ):
            raise _unsupported(
                n_name,
                node,
                f"has voltages outside the membrane ADC's range {p.adc_range}; "
                "pass neuron= with a wider adc_range",
            )
        layers.append(SpikingLayerConfig(n, recurrent=r_name is not None, spiking=spiking))
        params.append(p)
        weights.append(torch.from_numpy(ints[0]).to(torch.int8))
        recurrent.append(None if r_name is None else torch.from_numpy(ints[1]).to(torch.int8))
        reports.append(
            LayerImport(
                (w_name, n_name, r_name),
                gain,
                gain_from,
                float(np.sqrt(np.mean(err**2))) / rms if rms > 0 else 0.0,
                float(np.abs(err).max(initial=0.0)) / gain,
                spread,
                int((~finite).sum()),
            )
        )
        n_in = n
    chip_neuron = params[0]
    config = SpikingChipConfig(
        inputs,
        tuple(
            dataclasses.replace(lay, neuron=None if p == chip_neuron else p)
            for lay, p in zip(layers, params, strict=True)
        ),
        chip_neuron,
        time_steps,
    )
    network = ChipNetwork(config, tuple(weights), tuple(recurrent))
    return NIRImport(network, tuple(reports), dt / chip_neuron.dt_seconds)
