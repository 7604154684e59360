"""The pure LIF step: its physics on small cases, and its surrogate-friendly spike form."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from insitu.hardware.lif import LIFParams, lif_initial_state, lif_step

NOMINAL = LIFParams(
    decay_m=math.exp(-1 / 3.5), decay_s=math.exp(-1 / 3.5), leak=0.0, threshold=1.0, reset=0.0
)


def test_input_moves_the_membrane_one_step_later() -> None:
    state = lif_initial_state(NOMINAL, (1, 1))
    _, v0, state = lif_step(torch.tensor([[0.5]]), state, NOMINAL)
    assert v0.item() == 0.0
    _, v1, state = lif_step(torch.zeros(1, 1), state, NOMINAL)
    assert v1.item() == 0.5
    _, v2, _ = lif_step(torch.zeros(1, 1), state, NOMINAL)
    # the membrane decays and the current keeps flowing in, decayed once
    assert math.isclose(v2.item(), 0.5 * NOMINAL.decay_m + 0.5 * NOMINAL.decay_s, rel_tol=1e-6)


def test_spike_resets_and_refractory_holds() -> None:
    p = NOMINAL._replace(refractory_steps=2)
    state = lif_initial_state(p, (1,))
    state = state._replace(membrane=torch.tensor([2.0]))
    z, v, state = lif_step(torch.zeros(1), state, p)
    assert z.item() == 1.0 and v.item() >= 1.0
    assert state.membrane.item() == 0.0 and state.refractory.item() == 2
    # held for two steps even with a large current arriving
    state = state._replace(current=torch.tensor([5.0]))
    for left in (1, 0):
        z, v, state = lif_step(torch.zeros(1), state, p)
        assert z.item() == 0.0 and v.item() == 0.0 and state.refractory.item() == left
    z, _, _ = lif_step(torch.zeros(1), state, p)
    assert z.item() == 1.0


def test_dead_neurons_never_spike() -> None:
    p = NOMINAL._replace(alive=torch.tensor([True, False]))
    state = lif_initial_state(p, (2,))._replace(membrane=torch.tensor([3.0, 3.0]))
    z, _, _ = lif_step(torch.zeros(2), state, p)
    assert z.tolist() == [1.0, 0.0]


def test_non_spiking_integrates_without_reset() -> None:
    p = NOMINAL._replace(spiking=False)
    state = lif_initial_state(p, (1,))._replace(membrane=torch.tensor([3.0]))
    z, v, state = lif_step(torch.zeros(1), state, p)
    assert z.item() == 0.0 and state.membrane.item() == v.item() > 1.0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-0.5, 1.5), min_size=8, max_size=8),
    st.integers(0, 2),
    st.booleans(),
)
def test_surrogate_form_gives_the_same_forward(
    currents: list[float], refractory: int, dead: bool
) -> None:
    """The differentiable spike form (a heaviside with a surrogate gradient) changes no value."""
    alive = torch.tensor([True, not dead])
    p = NOMINAL._replace(refractory_steps=refractory, alive=alive)

    def heaviside_with_gradient(x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(x)
        return (x >= 0).to(x.dtype) + (sig - sig.detach())

    plain = lif_initial_state(p, (2,))
    smooth = lif_initial_state(p, (2,))
    for c in currents:
        drive = torch.tensor([c, c])
        z0, v0, plain = lif_step(drive, plain, p)
        z1, v1, smooth = lif_step(drive, smooth, p, spike_fn=heaviside_with_gradient)
        assert torch.equal(z0, z1) and torch.equal(v0, v1)
        assert torch.equal(plain.membrane, smooth.membrane)
        assert (z0 <= 1).all() and (z0 >= 0).all()
