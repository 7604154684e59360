"""The GPU reference: the same training done by software backprop, priced on a named GPU.

Work is counted in FLOPs and bytes of off-chip memory traffic (FP32, 4 bytes per value) per
mini-batch, then priced with a roofline at a stated utilisation: time = max(FLOPs / (peak *
u), bytes / (bandwidth * u)), energy = board power * time (the board is assumed to draw its
full power while busy; host CPU, idle time and kernel-launch latency are left out, all of which
would make the GPU costlier for these small networks, so the reference favours the GPU).

Counting rules (``layers`` = sizes including inputs and outputs, P = weights):

- MLP (bias per unit, P = sum (n_in + 1) * n_out): forward 2 P FLOPs per sample, backward 4 P
  (gradients of inputs and of weights; the first layer's input gradient is counted too, a small
  overcount), SGD update 2 P per batch. Bytes per batch: weights read in the forward and the
  backward pass, gradients written, update reads weights and gradients and writes weights (6 P
  values); activations written and read in the forward pass, read again and deltas written and
  read in the backward pass (5 values per unit per sample).
- Spiking (backprop through time with surrogate gradients, T steps, no bias): per step the
  synaptic matmuls (2 P forward, 4 P backward) and ``LIF_FLOPS`` per neuron forward and again
  backward; bytes per batch: 6 P for the weights, and per step and sample the state of every
  neuron (membrane, current, spike: 3 values) written in the forward pass and read in the
  backward pass, plus the input spikes read.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from insitu.errors import ConfigError, UnknownNameError

BYTES_PER_VALUE = 4
LIF_FLOPS = 10
"""FLOPs of one LIF neuron update (decays, input, threshold, reset): an assumption."""


@dataclass(frozen=True)
class GpuSpec:
    """A GPU's published peak figures and the utilisation assumed for this workload."""

    name: str
    peak_flops: float  # FLOP/s
    memory_bandwidth: float  # bytes/s
    board_power_w: float
    utilisation: float
    source: str

    def __post_init__(self) -> None:
        for field_name in ("peak_flops", "memory_bandwidth", "board_power_w"):
            if not getattr(self, field_name) > 0:
                raise ConfigError(f"{field_name} = {getattr(self, field_name)!r}; need > 0")
        if not 0 < self.utilisation <= 1:
            raise ConfigError(f"utilisation = {self.utilisation!r}; need a value in (0, 1]")


H100_SXM = GpuSpec(
    name="NVIDIA H100 SXM (TF32 tensor cores, dense)",
    peak_flops=494.7e12,
    memory_bandwidth=3.35e12,
    board_power_w=700.0,
    utilisation=0.5,
    source="NVIDIA H100 datasheet: TF32 tensor core 989 TFLOPS with 2:4 sparsity, i.e. ~495 "
    "TFLOPS dense; HBM3 3.35 TB/s; max board power 700 W. ASSUMPTION: 50% of peak FLOP/s and "
    "bandwidth (generous for networks this small), board at full power while busy.",
)

H100_SXM_FP32 = GpuSpec(
    name="NVIDIA H100 SXM (FP32 CUDA cores)",
    peak_flops=66.9e12,
    memory_bandwidth=3.35e12,
    board_power_w=700.0,
    utilisation=0.5,
    source="NVIDIA H100 datasheet: FP32 67 TFLOPS; HBM3 3.35 TB/s; max board power 700 W. "
    "ASSUMPTION: 50% of peak FLOP/s and bandwidth, board at full power while busy.",
)

GPUS = {"h100": H100_SXM, "h100-fp32": H100_SXM_FP32}


def get_gpu(name: str) -> GpuSpec:
    """A GPU reference by name; unknown names raise ConfigError listing the valid ones."""
    if name not in GPUS:
        raise UnknownNameError("GPU", name, GPUS)
    return GPUS[name]


