"""NIR export and import: round trip, a foreign graph fine-tuned in the loop, malformed graphs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch
from torch import Tensor

from insitu.algorithms import make_spiking_trainer
from insitu.errors import ConfigError
from insitu.hardware import inspection
from insitu.hardware.spiking import (
    IDEAL_NEURON,
    WEIGHT_LIMIT,
    NeuronParams,
    SpikingChip,
    SpikingChipConfig,
)
from insitu.interop.nir import (
    ChipNetwork,
    export_nir,
    import_nir,
    load_nir,
    save_nir,
    simulated_calibration,
)


def _spikes(batch: int, steps: int, inputs: int, seed: int, rate: float = 0.3) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((batch, steps, inputs), generator=gen) < rate).to(torch.float32)


def _trained(neuron: NeuronParams, recurrent: bool = True) -> Any:
    cfg = SpikingChipConfig.from_sizes(
        (6, 10, 3), recurrent=recurrent, neuron=neuron, time_steps=20
    )
    trainer = make_spiking_trainer("in-the-loop", cfg, seed=3, options={"init_scale": 4.0})
    x, y = _spikes(8, 20, 6, seed=1), torch.arange(8) % 3
    for _ in range(2):
        trainer.train_batch(x, y)
    return trainer


def _run(net: ChipNetwork, x: Tensor, seed: int) -> Any:
    chip = SpikingChip(net.config, seed=seed)
    net.write_to(chip)
    return chip.run(x)


# -- round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize("neuron", [IDEAL_NEURON, NeuronParams()], ids=["ideal", "default"])
def test_round_trip_keeps_config_and_integer_weights(neuron: NeuronParams, tmp_path: Path) -> None:
    trainer = _trained(neuron)
    before = ChipNetwork.from_trainer(trainer)
    graph = export_nir(trainer)
    path = tmp_path / "net.nir"
    save_nir(graph, path)
    for g in (graph, load_nir(path)):
        got = import_nir(g)
        assert got.network.config == trainer.config
        for a, b in zip(got.network.weights, before.weights, strict=True):
            assert a.dtype == torch.int8 and torch.equal(a, b)
        assert torch.equal(got.network.recurrent[0], before.recurrent[0])  # type: ignore[arg-type]
        assert got.network.recurrent[1] is None
        for lay in got.layers:
            assert lay.gain_from == "metadata" and lay.weight_error < 1e-12
        assert got.speedup == pytest.approx(1.0)


def test_export_writes_weights_as_written_in_nir_units() -> None:
    trainer = _trained(NeuronParams())
    graph = export_nir(trainer)
    gain = trainer.config.neuron.synapse_gain
    dt = trainer.config.neuron.dt_seconds
    w0 = trainer.model.integer_weights(0)[0].double().numpy()
    assert np.array_equal(graph.nodes["linear_0"].weight, w0 * gain)
    assert np.abs(graph.nodes["linear_0"].weight).max() <= WEIGHT_LIMIT * gain
    lif, li = graph.nodes["cubalif_0"], graph.nodes["cubali_1"]
    assert isinstance(lif, nir.CubaLIF) and isinstance(li, nir.CubaLI)
    assert np.allclose(lif.tau_mem, 3.5 * dt) and np.allclose(lif.tau_syn, 3.5 * dt)
    assert np.allclose(lif.v_threshold, 1.0) and np.allclose(lif.v_leak, 0.0)
    # The input factor (dt/tau_mem) r (dt/tau_syn) w_in is 1: weights are volts per spike.
    factor = (dt / lif.tau_mem) * lif.r * (dt / lif.tau_syn) * lif.w_in
    assert np.allclose(factor, 1.0)
    assert ("cubalif_0", "recurrent_0") in graph.edges and (
        "recurrent_0",
        "cubalif_0",
    ) in graph.edges
    assert graph.metadata["dt"] == dt


def test_round_trip_runs_the_same_on_an_ideal_chip(tmp_path: Path) -> None:
    trainer = _trained(IDEAL_NEURON)
    save_nir(export_nir(trainer), tmp_path / "net.nir")
    imported = import_nir(load_nir(tmp_path / "net.nir")).network
    x = _spikes(5, 20, 6, seed=7)
    a = _run(ChipNetwork.from_trainer(trainer), x, seed=11)
    b = _run(imported, x, seed=12)  # another chip: ideal neurons, so no draw matters
    assert a.spikes[0].sum() > 0, "the hidden layer must spike for the test to mean something"
    for sa, sb in zip(a.spikes, b.spikes, strict=True):
        assert torch.equal(sa, sb)
    for va, vb in zip(a.membrane, b.membrane, strict=True):
        assert torch.equal(va, vb)
    # ...and the trainer built from the import predicts what the original does.
    again = import_nir(load_nir(tmp_path / "net.nir")).trainer("deploy", seed=5)
    assert torch.equal(again.predict(x), trainer.predict(x))


def test_measured_export_is_per_neuron_from_the_calibration() -> None:
    trainer = _trained(NeuronParams())
    with pytest.raises(ConfigError, match="needs measured="):
        export_nir(trainer, neurons="measured")
    graph = export_nir(trainer, neurons="measured", measured=simulated_calibration(trainer.chip))
    truth = inspection.neuron_parameters(trainer.chip)[0]
    dt = trainer.config.neuron.dt_seconds
    lif = graph.nodes["cubalif_0"]
    assert np.allclose(lif.tau_mem, truth.tau_m[0].double().numpy() * dt)
    assert np.allclose(lif.v_threshold, truth.threshold[0].double().numpy())
    assert np.ptp(lif.tau_mem) > 0  # per neuron, not the nominal value
    assert graph.metadata["neurons"] == "measured"
    # Imported back: the layer's mean, the spread reported, the relative gains in the weights.
    got = import_nir(graph)
    p = got.network.config.neuron_params(0)
    assert p.tau_m == pytest.approx(float(truth.tau_m[0].mean()), rel=1e-6)
    assert got.layers[0].spread["tau_m"] > 0
    assert 0 < got.layers[0].weight_error < 0.1 and got.layers[0].max_error_steps <= 0.5
    assert "averaged" in got.summary()


def test_dead_neurons_are_measured_as_never_firing() -> None:
    trainer = _trained(NeuronParams(dead_fraction=0.3))
    graph = export_nir(trainer, neurons="measured", measured=simulated_calibration(trainer.chip))
    dead = int((~inspection.neuron_parameters(trainer.chip)[0].alive).sum())
    assert dead > 0
    assert int(np.isinf(graph.nodes["cubalif_0"].v_threshold).sum()) == dead
    got = import_nir(graph)
    assert got.layers[0].never_firing == dead
    assert math.isfinite(got.network.config.neuron_params(0).threshold)


# -- a graph from another library -------------------------------------------------------------

DT = 1e-3  # the exporting library's step (Norse's default)


def _foreign(inputs: int = 8, hidden: int = 16, classes: int = 2, seed: int = 0) -> Any:
    """Input -> Affine -> CubaLIF -> Affine -> CubaLI -> Output as snnTorch/Norse write it:
    float weights, time constants in seconds, r = tau_mem/dt and w_in = tau_syn/dt."""
    rng = np.random.default_rng(seed)
    tau_syn, tau_mem = np.full(hidden, 4e-3), np.full(hidden, 8e-3)
    out_syn, out_mem = np.full(classes, 4e-3), np.full(classes, 8e-3)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([inputs])}),
        "fc1": nir.Affine(weight=rng.normal(0, 0.3, (hidden, inputs)), bias=np.zeros(hidden)),
        "lif1": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_mem / DT,
            v_leak=np.zeros(hidden),
            v_threshold=np.ones(hidden),
            v_reset=np.zeros(hidden),
            w_in=tau_syn / DT,
        ),
        "fc2": nir.Affine(weight=rng.normal(0, 0.1, (classes, hidden)), bias=np.zeros(classes)),
        "li2": nir.CubaLI(
            tau_syn=out_syn,
            tau_mem=out_mem,
            r=out_mem / DT,
            v_leak=np.zeros(classes),
            w_in=out_syn / DT,
        ),
        "output": nir.Output(output_type={"output": np.array([classes])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "li2"), ("li2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _task(batch: int, steps: int, inputs: int, seed: int) -> tuple[Tensor, Tensor]:
    """Class 0 fires on the first half of the inputs, class 1 on the second half."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(batch) % 2
    rate = torch.full((batch, 1, inputs), 0.05)
    half = inputs // 2
    rate[y == 0, :, :half] = 0.5
    rate[y == 1, :, half:] = 0.5
    x = (torch.rand((batch, steps, inputs), generator=gen) < rate).to(torch.float32)
    return x, y


