"""Pulse entries merged into same-sign runs; all tiles of a chip updated in one pass."""

from __future__ import annotations

import torch

from insitu.devices import get_device
from insitu.hardware import ChipConfig, CrossbarChip, Periphery, TileConfig, UpdateParams
from insitu.hardware.inspection import conductances, pulse_counts
from insitu.hardware.pulse_runs import schedule_runs


def test_entries_merge_into_runs_in_time_order() -> None:
    # Device 5: +1, +2, -1, +3 -> runs +3, -1, +3; device 2: -2 -> one run; device 9: +1, +1.
    index = torch.tensor([5, 2, 5, 9, 5, 9, 5])
    counts = torch.tensor([1.0, -2.0, 2.0, 1.0, -1.0, 1.0, 3.0])
    devices, schedule = schedule_runs(index, counts)
    assert devices.tolist() == [2, 5, 9]
    assert schedule.tolist() == [[-2.0, 0.0, 0.0], [3.0, -1.0, 3.0], [2.0, 0.0, 0.0]]


def test_runs_of_one_sign_need_one_rank() -> None:
    devices, schedule = schedule_runs(torch.tensor([3, 1, 3]), torch.tensor([2.0, -1.0, 4.0]))
    assert devices.tolist() == [1, 3]
    assert schedule.tolist() == [[-1.0], [6.0]]


def _chip(pair: str) -> CrossbarChip:
    # Noise-free, nonlinear and asymmetric (order matters); counts drawn without randomness.
    device = get_device("ecram-liwo3").replace(dw_min_std=0.0).with_variation(0.1)
    tile = TileConfig(
        device,
        periphery=Periphery(noise_management=False, output_noise=0.0),
        update=UpdateParams(mode="count", max_pulses=50),
        pair=pair,
    )
    return CrossbarChip(ChipConfig((5, 4, 3), tile), instances=2, seed=4)


def test_update_layers_equals_layer_by_layer_updates() -> None:
    for pair in ("differential", "reference"):
        joint, separate = _chip(pair), _chip(pair)
        gen = torch.Generator().manual_seed(5)
        step = joint.tiles[0].config.weight_step
        xs = [torch.randint(-2, 3, (2, 6, n), generator=gen).float() for n in (5, 4)]
        ds = [torch.randint(-2, 3, (2, 6, n), generator=gen).float() for n in (4, 3)]
        for _ in range(3):
            joint.update_layers(xs, ds, step)
            for layer in range(2):
                separate.update(layer, xs[layer], ds[layer], step)
        for a, b in zip(joint.tiles, separate.tiles, strict=True):
            for ga, gb in zip(conductances(a), conductances(b), strict=True):
                torch.testing.assert_close(ga, gb)
            assert torch.equal(pulse_counts(a), pulse_counts(b))
            assert pulse_counts(a).sum() > 0
        assert joint.log.counts() == separate.log.counts()
