"""The compiled chip time loop records what the torch loop records, noise included."""

from __future__ import annotations

import pytest
import torch

from insitu.hardware.lif_emulation import KernelEmulation, TorchEmulation
from insitu.hardware.spiking import NeuronParams, Recording, SpikingChip, SpikingChipConfig


def _run(
    recurrent: bool, refractory: int, noise: float, adc_bits: int | None
) -> tuple[list[Recording], SpikingChip]:
    n = NeuronParams(
        synapse_gain=0.05,
        refractory_steps=refractory,
        membrane_noise=noise,
        dead_fraction=0.1,
        adc_bits=adc_bits,
        adc_range=(-0.5, 1.5),  # narrow enough that the membrane clips at both ends
    ).with_mismatch(0.2)
    cfg = SpikingChipConfig.from_sizes(
        (20, 15, 12, 4), recurrent=recurrent, neuron=n, time_steps=25
    )
    chip = SpikingChip(cfg, instances=3, seed=5)
    g = torch.Generator().manual_seed(1)
    for k in range(3):
        chip.write_weights(k, torch.randint(-63, 64, (3, *chip.weight_shape(k)), generator=g))
        if cfg.layers[k].recurrent:
            w_rec = torch.randint(-20, 21, (3, *chip.weight_shape(k, True)), generator=g)
            chip.write_weights(k, w_rec, recurrent=True)
    x = (torch.rand((7, 25, 20), generator=g) < 0.2).float()
    return [chip.run(x), chip.run(x)], chip  # two runs: fresh noise each


@pytest.mark.parametrize(("recurrent", "refractory", "noise", "adc_bits"), [
    (False, 0, 0.0, 8), (False, 2, 0.05, 6), (False, 1, 0.05, None), (True, 0, 0.05, 8),
    (True, 2, 0.0, 8),
])  # fmt: skip
def test_kernel_recordings_equal_torch_recordings(
    monkeypatch: pytest.MonkeyPatch,
    recurrent: bool,
    refractory: int,
    noise: float,
    adc_bits: int | None,
) -> None:
    # INSITU_KERNELS is read when a chip is built: one chip of each kind.
    monkeypatch.setenv("INSITU_KERNELS", "1")
    runs, chip = _run(recurrent, refractory, noise, adc_bits)
    assert isinstance(chip._emulate, KernelEmulation)
    monkeypatch.setenv("INSITU_KERNELS", "0")
    runs_ref, chip_ref = _run(recurrent, refractory, noise, adc_bits)
    assert isinstance(chip_ref._emulate, TorchEmulation)
    for rec, ref in zip(runs, runs_ref, strict=True):
        for a, b in zip(rec.spikes + rec.membrane, ref.spikes + ref.membrane, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            if recurrent:  # recurrent input summed in another order: equal to rounding
                torch.testing.assert_close(a, b)
            else:  # the same float32 operations in the same order: identical
                assert torch.equal(a, b)
        for a, b in zip(rec.spikes, ref.spikes, strict=True):
            assert torch.equal(a, b)
        assert 0.02 < float(rec.spikes[0].mean()) < 0.6
        if adc_bits is not None:  # the ADC clips and quantises: few distinct levels
            levels = torch.unique(rec.membrane[0])
            assert len(levels) <= 2**adc_bits
            assert float(levels.min()) == -0.5 or float(levels.max()) == 1.5
    if noise:  # the noise is fresh on every run, drawn in the same bulk call on both paths
        assert not torch.equal(runs[0].membrane[0], runs[1].membrane[0])
    assert torch.equal(chip.generator.get_state(), chip_ref.generator.get_state())
    assert chip.log.state_dict() == chip_ref.log.state_dict()
