"""Processor references with stated overheads: the roofline plus kernel-launch latency.

The roofline of :mod:`insitu.energy.gpu` prices only FLOPs and bytes, so on networks of a few
thousand weights a GPU finishes a training step in nanoseconds. A real framework step is a
sequence of kernels (GPU) or operators (CPU), each with a fixed cost the roofline leaves out:
the CUDA launch, or the framework's per-operator dispatch on a CPU. Launches are issued
asynchronously and overlap with execution, so the step takes

    time = max(roofline time, kernels * seconds_per_kernel)

and while the processor waits on launches it draws ``waiting_power_w`` rather than its full
board power: energy = board power * roofline time + waiting power * (time - roofline time) +
host power * time. With no overhead this is exactly the roofline, which stays the optimistic
bound: every :class:`ReferenceAssumption` prices at least the roofline energy of its processor.

Kernel counts per training step (``layers`` = sizes including inputs, L = len(layers) - 1):
an MLP layer launches ``forward_kernels`` (matmul with bias, activation), ``backward_kernels``
(activation gradient, input-gradient matmul, weight-gradient matmul, bias-gradient reduction)
and ``update_kernels`` (SGD on weight and bias, unfused); a step adds ``step_kernels`` (loss,
its gradient, host synchronisation). A spiking layer launches per time step one synaptic
matmul and ``lif_kernels`` elementwise kernels forward, and two matmuls and ``lif_kernels``
backward (BPTT). As a check on the order of magnitude: one PyTorch 2.13 eager training step
of a 60-63-60 sigmoid MLP issues 32 top-level ATen operators on a CPU (measured with
``torch.profiler``; views included); this model counts 20 kernels for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from insitu.energy.gpu import (
    H100_SXM,
    H100_SXM_FP32,
    GpuCost,
    GpuSpec,
    batches_work,
    gpu_cost,
)
from insitu.errors import ConfigError, UnknownNameError


@dataclass(frozen=True)
class LaunchOverhead:
    """Fixed cost of every kernel (GPU launch) or operator (CPU framework dispatch).

    ``seconds_per_kernel``: time from one launch to the next when kernels are tiny (s);
    ``waiting_power_w``: board power while it waits on launches (W); ``host_power_w``: power of
    the host CPU that issues them, charged over the whole time (W; 0 leaves the host out).
    """

    seconds_per_kernel: float
    waiting_power_w: float
    source: str
    host_power_w: float = 0.0
    forward_kernels: int = 2
    backward_kernels: int = 4
    update_kernels: int = 2
    step_kernels: int = 4
    lif_kernels: int = 4

    def __post_init__(self) -> None:
        if not self.seconds_per_kernel > 0:
            raise ConfigError(f"seconds_per_kernel = {self.seconds_per_kernel!r}; need > 0")
        for name in ("waiting_power_w", "host_power_w"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} = {getattr(self, name)!r}; need >= 0")


def kernels_per_batch(
    layers: Sequence[int],
    overhead: LaunchOverhead,
    *,
    time_steps: int | None = None,
    train: bool = True,
) -> int:
    """Kernels one mini-batch launches (see the module docstring for the counting rules)."""
    n = len(layers) - 1
    if n < 1:
        raise ConfigError(f"layers = {list(layers)}; need at least 2 sizes")
    if time_steps is None:
        fwd = n * overhead.forward_kernels
        bwd = n * (overhead.backward_kernels + overhead.update_kernels)
    else:
        if time_steps < 1:
            raise ConfigError(f"time_steps = {time_steps}; need >= 1")
        fwd = n * time_steps * (1 + overhead.lif_kernels)
        bwd = n * (time_steps * (2 + overhead.lif_kernels) + overhead.update_kernels)
    if not train:
        return fwd
    return fwd + bwd + overhead.step_kernels


def reference_cost(
    samples: float,
    batch_size: int,
    layers: Sequence[int],
    processor: GpuSpec,
    overhead: LaunchOverhead | None = None,
    *,
    time_steps: int | None = None,
    train: bool = True,
) -> GpuCost:
    """Time and energy of ``samples`` samples on ``processor``: the roofline, and with
    ``overhead`` the launch-latency bound on top of it (module docstring)."""
    work = batches_work(samples, batch_size, layers, time_steps=time_steps, train=train)
    busy = gpu_cost(work, processor)
    if overhead is None:
        return busy
    batches = samples / batch_size
    launch_s = (
        batches
        * overhead.seconds_per_kernel
        * kernels_per_batch(layers, overhead, time_steps=time_steps, train=train)
    )
    seconds = max(busy.seconds, launch_s)
    joules = (
        busy.joules
        + (seconds - busy.seconds) * overhead.waiting_power_w
        + seconds * overhead.host_power_w
    )
    bound = "launch" if launch_s > busy.seconds else busy.bound
    return GpuCost(processor.name, work, seconds, joules, bound, busy.hbm_bytes)


XEON_8380 = GpuSpec(
    name="Intel Xeon Platinum 8380 (FP32 AVX-512, 40 cores)",
    peak_flops=40 * 2.3e9 * 64,
    memory_bandwidth=8 * 25.6e9,
    board_power_w=270.0,
    utilisation=0.5,
    source="Intel ARK, Xeon Platinum 8380: 40 cores at 2.3 GHz base, two AVX-512 FMA units "
    "(64 FP32 FLOP per cycle per core, i.e. 5.9 TFLOPS), 8 channels DDR4-3200 (205 GB/s), "
    "60 MB L3, TDP 270 W. ASSUMPTION: 50% of peak, package at TDP while busy, working sets "
    "within L3 cost no DRAM traffic.",
    l2_bytes=60e6,
)
"""A 'standard processor' of 2020-2022 servers: the reference for the PNAS comparison."""


@dataclass(frozen=True)
class ReferenceAssumption:
    """One honest assumption set: a processor, its overhead (None: the roofline) and, if set,
    a batch size that replaces the run's (1: online learning, a sample at a time)."""

    label: str
    processor: GpuSpec
    overhead: LaunchOverhead | None = None
    batch_size: int | None = None

    def cost(
        self,
        batch_size: int,
        layers: Sequence[int],
        *,
        time_steps: int | None = None,
        train: bool = True,
    ) -> GpuCost:
        """Per-sample cost of the run's network (the run's ``batch_size`` unless overridden)."""
        batch = self.batch_size or batch_size
        return reference_cost(
            1.0, batch, layers, self.processor, self.overhead, time_steps=time_steps, train=train
        )


