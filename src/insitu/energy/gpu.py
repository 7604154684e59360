"""The GPU reference: the same training done by software backprop, priced on a named GPU.

Work is counted in FLOPs and bytes of memory traffic (FP32, 4 bytes per value) per
mini-batch, then priced with a roofline at a stated utilisation: time = max(FLOPs / (peak *
u), HBM bytes / (bandwidth * u)), energy = board power * time (the board is assumed to draw its
full power while busy). When a batch's working set (weights, gradients, the batch's
activations and states) fits in the GPU's L2 cache, only the streamed input data is charged as
HBM traffic: the rest stays on chip and is taken as free. Host CPU, idle time and kernel-launch
latency are left out. All of these choices favour the GPU: for networks this small a real GPU
runs far below 50% of its peak, which ``utilisation`` lets a study set.

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

import dataclasses
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
    l2_bytes: float = 0.0  # last-level cache: working sets that fit cost no HBM traffic

    def __post_init__(self) -> None:
        for field_name in ("peak_flops", "memory_bandwidth", "board_power_w"):
            if not getattr(self, field_name) > 0:
                raise ConfigError(f"{field_name} = {getattr(self, field_name)!r}; need > 0")
        if not 0 < self.utilisation <= 1:
            raise ConfigError(f"utilisation = {self.utilisation!r}; need a value in (0, 1]")
        if not self.l2_bytes >= 0:
            raise ConfigError(f"l2_bytes = {self.l2_bytes!r}; need >= 0")

    def at_utilisation(self, utilisation: float) -> GpuSpec:
        """The same GPU at another assumed utilisation."""
        return dataclasses.replace(
            self,
            name=f"{self.name} at {utilisation:.0%}",
            utilisation=utilisation,
            source=f"{self.source} Utilisation set to {utilisation:.0%} instead.",
        )


H100_SXM = GpuSpec(
    name="NVIDIA H100 SXM (TF32 tensor cores, dense)",
    peak_flops=494.7e12,
    memory_bandwidth=3.35e12,
    board_power_w=700.0,
    utilisation=0.5,
    source="NVIDIA H100 datasheet: TF32 tensor core 989 TFLOPS with 2:4 sparsity, i.e. ~495 "
    "TFLOPS dense; HBM3 3.35 TB/s; 50 MB L2; max board power 700 W. ASSUMPTION: 50% of peak "
    "FLOP/s and bandwidth (generous for networks this small), board at full power while busy, "
    "working sets within L2 cost no HBM traffic.",
    l2_bytes=50e6,
)

H100_SXM_FP32 = GpuSpec(
    name="NVIDIA H100 SXM (FP32 CUDA cores)",
    peak_flops=66.9e12,
    memory_bandwidth=3.35e12,
    board_power_w=700.0,
    utilisation=0.5,
    source="NVIDIA H100 datasheet: FP32 67 TFLOPS; HBM3 3.35 TB/s; 50 MB L2; max board power "
    "700 W. ASSUMPTION: 50% of peak FLOP/s and bandwidth, board at full power while busy, "
    "working sets within L2 cost no HBM traffic.",
    l2_bytes=50e6,
)

GPUS = {"h100": H100_SXM, "h100-fp32": H100_SXM_FP32}


def get_gpu(name: str) -> GpuSpec:
    """A GPU reference by name; unknown names raise ConfigError listing the valid ones."""
    if name not in GPUS:
        raise UnknownNameError("GPU", name, GPUS)
    return GPUS[name]


@dataclass(frozen=True)
class Work:
    """FLOPs and bytes of memory traffic of some batches.

    ``bytes`` is all traffic, ``stream_bytes`` the part that must come from HBM whatever the
    cache (the input data), ``working_set`` the bytes one batch keeps live (not scaled by the
    number of batches).
    """

    flops: float
    bytes: float
    stream_bytes: float = 0.0
    working_set: float = 0.0

    def __mul__(self, k: float) -> Work:
        return Work(self.flops * k, self.bytes * k, self.stream_bytes * k, self.working_set)


@dataclass(frozen=True)
class GpuCost:
    """What ``work`` costs on ``gpu``."""

    gpu: str
    work: Work
    seconds: float
    joules: float
    bound: str  # "compute" or "memory"
    hbm_bytes: float = 0.0  # traffic charged to HBM (the rest stays in L2)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "gpu": self.gpu,
            "flops": self.work.flops,
            "bytes": self.work.bytes,
            "hbm_bytes": self.hbm_bytes,
            "working_set_bytes": self.work.working_set,
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
    stream = BYTES_PER_VALUE * layers[0] * b
    if not train:
        live = BYTES_PER_VALUE * (p + units * b)
        return Work(2 * p * b, BYTES_PER_VALUE * (p + 2 * units * b), stream, live)
    flops = 6 * p * b + 2 * p
    values = 6 * p + 5 * units * b
    live = BYTES_PER_VALUE * (2 * p + 2 * units * b)  # weights, gradients, activations, deltas
    return Work(flops, BYTES_PER_VALUE * values, stream, live)


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
    stream = BYTES_PER_VALUE * t * b * layers[0]
    if not train:
        live = BYTES_PER_VALUE * (p + 3 * neurons * b)  # only the current step's state
        return Work(fwd, BYTES_PER_VALUE * (p + traffic), stream, live)
    bwd = t * b * (4 * p + LIF_FLOPS * neurons)
    values = 6 * p + traffic + t * b * 3 * neurons  # states read back in the backward pass
    live = BYTES_PER_VALUE * (2 * p + t * b * 3 * neurons)  # every step's state kept for BPTT
    return Work(fwd + bwd + 2 * p, BYTES_PER_VALUE * values, stream, live)


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
    cached = 0 < work.working_set <= gpu.l2_bytes  # 0: unknown, charge everything
    hbm = work.stream_bytes if cached else work.bytes
    t_compute = work.flops / (gpu.peak_flops * gpu.utilisation)
    t_memory = hbm / (gpu.memory_bandwidth * gpu.utilisation)
    seconds = max(t_compute, t_memory)
    bound = "compute" if t_compute >= t_memory else "memory"
    return GpuCost(gpu.name, work, seconds, seconds * gpu.board_power_w, bound, hbm)
