"""What hardware operations cost: joules and seconds per event kind, each number with its
source; an event log priced; the same training on a GPU for comparison.

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
from insitu.energy.report import energy_report, summary_totals

__all__ = [
    "ASSUMPTION",
    "BRAINSCALES2",
    "ECRAM_ENODE",
    "ECRAM_POLYMER",
    "GPUS",
    "H100_SXM",
    "H100_SXM_FP32",
    "PROFILES",
    "TAOX_MEMRISTOR",
    "CostProfile",
    "EventCost",
    "GpuCost",
    "GpuSpec",
    "Price",
    "Priced",
    "Work",
    "batches_work",
    "brainscales2_profile",
    "check_profile_kind",
    "crossbar_profile",
    "energy_report",
    "get_gpu",
    "get_profile",
    "gpu_cost",
    "mlp_batch_work",
    "price",
    "profile_for_device",
    "profile_names",
    "snn_batch_work",
    "summary_totals",
]
