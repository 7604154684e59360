"""One place decides torch or kernel, once, when an object is built."""

from __future__ import annotations

import pytest
import torch

from insitu.algorithms.base import compiled_softmax_error, softmax_backend, softmax_error
from insitu.algorithms.lif_graph import KernelLIFModel, TorchLIFModel, lif_backend
from insitu.devices import get_device
from insitu.errors import ConfigError
from insitu.hardware import (
    ChipConfig,
    CrossbarChip,
    SpikingChip,
    SpikingChipConfig,
    Tile,
    TileConfig,
    UpdateMode,
    UpdateParams,
)
from insitu.hardware.backend import Implementation, choose
from insitu.hardware.lif_emulation import KernelEmulation, TorchEmulation
from insitu.hardware.synapses import KernelSynapses, TorchSynapses, synaptic_backend
from insitu.hardware.tile_read import KernelRead, TorchRead
from insitu.hardware.tile_update import KernelUpdate, TorchUpdate

KERNEL, TORCH = Implementation.KERNEL, Implementation.TORCH


def test_choose_reads_the_switch_and_the_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSITU_KERNELS", raising=False)
    assert choose("cpu") is KERNEL
    assert choose("cpu", torch.float64) is KERNEL
    assert choose("cpu", torch.float16) is TORCH  # no kernel for it
    assert choose("meta") is TORCH  # not the CPU
    assert choose("cpu", backend="torch") is TORCH
    for off in ("0", ""):
        monkeypatch.setenv("INSITU_KERNELS", off)
        assert choose("cpu") is TORCH
        assert choose("cpu", backend="kernel") is KERNEL  # an explicit choice wins


def test_choose_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ConfigError, match="backend = 'gpu'"):
        choose("cpu", backend="gpu")
    with pytest.raises(ConfigError, match="on the CPU"):
        choose("meta", backend="kernel")


def _tile(backend: str = "auto", **update: object) -> Tile:
    config = TileConfig(get_device("ecram-liwo3"), update=UpdateParams(**update))  # type: ignore[arg-type]
    return Tile(4, 3, config, generator=torch.Generator().manual_seed(0), backend=backend)  # type: ignore[arg-type]


def test_a_tile_binds_its_implementations_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSITU_KERNELS", "1")
    fast = _tile()
    assert isinstance(fast._read, KernelRead) and isinstance(fast._update, KernelUpdate)
    assert fast.kernel_ready()
    slow = _tile("torch")
    assert isinstance(slow._read, TorchRead) and isinstance(slow._update, TorchUpdate)
    assert not slow.kernel_ready()
    # A design the compiled update does not implement keeps the reference for its updates.
    count = _tile("kernel", mode=UpdateMode.COUNT)
    assert isinstance(count._read, KernelRead) and isinstance(count._update, TorchUpdate)
    # The switch is read when the tile is built, not at every call.
    monkeypatch.setenv("INSITU_KERNELS", "0")
    assert fast.kernel_ready() and isinstance(fast._read, KernelRead)
    assert not _tile().kernel_ready()


def test_chips_and_models_pass_their_backend_on() -> None:
    tile = TileConfig(get_device("ecram-liwo3"))
    chip = CrossbarChip(ChipConfig((5, 4, 2), tile), backend="torch")
    assert not any(t.kernel_ready() for t in chip.tiles)
    assert all(t.kernel_ready() for t in CrossbarChip(ChipConfig((5, 4, 2), tile)).tiles)
    cfg = SpikingChipConfig.from_sizes((6, 5, 3))
    spiking = SpikingChip(cfg, backend="torch")
    assert isinstance(spiking._emulate, TorchEmulation)
    assert isinstance(spiking._synapses, TorchSynapses)
    spiking = SpikingChip(cfg, backend="kernel")
    assert isinstance(spiking._emulate, KernelEmulation)
    assert isinstance(spiking._synapses, KernelSynapses)
    assert isinstance(synaptic_backend(KERNEL), KernelSynapses)
    assert isinstance(lif_backend(KERNEL).model, KernelLIFModel)
    assert isinstance(lif_backend(TORCH).model, TorchLIFModel)
    assert softmax_backend(KERNEL) is compiled_softmax_error
    assert softmax_backend(TORCH) is softmax_error


def test_both_backends_run_the_same_spiking_chip() -> None:
    cfg = SpikingChipConfig.from_sizes((6, 5, 3), time_steps=8)
    x = (torch.rand((4, 8, 6), generator=torch.Generator().manual_seed(1)) < 0.3).float()
    out = {}
    for backend in ("torch", "kernel"):
        chip = SpikingChip(cfg, instances=2, seed=3, backend=backend)  # type: ignore[arg-type]
        chip.write_weights(0, torch.full((5, 6), 40))
        chip.write_weights(1, torch.full((3, 5), 30))
        out[backend] = chip.run(x)
    for a, b in zip(out["torch"].membrane, out["kernel"].membrane, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["torch", "kernel"])
def test_a_copied_tile_updates_its_own_devices(backend: str) -> None:
    import copy
    import pickle

    from insitu.hardware import inspection

    tile = Tile(
        6,
        4,
        TileConfig(get_device("ecram-organic")),
        instances=2,
        generator=torch.Generator().manual_seed(0),
        backend=backend,
    )
    x, d = torch.rand(5, 6), torch.randn(5, 4)
    tile.update(x, d, 0.5)  # the kernel backend derives its views of the tile's tensors here
    for copied in (copy.deepcopy(tile), pickle.loads(pickle.dumps(tile))):
        before = [g.clone() for g in inspection.conductances(tile)]
        copied.update(x, d, 0.5)
        after_original = inspection.conductances(tile)
        assert all(torch.equal(a, b) for a, b in zip(before, after_original, strict=True))
        moved = inspection.conductances(copied)
        assert any(not torch.equal(a, b) for a, b in zip(before, moved, strict=True))