def test_foreign_graph_imports_runs_and_fine_tunes_in_the_loop(tmp_path: Path) -> None:
    graph = _foreign()
    with pytest.raises(ConfigError, match="dt="):
        import_nir(graph)
    nir.write(tmp_path / "foreign.nir", graph)  # as the other library would hand it over
    got = import_nir(load_nir(tmp_path / "foreign.nir"), dt=DT, time_steps=25)
    cfg = got.network.config
    assert cfg.sizes == (8, 16, 2) and not cfg.layers[1].spiking
    p = cfg.neuron_params(0)
    assert p.tau_m == pytest.approx(8.0) and p.tau_s == pytest.approx(4.0)
    assert got.speedup == pytest.approx(DT / p.dt_seconds)
    # The largest weight of each layer fills the 6-bit range; rounding costs at most half a step.
    for k, lay in enumerate(got.layers):
        assert lay.gain_from == "fit"
        assert int(got.network.weights[k].abs().max()) == WEIGHT_LIMIT
        assert lay.max_error_steps <= 0.5 + 1e-9 and lay.weight_error < 0.05
    w1 = graph.nodes["fc1"].weight
    assert np.allclose(
        got.network.weights[0].double().numpy() * got.layers[0].synapse_gain,
        w1,
        atol=0.5 * got.layers[0].synapse_gain + 1e-12,
    )

    x, y = _task(32, 25, 8, seed=1)
    rec = _run(got.network, x, seed=4)
    assert rec.spikes[0].shape == (1, 32, 25, 16) and rec.readout.shape == (1, 32, 25, 2)
    assert rec.spikes[0].sum() > 0

    trainer = got.trainer("in-the-loop", seed=2, options={"lr": 0.02})
    assert torch.equal(trainer.model.integer_weights(0)[0], got.network.weights[0])
    losses = [float(trainer.train_batch(x, y).mean()) for _ in range(25)]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.05, losses


