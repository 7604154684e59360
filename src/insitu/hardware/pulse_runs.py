"""Sequential pulse entries merged into same-sign runs, applied in order.

A mini-batch of sequential rank-1 updates gives each device a short list of signed pulse counts
in time order. Consecutive counts of one sign compose exactly in the closed-form response
(n pulses then m pulses of one direction are n + m pulses), so a device's list merges into runs
of alternating sign, and the whole batch costs one physics call per run *rank* (the k-th run of
every device at once), rarely more than a few, with the outcome of applying the entries one
after another.
"""

from __future__ import annotations

import torch
from torch import Tensor

from insitu.devices import DeviceParams
from insitu.devices.pulse_table import apply_pulses_tabled


def schedule_runs(index: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Devices and their runs: ``(devices (D,), schedule (D, ranks))``, schedule[d, k] = the
    signed pulse count of device ``devices[d]``'s k-th run (0 past its last run).

    ``index`` (E,) names the device of each entry, ``counts`` (E,) its signed pulses; entries of
    one device come in time order.
    """
    order = torch.sort(index, stable=True).indices
    index, counts = index[order], counts[order]
    first = torch.ones_like(index, dtype=torch.bool)
    first[1:] = index[1:] != index[:-1]
    sign = counts.sign()
    new_run = first.clone()
    new_run[1:] |= sign[1:] != sign[:-1]
    run_id = new_run.cumsum(0) - 1
    n_runs = int(run_id[-1]) + 1
    runs = torch.zeros(n_runs, dtype=counts.dtype, device=counts.device)
    runs.scatter_add_(0, run_id, counts)
    devices = index[first]
    if n_runs == devices.numel():  # no device changed sign: one rank
        return devices, runs.unsqueeze(1)
    device_of_run = (first.cumsum(0) - 1)[new_run]
    first_run = run_id[first]
    rank = torch.arange(n_runs, device=runs.device) - first_run[device_of_run]
    width = int(rank.max()) + 1
    schedule = torch.zeros(devices.numel(), width, dtype=counts.dtype, device=counts.device)
    schedule[device_of_run, rank] = runs
    return devices, schedule


def apply_runs(
    params: DeviceParams, rows: Tensor, g: Tensor, schedule: Tensor, gen: torch.Generator
) -> Tensor:
    """Conductances ``g`` (D,) after the runs of ``schedule`` (D, ranks), rank by rank.

    ``rows`` holds the devices' pulse-table rows. Rank 0 holds every device's first run; later
    ranks only the few devices whose pulses changed sign, so only those are computed again.
    """
    g = apply_pulses_tabled(params, rows, g, schedule[:, 0], gen)
    for r in range(1, schedule.shape[1]):
        live = schedule[:, r].nonzero().squeeze(1)
        moved = apply_pulses_tabled(params, rows[live], g[live], schedule[live, r], gen)
        g = g.index_copy(0, live, moved)
    return g
