"""Spiking networks in and out of the spiking chip as NIR graphs (Neuromorphic Intermediate
Representation, Pedersen et al., Nature Communications 15, 8122, 2024; the ``nir`` package).

**Export** (:func:`export_nir`) writes what the chip holds: the signed 6-bit integer weights
times the layer's synapse gain, and the neurons either as configured (``"nominal"``) or as a
calibration measured them, one value per neuron (``"measured"``). Graph:
``Input -> Linear -> CubaLIF [-> Linear -> (same CubaLIF): recurrent] -> ... -> Linear ->
CubaLI (a non-spiking readout; CubaLIF if the last layer spikes) -> Output``.

**Import** (:func:`import_nir`) maps a feed-forward chain of ``Input``, ``Linear``/``Affine``
(zero bias), ``CubaLIF``/``LIF`` and a last ``CubaLI``/``LI`` (or spiking) layer, with an
optional ``Linear`` self-loop on a spiking layer, onto a :class:`SpikingChipConfig` and integer
weights, ready for in-the-loop fine-tuning (:meth:`ChipNetwork.trainer`).

How the ODEs are read. NIR gives continuous-time equations; the exporting libraries (snnTorch,
Norse, ...) step them with a time step ``dt`` in which an input spike is a count per step. Per
step, a spike through NIR weight ``W`` adds ``(dt/tau_syn) * w_in * W`` to the synaptic current,
the current adds ``(dt/tau_mem) * r * I`` to the membrane (``LIF``/``LI`` have no current: the
spike adds ``(dt/tau) * r * W`` at once), and the leaks decay as ``exp(-dt/tau)``, which is how
the chip's analog neurons decay between samples. A spike through NIR weight ``W`` therefore moves
the chip's synaptic current (voltage per step) by ``c * W`` with the per-neuron input factor::

    c = (dt/tau_mem) * r * (dt/tau_syn) * w_in     (CubaLIF, CubaLI)
    c = (dt/tau) * r                               (LIF, LI; the chip's tau_s -> 0)

and ``c * W / synapse_gain`` is the integer the chip stores. Units, chip <-> NIR:

=================================  =================================  ========================
chip (``NeuronParams``, per layer)  NIR field                          conversion
=================================  =================================  ========================
``tau_m`` (steps)                   ``tau_mem`` / ``tau`` (seconds)    ``tau_m * dt``
``tau_s`` (steps)                   ``tau_syn`` (seconds)              ``tau_s * dt``
(membrane coupling, 1 per step)     ``r``                              export ``tau_m``
``synapse_gain`` per neuron         ``w_in``                           ``tau_s * gain_i/gain``
``threshold``, ``leak``, ``reset``  ``v_threshold/v_leak/v_reset``     same numbers (volts of
                                                                       the normalised model)
integer weight ``q`` (-63..63)      ``Linear.weight`` (V per spike)    ``q * synapse_gain``
``dt_seconds``                      graph ``metadata["dt"]``           seconds per step
=================================  =================================  ========================

With these choices an exported graph has ``c = 1``: its weights are the chip's, in voltage per
spike. On import a graph exported at step ``dt`` runs on the chip one graph step per chip step
(``dt_seconds``), i.e. accelerated by ``dt / dt_seconds`` as BrainScaleS-2 runs biology; time
constants are kept in steps. The chip adds one step of latency per layer (a spike at step t
moves the membrane from t+1 on). What NIR has no field for (mismatch spread, temporal noise,
ADC, refractory time, ``time_steps``) travels in the graph's metadata (``insitu_neurons``)
and otherwise comes from the ``neuron`` given to :func:`import_nir`.

Measured neurons come only from a calibration: :func:`export_nir` reads no hidden chip state.
For the simulated chip, :func:`simulated_calibration` stands in for a lab's calibration run by
reading the drawn parameters through the named inspection hook
(:mod:`insitu.hardware.inspection`): a perfect calibration, an upper bound on what a real one
would report. Algorithms never call it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal

import nir
import numpy as np
import torch
from torch import Tensor

from insitu import __version__, atomic
from insitu.algorithms.spiking import SpikingTrainer
from insitu.errors import ConfigError, DataError
from insitu.hardware.neurons import NeuronArray, NeuronParams
from insitu.interop.chip_network import ChipNetwork, simulated_calibration
from insitu.interop.nir_import import SUPPORTED, LayerImport, NIRImport, import_nir

__all__ = [
    "SUPPORTED",
    "ChipNetwork",
    "LayerImport",
    "NIRImport",
    "export_nir",
    "import_nir",
    "load_nir",
    "save_nir",
    "simulated_calibration",
]


def _np(x: Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).cpu().numpy()


def export_nir(
    source: SpikingTrainer | ChipNetwork,
    *,
    neurons: Literal["nominal", "measured"] = "nominal",
    measured: Sequence[NeuronArray] | None = None,
    instance: int = 0,
) -> Any:
    """The network as a ``nir.NIRGraph``: weights as written to the chip, neurons nominal or
    measured.

    Args:
        source: a spiking trainer (its integer weights of ``instance``) or a :class:`ChipNetwork`.
        neurons: ``"nominal"``: every neuron of a layer has the layer's ``NeuronParams``;
            ``"measured"``: one value per neuron from ``measured``.
        measured: with ``"measured"``: per layer, the neurons as a calibration measured them
            (time constants in steps; for a simulated chip, :func:`simulated_calibration`).
            Neurons found never to fire get ``v_threshold = inf``.
        instance: which chip instance's weights and measurements to export.
    """
    net = source if isinstance(source, ChipNetwork) else ChipNetwork.from_trainer(source, instance)
    cfg = net.config
    if neurons not in ("nominal", "measured"):
        raise ConfigError(f"neurons = {neurons!r}; expected 'nominal' or 'measured'")
    if neurons == "measured":
        if measured is None:
            raise ConfigError(
                "neurons='measured' needs measured=: per layer, the neuron parameters from a "
                "calibration (simulated chip: simulated_calibration(chip))"
            )
        if len(measured) != len(cfg.layers):
            raise ConfigError(f"measured has {len(measured)} layers; the chip {len(cfg.layers)}")
    dt = cfg.neuron.dt_seconds
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([cfg.inputs])})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for k, lay in enumerate(cfg.layers):
        p = cfg.neuron_params(k)
        if not math.isfinite(p.tau_m):
            raise ConfigError(f"layer {k} tau_m = inf (no leak) has no NIR CubaLIF form")
        n = lay.size
        if measured is not None and neurons == "measured":
            m = measured[k]
            if tuple(m.tau_m.shape[-1:]) != (n,):
                raise ConfigError(
                    f"measured layer {k} has shape {tuple(m.tau_m.shape)}; need n={n}"
                )
            pick = (lambda t: _np(t[instance])) if m.tau_m.dim() == 2 else _np
            tau_m, tau_s = pick(m.tau_m), pick(m.tau_s)
            threshold, leak = pick(m.threshold), pick(m.leak)
            rel_gain = pick(m.gain) / p.synapse_gain
            alive = pick(m.alive.to(torch.float64)) > 0.5
            threshold = np.where(alive, threshold, np.inf)
        else:
            tau_m, tau_s = np.full(n, p.tau_m), np.full(n, p.tau_s)
            threshold, leak = np.full(n, p.threshold), np.full(n, p.leak)
            rel_gain = np.ones(n)
        w = net.weights[k].to(torch.float64).cpu().numpy() * p.synapse_gain
        gain_meta = {"synapse_gain": p.synapse_gain}
        nodes[f"linear_{k}"] = nir.Linear(weight=w, metadata=dict(gain_meta))
        common = {
            "tau_syn": tau_s * dt,
            "tau_mem": tau_m * dt,
            "r": tau_m.copy(),  # = tau_mem / dt: one step's current moves the membrane by it
            "v_leak": leak,
            "w_in": tau_s * rel_gain,  # = tau_syn / dt, times the neuron's relative gain
        }
        if lay.spiking:
            name = f"cubalif_{k}"
            nodes[name] = nir.CubaLIF(v_threshold=threshold, v_reset=np.full(n, p.reset), **common)
        else:
            name = f"cubali_{k}"
            nodes[name] = nir.CubaLI(**common)
        edges += [(prev, f"linear_{k}"), (f"linear_{k}", name)]
        r = net.recurrent[k]
        if r is not None:
            w_r = r.to(torch.float64).cpu().numpy() * p.synapse_gain
            nodes[f"recurrent_{k}"] = nir.Linear(weight=w_r, metadata=dict(gain_meta))
            edges += [(name, f"recurrent_{k}"), (f"recurrent_{k}", name)]
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([cfg.layers[-1].size])})
    edges.append((prev, "output"))
    hardware = [_params_record(cfg.neuron_params(k)) for k in range(len(cfg.layers))]
    metadata = {
        "source": f"insitu {__version__}",
        "dt": dt,
        "time_steps": cfg.time_steps,
        "neurons": neurons,
        "insitu_neurons": json.dumps(hardware),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _params_record(p: NeuronParams) -> dict[str, Any]:
    record = dataclasses.asdict(p)
    record["adc_range"] = list(p.adc_range)
    return record


def save_nir(graph: Any, path: str | PathLike[str]) -> None:
    """Write ``graph`` to ``path`` (NIR's HDF5 format, ``nir.write``), atomically."""
    with atomic.atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, graph)


def load_nir(path: str | PathLike[str]) -> Any:
    """Read a NIR graph written by any NIR library (``nir.read``)."""
    try:
        return nir.read(path)
    except (OSError, KeyError, TypeError, ValueError, AssertionError) as err:
        raise DataError(f"cannot read a NIR graph from {path}: {err}") from None