def test_foreign_recurrent_layer_as_a_subgraph_imports_with_its_self_loop() -> None:
    """A recurrent layer as snnTorch writes one: a subgraph Input -> CubaLIF <-> Linear ->
    Output inside the main graph."""
    flat = _foreign()
    lif = flat.nodes["lif1"]
    rng = np.random.default_rng(5)
    w_rec = rng.normal(0, 0.05, (16, 16))
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([16])}),
            "lif": lif,
            "w_rec": nir.Linear(weight=w_rec),
            "output": nir.Output(output_type={"output": np.array([16])}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    nodes = dict(flat.nodes) | {"rlif1": sub}
    del nodes["lif1"]
    edges = [
        ("input", "fc1"),
        ("fc1", "rlif1"),
        ("rlif1", "fc2"),
        ("fc2", "li2"),
        ("li2", "output"),
    ]
    got = import_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=DT)
    assert got.layers[0].nodes == ("fc1", "rlif1.lif", "rlif1.w_rec")
    assert got.network.config.layers[0].recurrent
    rec = got.network.recurrent[0]
    assert rec is not None and rec.shape == (16, 16)
    x, _ = _task(4, 30, 8, seed=2)
    assert _run(got.network, x, seed=1).spikes[0].shape == (1, 4, 30, 16)


def test_lif_and_li_nodes_have_an_instant_synapse() -> None:
    n = 4
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "w1": nir.Linear(weight=np.full((n, 3), 0.5)),
        "lif": nir.LIF(
            tau=np.full(n, 5e-3), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n)
        ),
        "w2": nir.Linear(weight=np.full((2, n), 0.5)),
        "li": nir.LI(tau=np.full(2, 5e-3), r=np.full(2, 5.0), v_leak=np.zeros(2)),
        "out": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("in", "w1"), ("w1", "lif"), ("lif", "w2"), ("w2", "li"), ("li", "out")]
    got = import_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=1e-3)
    p = got.network.config.neuron_params(0)
    assert p.tau_m == pytest.approx(5.0) and math.exp(-1.0 / p.tau_s) == 0.0
    # c = (dt/tau) r = 1: 0.5 V per spike, the largest weight, maps to 63 steps.
    assert got.layers[0].synapse_gain == pytest.approx(0.5 / WEIGHT_LIMIT)


