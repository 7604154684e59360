"""The GPU reference: FLOP and byte counts by hand, roofline pricing, linear in samples."""

from __future__ import annotations

import pytest

from insitu.energy import (
    H100_SXM,
    GpuSpec,
    Work,
    batches_work,
    get_gpu,
    gpu_cost,
    mlp_batch_work,
    snn_batch_work,
)
from insitu.errors import ConfigError


def test_mlp_counts_by_hand() -> None:
    # 3-2 network, biases: P = (3 + 1) * 2 = 8 weights; units 3 + 2 = 5; batch 4.
    w = mlp_batch_work([3, 2], 4)
    assert w.flops == 6 * 8 * 4 + 2 * 8  # forward 2P, backward 4P per sample; update 2P
    assert w.bytes == 4 * (6 * 8 + 5 * 5 * 4)
    inference = mlp_batch_work([3, 2], 4, train=False)
    assert inference.flops == 2 * 8 * 4
    assert inference.bytes == 4 * (8 + 2 * 5 * 4)


def test_snn_counts_by_hand() -> None:
    # 4-3-2 network without biases: P = 12 + 6 = 18; 5 neurons; batch 2, T = 10.
    w = snn_batch_work([4, 3, 2], 2, 10)
    fwd = 10 * 2 * (2 * 18 + 10 * 5)
    bwd = 10 * 2 * (4 * 18 + 10 * 5)
    assert w.flops == fwd + bwd + 2 * 18
    assert w.bytes == 4 * (6 * 18 + 10 * 2 * (3 * 5 + 4) + 10 * 2 * 3 * 5)


def test_doubling_samples_doubles_gpu_cost() -> None:
    for steps in (None, 25):
        one = gpu_cost(batches_work(600, 10, [256, 246, 10], time_steps=steps))
        two = gpu_cost(batches_work(1200, 10, [256, 246, 10], time_steps=steps))
        assert two.joules == pytest.approx(2 * one.joules)
        assert two.seconds == pytest.approx(2 * one.seconds)
        assert two.work.flops == pytest.approx(2 * one.work.flops)


def test_roofline_picks_the_slower_of_compute_and_memory() -> None:
    gpu = GpuSpec(
        "toy",
        peak_flops=100.0,
        memory_bandwidth=10.0,
        board_power_w=2.0,
        utilisation=0.5,
        source="a toy",
    )
    compute = gpu_cost(Work(flops=1000.0, bytes=10.0), gpu)
    assert compute.bound == "compute"
    assert compute.seconds == pytest.approx(1000.0 / 50.0)
    assert compute.joules == pytest.approx(2.0 * 20.0)
    memory = gpu_cost(Work(flops=10.0, bytes=1000.0), gpu)
    assert memory.bound == "memory"
    assert memory.seconds == pytest.approx(1000.0 / 5.0)


def test_h100_figures_and_their_source_are_visible() -> None:
    assert H100_SXM.board_power_w == 700.0
    assert H100_SXM.memory_bandwidth == pytest.approx(3.35e12)
    assert "datasheet" in H100_SXM.source and "ASSUMPTION" in H100_SXM.source
    assert get_gpu("h100") is H100_SXM


def test_bad_gpu_inputs_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown GPU 'tpu'.*h100"):
        get_gpu("tpu")
    with pytest.raises(ConfigError, match="utilisation"):
        GpuSpec("x", 1.0, 1.0, 1.0, utilisation=1.5, source="s")
    with pytest.raises(ConfigError, match="layers"):
        mlp_batch_work([5], 1)
    with pytest.raises(ConfigError, match="samples"):
        batches_work(-1, 10, [3, 2])


def test_working_sets_that_fit_in_l2_pay_only_for_streamed_inputs() -> None:
    w = mlp_batch_work([3, 2], 4)
    assert w.stream_bytes == 4 * 3 * 4  # the batch's inputs
    assert w.working_set == 4 * (2 * 8 + 2 * 5 * 4)
    gpu = GpuSpec("toy", 1e30, 10.0, 1.0, 1.0, "a toy", l2_bytes=w.working_set)
    assert gpu_cost(w, gpu).hbm_bytes == w.stream_bytes
    small_cache = GpuSpec("toy", 1e30, 10.0, 1.0, 1.0, "a toy", l2_bytes=w.working_set - 1)
    assert gpu_cost(w, small_cache).hbm_bytes == w.bytes
    # Scaling to more batches scales traffic but not the per-batch working set.
    assert (w * 3).working_set == w.working_set
    assert (w * 3).stream_bytes == 3 * w.stream_bytes


def test_lower_utilisation_costs_proportionally_more() -> None:
    w = batches_work(1000, 10, [784, 100, 10])
    full = gpu_cost(w, H100_SXM)
    low = gpu_cost(w, H100_SXM.at_utilisation(0.01))
    assert low.joules == pytest.approx(50 * full.joules)
    assert "1%" in H100_SXM.at_utilisation(0.01).name
