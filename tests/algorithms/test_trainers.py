"""Learning rules: the float reference, analog SGD on the chip, transfer, determinism, discipline.

Analog runs stay small (a 64-16-10 network, a few hundred digits) so the file runs in seconds.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import insitu.algorithms
from insitu.algorithms import (
    ALGORITHMS,
    AnalogSGD,
    Software,
    SoftwareMLP,
    Trainer,
    Transfer,
    algorithm_names,
    glorot_weights,
    make_trainer,
    softmax_error,
)
from insitu.data import Dataset, load_dataset
from insitu.devices import get_device
from insitu.errors import DivergenceError, UnknownNameError
from insitu.hardware import (
    IDEAL_PERIPHERY,
    Activation,
    ChipConfig,
    Event,
    TileConfig,
    UpdateMode,
    UpdateParams,
    inspection,
)

LAYERS = (64, 16, 10)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def ideal_chip(*, sequential: bool = False, layers: tuple[int, ...] = LAYERS) -> ChipConfig:
    """Ideal devices and periphery, deterministic pulse counts: analog SGD ~ float SGD.

    ``max_pulses`` is raised so that no update is clipped; ``sequential=False`` applies each
    mini-batch as one summed update, exactly what float SGD does (and 6x faster).
    """
    update = UpdateParams(mode=UpdateMode.COUNT, max_pulses=10_000, sequential=sequential)
    tile = TileConfig(get_device("ideal"), IDEAL_PERIPHERY, update)
    return ChipConfig(layers, tile)


def organic_chip(layers: tuple[int, ...] = LAYERS) -> ChipConfig:
    """Organic ECRAM with the default (realistic) periphery and stochastic updates."""
    return ChipConfig(layers, TileConfig(get_device("ecram-organic")))


def run_epoch(
    trainer: Trainer, x: Tensor, y: Tensor, batch_size: int = 10, seed: int = 0
) -> Tensor:
    """One shuffled epoch; the mean training loss per instance."""
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    total = torch.zeros(trainer.instances)
    batches = 0
    for b in range(0, len(y), batch_size):
        idx = perm[b : b + batch_size]
        total += trainer.train_batch(x[idx], y[idx])
        batches += 1
    return total / batches


def accuracy(trainer: Trainer, x: Tensor, y: Tensor) -> Tensor:
    with torch.no_grad():
        return (trainer.predict(x).argmax(-1) == y).to(torch.float32).mean(-1)


def assert_same_state(a: Any, b: Any, where: str = "state") -> None:
    """Bit-identical nested state (dicts, lists, tensors, numbers)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            assert_same_state(u, v, f"{where}[{i}]")
    elif isinstance(a, Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def states_equal(a: Any, b: Any) -> bool:
    try:
        assert_same_state(a, b)
    except AssertionError:
        return False
    return True


# -- softmax_error ---------------------------------------------------------------------------


@pytest.mark.parametrize(("instances", "batch", "classes"), [(1, 1, 2), (3, 7, 5), (2, 16, 10)])
def test_softmax_error_matches_torch_cross_entropy(
    instances: int, batch: int, classes: int
) -> None:
    gen = torch.Generator().manual_seed(instances * 100 + batch)
    logits = (3 * torch.randn((instances, batch, classes), generator=gen)).double()
    y = torch.randint(0, classes, (batch,), generator=gen)
    loss, grad = softmax_error(logits, y)

    leaf = logits.clone().requires_grad_(True)
    per_instance = torch.stack([nn.functional.cross_entropy(leaf[i], y) for i in range(instances)])
    # Instances are independent networks: the gradient of their summed mean losses is each
    # instance's gradient of its own mean cross-entropy.
    (expected_grad,) = torch.autograd.grad(per_instance.sum(), leaf)

    assert loss.shape == (instances,)
    assert grad.shape == logits.shape
    torch.testing.assert_close(loss, per_instance.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_softmax_error_is_stable_for_large_logits() -> None:
    logits = torch.tensor([[[1000.0, 0.0, -1000.0]]])
    loss, grad = softmax_error(logits, torch.tensor([0]))
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_softmax_error_raises_divergence_on_nonfinite_logits(bad: float) -> None:
    logits = torch.zeros((2, 3, 4))
    logits[1, 2, 0] = bad
    with pytest.raises(DivergenceError, match="NaN or infinite"):
        softmax_error(logits, torch.tensor([0, 1, 2]))


# -- the float reference -----------------------------------------------------------------------


@pytest.mark.parametrize("activation", [Activation.SIGMOID, Activation.TANH, Activation.RELU])
def test_software_mlp_sgd_step_matches_autograd_sgd(activation: Activation) -> None:
    layers = (6, 5, 4, 3)
    instances, lr = 3, 0.3
    gen = torch.Generator().manual_seed(1)
    weights = [
        torch.randn((instances, n_out, n_in + 1), generator=gen) * 0.8
        for n_in, n_out in itertools.pairwise(layers)
    ]
    nonlinearity = {
        Activation.SIGMOID: nn.Sigmoid,
        Activation.TANH: nn.Tanh,
        Activation.RELU: nn.ReLU,
    }[activation]
    # One torch network per instance, with the same weights (bias = last column).
    nets = []
    for i in range(instances):
        mods: list[nn.Module] = []
        for k, w in enumerate(weights):
            lin = nn.Linear(w.shape[2] - 1, w.shape[1])
            with torch.no_grad():
                lin.weight.copy_(w[i, :, :-1])
                lin.bias.copy_(w[i, :, -1])
            mods.append(lin)
            if k < len(weights) - 1:
                mods.append(nonlinearity())
        nets.append(nn.Sequential(*mods))
    opts = [torch.optim.SGD(net.parameters(), lr=lr) for net in nets]
    mlp = SoftwareMLP([w.clone() for w in weights], activation)

    for step in range(3):
        x = torch.rand((8, layers[0]), generator=gen)
        y = torch.randint(0, layers[-1], (8,), generator=gen)
        loss = mlp.sgd_step(x, y, lr)
        for i, (net, opt) in enumerate(zip(nets, opts, strict=True)):
            opt.zero_grad()
            ref = nn.functional.cross_entropy(net(x), y)
            ref.backward()
            opt.step()
            assert float(loss[i]) == pytest.approx(float(ref.detach()), abs=1e-5), f"step {step}"
    for i, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for k, lin in enumerate(linears):
            torch.testing.assert_close(mlp.weights[k][i, :, :-1], lin.weight, atol=1e-5, rtol=0)
            torch.testing.assert_close(mlp.weights[k][i, :, -1], lin.bias, atol=1e-5, rtol=0)


def test_software_forward_returns_every_layer_input() -> None:
    gen = torch.Generator().manual_seed(0)
    w = glorot_weights((5, 4, 3), 2, gen, torch.device("cpu"))
    acts = SoftwareMLP(w, Activation.SIGMOID).forward(torch.rand((7, 5), generator=gen))
    assert [tuple(a.shape) for a in acts] == [(2, 7, 5), (2, 7, 4), (2, 7, 3)]
    assert bool(((acts[1] > 0) & (acts[1] < 1)).all())  # hidden layer went through the sigmoid


def test_glorot_weights_shape_bound_and_zero_bias() -> None:
    gen = torch.Generator().manual_seed(0)
    ws = glorot_weights((64, 16, 10), 3, gen, torch.device("cpu"))
    assert [tuple(w.shape) for w in ws] == [(3, 16, 65), (3, 10, 17)]
    for w, (n_in, n_out) in zip(ws, [(64, 16), (16, 10)], strict=True):
        assert float(w[..., :-1].abs().max()) <= math.sqrt(6 / (n_in + n_out))
        assert bool((w[..., -1] == 0).all())
        assert not torch.equal(w[0], w[1])  # every instance draws its own weights


# -- the registry ------------------------------------------------------------------------------


def test_algorithm_registry_names() -> None:
    assert algorithm_names() == [
        "activity-difference",
        "activity-difference-float",
        "analog-sgd",
        "progressive",
        "software",
        "transfer",
    ]
    assert ALGORITHMS["software"] is Software
    assert ALGORITHMS["transfer"] is Transfer
    assert ALGORITHMS["analog-sgd"] is AnalogSGD
    assert not Software.uses_chip and Transfer.uses_chip and AnalogSGD.uses_chip


@pytest.mark.parametrize("name", ["software", "transfer", "analog-sgd"])
def test_make_trainer_builds_each_rule(name: str) -> None:
    trainer = make_trainer(name, ideal_chip(layers=(4, 3)), instances=2, seed=1, lr=0.2)
    assert isinstance(trainer, ALGORITHMS[name])
    assert trainer.name == name
    assert trainer.instances == 2 and trainer.lr == 0.2
    assert trainer.predict(torch.rand((5, 4))).shape == (2, 5, 3)


def test_make_trainer_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        make_trainer("backprop-on-a-potato", ideal_chip())
    message = str(info.value)
    assert "backprop-on-a-potato" in message
    for name in algorithm_names():
        assert name in message
    assert info.value.valid == algorithm_names()


@pytest.mark.parametrize("lr", [0.0, -0.1, math.nan])
def test_trainer_rejects_bad_learning_rate(lr: float) -> None:
    with pytest.raises(ValueError, match="lr"):
        make_trainer("software", ideal_chip(), lr=lr)


# -- analog SGD on the ideal chip tracks float SGD ---------------------------------------------


def test_analog_sgd_programs_the_software_initial_weights(digits: Dataset) -> None:
    cfg = ideal_chip()
    chip = AnalogSGD(cfg, instances=2, seed=5)
    software = Software(cfg, instances=2, seed=5)
    step = cfg.tile.weight_step
    for tile, w in zip(chip.chip.tiles, software.model.weights, strict=True):
        true = inspection.true_weights(tile)
        assert true.shape == w.shape  # (I, out, in+1): the bias is the last column
        # Write-verify stops once every weight is within one weight step of its target.
        assert float((true - w).abs().max()) <= step * (1 + 1e-3)
    counts = chip.log.counts()
    assert counts[Event.PROGRAM_ITERATION] > 0 and counts[Event.PULSE] > 0


@pytest.mark.parametrize("sequential", [False, True])
def test_analog_sgd_on_ideal_chip_tracks_software_sgd(digits: Dataset, sequential: bool) -> None:
    cfg = ideal_chip(sequential=sequential)
    chip = AnalogSGD(cfg, instances=2, seed=0, lr=0.5)
    software = Software(cfg, instances=2, seed=0, lr=0.5)
    x, y = digits.x_train, digits.y_train
    for b in range(0, 200, 10):
        loss_chip = chip.train_batch(x[b : b + 10], y[b : b + 10])
        loss_soft = software.train_batch(x[b : b + 10], y[b : b + 10])
        torch.testing.assert_close(loss_chip, loss_soft, atol=5e-3, rtol=0)
    for tile, w in zip(chip.chip.tiles, software.model.weights, strict=True):
        diff = float((inspection.true_weights(tile) - w).abs().max())
        # Weights are O(0.5); the chip differs only by rounding to whole pulses of 2e-4.
        assert diff < 1e-2


def test_analog_sgd_on_ideal_chip_learns_digits(digits: Dataset) -> None:
    trainer = AnalogSGD(ideal_chip(), instances=2, seed=0, lr=0.5)
    losses = [run_epoch(trainer, digits.x_train, digits.y_train, seed=e) for e in range(3)]
    for before, after in itertools.pairwise(losses):
        assert bool((after < before).all())
    acc = accuracy(trainer, digits.x_test, digits.y_test)
    assert bool((acc > 0.85).all()), acc


def test_analog_sgd_logs_its_hardware_work(digits: Dataset) -> None:
    trainer = AnalogSGD(organic_chip(), instances=2, seed=0)
    before = trainer.log.counts()
    trainer.train_batch(digits.x_train[:10], digits.y_train[:10])
    after = trainer.log.counts()
    for kind in (Event.ARRAY_READ, Event.MAC, Event.UPDATE, Event.PULSE, Event.STORED_VALUE):
        assert after.get(kind, 0.0) > before.get(kind, 0.0), kind
    # Forward reads through both layers plus one transposed read, for 10 samples x 2 chips.
    assert after[Event.ARRAY_READ] - before.get(Event.ARRAY_READ, 0.0) == 3 * 10 * 2


def test_analog_sgd_reduces_loss_on_organic_ecram(digits: Dataset) -> None:
    x, y = digits.x_train[:500], digits.y_train[:500]
    trainer = AnalogSGD(organic_chip(), instances=2, seed=0, lr=0.5)
    initial, _ = softmax_error(trainer.predict(x), y)
    epoch_losses = [run_epoch(trainer, x, y, seed=e) for e in range(2)]
    final, _ = softmax_error(trainer.predict(x), y)
    assert bool((epoch_losses[1] < epoch_losses[0]).all()), epoch_losses
    assert bool((final < initial - 0.3).all()), (initial, final)


# -- transfer ----------------------------------------------------------------------------------


def test_transfer_predicts_in_software_until_finish_then_on_the_chip(digits: Dataset) -> None:
    x, y = digits.x_train[:500], digits.y_train[:500]
    trainer = Transfer(organic_chip(), instances=2, seed=0, lr=0.5)
    for e in range(2):
        run_epoch(trainer, x, y, seed=e)
    # Training happened in software: the chip has done nothing yet.
    assert trainer.log.counts() == {}
    before = trainer.predict(digits.x_test)
    assert torch.equal(before, trainer.software.predict(digits.x_test))
    assert trainer.log.counts() == {}  # software predictions do not touch the chip
    soft_acc = accuracy(trainer, digits.x_test, digits.y_test)

    trainer.finish()
    counts = trainer.log.counts()
    assert counts[Event.PULSE] > 0
    assert counts[Event.PROGRAM_ITERATION] > 0
    assert counts[Event.DEVICE_READ] > 0  # write-verify reads back

    after = trainer.predict(digits.x_test)
    assert trainer.log[Event.ARRAY_READ] > counts.get(Event.ARRAY_READ, 0.0)
    assert not torch.equal(after, trainer.software.predict(digits.x_test))
    chip_acc = accuracy(trainer, digits.x_test, digits.y_test)
    assert bool((soft_acc > 0.6).all()), soft_acc
    assert float((chip_acc - soft_acc).abs().max()) < 0.1, (soft_acc, chip_acc)

    # finish() is idempotent: the chip is programmed once.
    pulses = trainer.log[Event.PULSE]
    trainer.finish()
    assert trainer.log[Event.PULSE] == pulses


# -- determinism and checkpoints ---------------------------------------------------------------


def _trainer(name: str, seed: int) -> Trainer:
    cfg = organic_chip() if name != "software" else ideal_chip()
    return make_trainer(name, cfg, instances=2, seed=seed, lr=0.3)


def _train_batches(trainer: Trainer, ds: Dataset, start: int, stop: int) -> list[Tensor]:
    return [
        trainer.train_batch(ds.x_train[b : b + 10], ds.y_train[b : b + 10])
        for b in range(start * 10, stop * 10, 10)
    ]


def _checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """Round-trip a state through torch.save/torch.load, as a checkpoint file would."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded: dict[str, Any] = torch.load(buf, weights_only=True)
    return loaded


@pytest.mark.parametrize("name", ["software", "transfer", "analog-sgd", "progressive"])
def test_same_seed_gives_bit_identical_training(digits: Dataset, name: str) -> None:
    a, b = _trainer(name, seed=3), _trainer(name, seed=3)
    losses_a = _train_batches(a, digits, 0, 4)
    losses_b = _train_batches(b, digits, 0, 4)
    for la, lb in zip(losses_a, losses_b, strict=True):
        assert torch.equal(la, lb)
    a.finish()
    b.finish()
    assert_same_state(a.state_dict(), b.state_dict())
    assert a.log.counts() == b.log.counts()
    assert torch.equal(a.predict(digits.x_test[:20]), b.predict(digits.x_test[:20]))


@pytest.mark.parametrize("name", ["software", "analog-sgd"])
def test_different_seeds_differ(digits: Dataset, name: str) -> None:
    a, b = _trainer(name, seed=3), _trainer(name, seed=4)
    losses_a = _train_batches(a, digits, 0, 2)
    losses_b = _train_batches(b, digits, 0, 2)
    assert not all(torch.equal(la, lb) for la, lb in zip(losses_a, losses_b, strict=True))
    assert not states_equal(a.state_dict(), b.state_dict())


@pytest.mark.parametrize("name", ["software", "transfer", "analog-sgd", "progressive"])
def test_resume_from_state_dict_is_bit_identical(digits: Dataset, name: str) -> None:
    straight = _trainer(name, seed=11)
    losses = _train_batches(straight, digits, 0, 6)
    straight.finish()

    first = _trainer(name, seed=11)
    resumed_losses = _train_batches(first, digits, 0, 3)
    saved = _checkpoint(first.state_dict())
    _train_batches(first, digits, 3, 5)  # work done after the checkpoint is thrown away
    # A trainer built with another seed: everything that matters must come from the state.
    resumed = _trainer(name, seed=99)
    resumed.load_state_dict(saved)
    resumed_losses += _train_batches(resumed, digits, 3, 6)
    resumed.finish()

    for i, (la, lb) in enumerate(zip(losses, resumed_losses, strict=True)):
        assert torch.equal(la, lb), f"batch {i}"
    assert_same_state(straight.state_dict(), resumed.state_dict())
    assert straight.log.counts() == resumed.log.counts()


def test_state_dict_is_a_snapshot(digits: Dataset) -> None:
    trainer = _trainer("analog-sgd", seed=0)
    saved = trainer.state_dict()
    copy = _checkpoint(saved)
    _train_batches(trainer, digits, 0, 2)
    assert_same_state(saved, copy)  # training later must not mutate a saved state


# -- chip protocol discipline ------------------------------------------------------------------

ALGORITHM_SOURCES = sorted(Path(insitu.algorithms.__file__).parent.glob("*.py"))

# Names that only the simulation's hidden state has (see insitu.hardware.tile / inspection).
# Matched as attribute accesses (``._w``), not substrings, so ``grad_w = ...`` is fine.
HIDDEN_STATE = [
    r"\binspection\b",
    r"\._g\b",
    r"\._arrays\b",
    r"\._w\b",
    r"\._pulses\b",
    r"\._weights\b",
    r"\._gen\b",
    r"\btrue_weights\b",
    r"\bconductances\b",
]


def test_algorithm_sources_found() -> None:
    names = {p.name for p in ALGORITHM_SOURCES}
    assert {"base.py", "software.py", "transfer.py", "analog_sgd.py", "progressive.py"} <= names


def private_accesses(text: str) -> list[str]:
    """Private attributes reached on anything but ``self`` (dunders excepted)."""
    found = []
    for m in re.finditer(r"\.(_[A-Za-z]\w*)", text):
        attr = m.group(1)
        if attr.startswith("__") and attr.endswith("__"):
            continue
        if re.search(r"(?<![\w.\])])self$", text[: m.start()]) is None:
            found.append(attr)
    return found


def hidden_state_names(text: str) -> list[str]:
    return [m.group(0) for p in HIDDEN_STATE for m in re.finditer(p, text)]


@pytest.mark.parametrize("path", ALGORITHM_SOURCES, ids=lambda p: p.name)
def test_algorithms_never_touch_hidden_chip_state(path: Path) -> None:
    text = path.read_text()
    assert hidden_state_names(text) == [], f"{path.name} reaches hidden chip state"
    # self._log is the rule's own; a chip's or tile's private attributes are off limits.
    assert private_accesses(text) == [], f"{path.name} uses private attributes of the chip"


@pytest.mark.parametrize(
    "snippet",
    [
        "w = self.chip.tiles[0]._g[0]",
        "g = tile._arrays",
        "w = chip._w",
        "from insitu.hardware import inspection",
        "w = true_weights(t)",
    ],
)
def test_hidden_state_check_catches_peeking(snippet: str) -> None:
    assert hidden_state_names(snippet)


def test_private_attribute_check_catches_peeking() -> None:
    assert private_accesses("x = self.chip.tiles[0]._secret + chip._x") == ["_secret", "_x"]
    assert private_accesses("self._log = self.chip.log\nsuper().__init__()") == []
    assert hidden_state_names("grad_w = torch.bmm(d, h)") == []  # a name, not chip state