# -- what the chip cannot take ----------------------------------------------------------------


def _edit(**changes: Any) -> Any:
    graph = _foreign()
    nodes, edges = dict(graph.nodes), list(graph.edges)
    for name, node in changes.items():
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_malformed_graphs_name_the_node() -> None:
    cases: list[tuple[Any, str]] = []
    # An unsupported node type in the chain.
    g = _foreign()
    nodes = dict(g.nodes) | {"delay": nir.Delay(delay=np.ones(16))}
    edges = [e for e in g.edges if e != ("lif1", "fc2")] + [("lif1", "delay"), ("delay", "fc2")]
    cases.append((nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), "'delay' \\(Delay\\)"))
    # A bias the synapses cannot add.
    cases.append((_edit(fc1=nir.Affine(weight=np.ones((16, 8)), bias=np.ones(16))), "'fc1'.*bias"))
    # A readout in the middle.
    g = _foreign()
    li = nir.CubaLI(tau_syn=np.ones(16), tau_mem=np.ones(16), r=np.ones(16), v_leak=np.zeros(16))
    cases.append((_edit(lif1=li), "'lif1' \\(CubaLI\\).*not the last layer"))
    # Two weight nodes in a row.
    g = _foreign()
    nodes = dict(g.nodes) | {"fc0": nir.Linear(weight=np.ones((8, 8)))}
    edges = [("input", "fc0"), ("fc0", "fc1"), *g.edges[1:]]
    cases.append((nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), "'fc1' \\(Affine\\)"))
    # A branch: the hidden layer feeds two nodes.
    g = _foreign()
    nodes = dict(g.nodes) | {"side": nir.Linear(weight=np.ones((2, 16)))}
    edges = [*g.edges, ("lif1", "side")]
    cases.append((nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), "'lif1'.*feeds 2"))
    # Non-positive time constant.
    bad = nir.CubaLIF(
        tau_syn=np.zeros(16),
        tau_mem=np.ones(16),
        r=np.ones(16),
        v_leak=np.zeros(16),
        v_threshold=np.ones(16),
    )
    cases.append((_edit(lif1=bad), "'lif1'.*tau_syn"))
    # A threshold below the leak.
    low = nir.CubaLIF(
        tau_syn=np.ones(16),
        tau_mem=np.ones(16),
        r=np.ones(16),
        v_leak=np.zeros(16),
        v_threshold=np.full(16, -1.0),
    )
    cases.append((_edit(lif1=low), "'lif1'.*invalid chip neuron"))
    # Weights of the wrong width.
    cases.append((_edit(fc2=nir.Linear(weight=np.ones((2, 5)))), "'fc2'.*shape"))
    for graph, pattern in cases:
        with pytest.raises(ConfigError, match=pattern) as info:
            import_nir(graph, dt=DT)
        assert "\n" not in str(info.value)
        assert "supported: a chain Input" in str(info.value)


def test_a_missing_file_is_a_data_error(tmp_path: Path) -> None:
    from insitu.errors import DataError

    with pytest.raises(DataError, match="cannot read a NIR graph"):
        load_nir(tmp_path / "none.nir")


# -- chip protocol discipline ---------------------------------------------------------------


def test_only_the_named_calibration_stand_in_reads_hidden_chip_state() -> None:
    import re

    import insitu.interop

    root = Path(insitu.interop.__file__).parent
    for path in sorted(root.glob("*.py")):
        text = path.read_text()
        assert re.findall(r"(?<!\bself)\.(_[a-z]\w*)\b", text) == [], path.name
        uses = [m.start() for m in re.finditer(r"\binspection\.", text)]
        if path.name != "chip_network.py":
            assert uses == [], path.name
            continue
        start = text.index("def simulated_calibration(")
        end = text.find("\ndef ", start + 1)
        assert uses and all(start < u < (end if end > 0 else len(text)) for u in uses)
