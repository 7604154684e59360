"""What hardware operations cost: joules and seconds per event kind, each number with its
source; an event log priced; the same training on a GPU or CPU for comparison, from the
roofline (the processor's best case) to launch-latency-bound eager execution.

Knows nothing of how events arise (imports only insitu.hardware for the event kinds).
"""

from insitu.energy.gpu import (
    GPUS,
    H100_SXM,
    H100_SXM_FP32,
    GpuCost,
    GpuSpec,
    Work,
    batches_work,
    get_gpu,
    gpu_cost,
    mlp_batch_work,
    snn_batch_work,
)
from insitu.energy.presets import (
    BRAINSCALES2,
    ECRAM_ENODE,
    ECRAM_POLYMER,
    PROFILES,
    TAOX_MEMRISTOR,
    brainscales2_profile,
    check_profile_kind,
    crossbar_profile,
    get_profile,
    profile_for_device,
    profile_names,
)
from insitu.energy.profiles import ASSUMPTION, CostProfile, EventCost, Price, Priced, price
from insitu.energy.reference import (
    CPU_RANGE,
    GPU_RANGE,
    REFERENCE_RANGES,
    XEON_8380,
    LaunchOverhead,
    ReferenceAssumption,
    get_reference_range,
    kernels_per_batch,
    reference_cost,
)
from insitu.energy.report import energy_report, reference_range, summary_totals

__all__ = [
    "ASSUMPTION",
    "BRAINSCALES2",
    "CPU_RANGE",
    "ECRAM_ENODE",
    "ECRAM_POLYMER",
    "GPUS",
    "GPU_RANGE",
    "H100_SXM",
    "H100_SXM_FP32",
    "PROFILES",
    "REFERENCE_RANGES",
    "TAOX_MEMRISTOR",
    "XEON_8380",
    "CostProfile",
    "EventCost",
    "GpuCost",
    "GpuSpec",
    "LaunchOverhead",
    "Price",
    "Priced",
    "ReferenceAssumption",
    "Work",
    "batches_work",
    "brainscales2_profile",
    "check_profile_kind",
    "crossbar_profile",
    "energy_report",
    "get_gpu",
    "get_profile",
    "get_reference_range",
    "gpu_cost",
    "kernels_per_batch",
    "mlp_batch_work",
    "price",
    "profile_for_device",
    "profile_names",
    "reference_cost",
    "reference_range",
    "snn_batch_work",
    "summary_totals",
]