_LAUNCH = (
    "ASSUMPTION: CUDA kernel launch plus PyTorch eager dispatch, {us:g} us per kernel (3-10 "
    "us is the usual range; what CUDA graphs remove); H100 at {w:g} W while waiting "
    "(idle is ~70 W on nvidia-smi, max 700 W); host {h:g} W."
)
_DISPATCH = (
    "ASSUMPTION: PyTorch eager per-operator dispatch on a CPU, {us:g} us per operator "
    "(measured here: a 60-63-60 training step of 32 operators took 0.6 ms on a loaded 2-core "
    "VM); package at {w:g} W while dispatching; host counted in it."
)


def _gpu_launch(us: float, waiting_w: float, host_w: float) -> LaunchOverhead:
    return LaunchOverhead(
        us * 1e-6, waiting_w, _LAUNCH.format(us=us, w=waiting_w, h=host_w), host_power_w=host_w
    )


def _cpu_dispatch(us: float, waiting_w: float) -> LaunchOverhead:
    return LaunchOverhead(us * 1e-6, waiting_w, _DISPATCH.format(us=us, w=waiting_w))


GPU_RANGE = (
    ReferenceAssumption("roofline TF32 50%", H100_SXM),
    ReferenceAssumption("roofline FP32 50%", H100_SXM_FP32),
    ReferenceAssumption("FP32, launch 3us, 70W", H100_SXM_FP32, _gpu_launch(3, 70, 0)),
    ReferenceAssumption(
        "FP32 10%, launch 5us, 150W",
        H100_SXM_FP32.at_utilisation(0.1),
        _gpu_launch(5, 150, 0),
    ),
    ReferenceAssumption(
        "batch 1, launch 10us, 350W",
        H100_SXM_FP32.at_utilisation(0.1),
        _gpu_launch(10, 300, 50),
        batch_size=1,
    ),
)
"""An H100 from its roofline (the GPU's best case) to eager PyTorch one sample at a time."""

CPU_RANGE = (
    ReferenceAssumption("roofline FP32 50%", XEON_8380),
    ReferenceAssumption("dispatch 2us, 135W", XEON_8380, _cpu_dispatch(2, 135)),
    ReferenceAssumption(
        "10%, dispatch 5us, 270W", XEON_8380.at_utilisation(0.1), _cpu_dispatch(5, 270)
    ),
    ReferenceAssumption(
        "batch 1, dispatch 10us, 270W",
        XEON_8380.at_utilisation(0.1),
        _cpu_dispatch(10, 270),
        batch_size=1,
    ),
)
"""A server CPU from its roofline to eager PyTorch one sample at a time."""

REFERENCE_RANGES = {"gpu": GPU_RANGE, "cpu": CPU_RANGE}


def get_reference_range(name: str) -> tuple[ReferenceAssumption, ...]:
    """An assumption range by name (gpu or cpu); unknown names raise ConfigError."""
    if name not in REFERENCE_RANGES:
        raise UnknownNameError("reference range", name, REFERENCE_RANGES)
    return REFERENCE_RANGES[name]