@dataclass(frozen=True)
class Work:
    """FLOPs and bytes of memory traffic."""

    flops: float
    bytes: float

    def __add__(self, other: Work) -> Work:
        return Work(self.flops + other.flops, self.bytes + other.bytes)

    def __mul__(self, k: float) -> Work:
        return Work(self.flops * k, self.bytes * k)


@dataclass(frozen=True)
class GpuCost:
    """What ``work`` costs on ``gpu``."""

    gpu: str
    work: Work
    seconds: float
    joules: float
    bound: str  # "compute" or "memory"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "gpu": self.gpu,
            "flops": self.work.flops,
            "bytes": self.work.bytes,
            "seconds": self.seconds,
            "joules": self.joules,
            "bound": self.bound,
        }


def _check(layers: Sequence[int], batch_size: int, time_steps: int) -> None:
    if len(layers) < 2 or min(layers) < 1:
        raise ConfigError(f"layers = {list(layers)}; need at least 2 sizes, each >= 1")
    if batch_size < 1:
        raise ConfigError(f"batch_size = {batch_size}; need >= 1")
    if time_steps < 1:
        raise ConfigError(f"time_steps = {time_steps}; need >= 1")


def mlp_batch_work(layers: Sequence[int], batch_size: int, *, train: bool = True) -> Work:
    """One mini-batch of an MLP with biases: forward (and, if ``train``, backward + update)."""
    _check(layers, batch_size, 1)
    p = sum((a + 1) * b for a, b in itertools.pairwise(layers))
    units = sum(layers)
    b = batch_size
    if not train:
        return Work(2 * p * b, BYTES_PER_VALUE * (p + 2 * units * b))
    flops = 6 * p * b + 2 * p
    values = 6 * p + 5 * units * b
    return Work(flops, BYTES_PER_VALUE * values)


def snn_batch_work(
    layers: Sequence[int], batch_size: int, time_steps: int, *, train: bool = True
) -> Work:
    """One mini-batch of a feed-forward LIF network over ``time_steps`` steps (BPTT)."""
    _check(layers, batch_size, time_steps)
    p = sum(a * b for a, b in itertools.pairwise(layers))
    neurons = sum(layers[1:])
    b, t = batch_size, time_steps
    fwd = t * b * (2 * p + LIF_FLOPS * neurons)
    traffic = t * b * (3 * neurons + layers[0])  # states written, inputs read
    if not train:
        return Work(fwd, BYTES_PER_VALUE * (p + traffic))
    bwd = t * b * (4 * p + LIF_FLOPS * neurons)
    values = 6 * p + traffic + t * b * 3 * neurons  # states read back in the backward pass
    return Work(fwd + bwd + 2 * p, BYTES_PER_VALUE * values)


def batches_work(
    samples: float,
    batch_size: int,
    layers: Sequence[int],
    *,
    time_steps: int | None = None,
    train: bool = True,
) -> Work:
    """Work of ``samples`` samples in full batches of ``batch_size`` (the last may be partial;
    counted as a fraction of a batch, which keeps the count linear in samples)."""
    if samples < 0:
        raise ConfigError(f"samples = {samples}; need >= 0")
    if time_steps is None:
        one = mlp_batch_work(layers, batch_size, train=train)
    else:
        one = snn_batch_work(layers, batch_size, time_steps, train=train)
    return one * (samples / batch_size)


def gpu_cost(work: Work, gpu: GpuSpec = H100_SXM) -> GpuCost:
    """Roofline time and board energy of ``work`` on ``gpu`` at its stated utilisation."""
    t_compute = work.flops / (gpu.peak_flops * gpu.utilisation)
    t_memory = work.bytes / (gpu.memory_bandwidth * gpu.utilisation)
    seconds = max(t_compute, t_memory)
    bound = "compute" if t_compute >= t_memory else "memory"
    return GpuCost(gpu.name, work, seconds, seconds * gpu.board_power_w, bound)
