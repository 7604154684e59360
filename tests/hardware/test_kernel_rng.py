"""The kernels' generator: reproducible streams and normal draws with the normal's shape,
tails included (the ziggurat's rare paths: wedges and the tail beyond the base strip)."""

from __future__ import annotations

import math

import numpy as np
import torch

from insitu.hardware.kernel_rng import (
    ZIG_TAIL,
    ZIG_X,
    new_streams,
    normal_draws,
    skip,
    uniform,
    uniform_at,
)


def _draws(seed: int, n: int) -> np.ndarray:
    return normal_draws(new_streams(torch.Generator().manual_seed(seed), 1), n)


def test_streams_come_from_the_torch_generator() -> None:
    a = new_streams(torch.Generator().manual_seed(3), 4)
    b = new_streams(torch.Generator().manual_seed(3), 4)
    assert a.dtype == np.uint64 and np.array_equal(a, b)
    assert len(set(a.tolist())) == 4
    assert np.array_equal(_draws(1, 1000), _draws(1, 1000))
    assert not np.array_equal(_draws(1, 1000), _draws(2, 1000))


def test_layers_cover_the_density_down_to_zero() -> None:
    # Every layer has the same area; the last one ends at x = 0.
    assert len(ZIG_X) == 257 and ZIG_X[-1] == 0.0
    assert np.all(np.diff(ZIG_X) < 0)
    area = ZIG_X[1:-1] * (np.exp(-0.5 * ZIG_X[2:] ** 2) - np.exp(-0.5 * ZIG_X[1:-1] ** 2))
    np.testing.assert_allclose(area, area[0], rtol=1e-9)


def test_normal_draws_have_the_standard_normals_moments_and_tails() -> None:
    z = _draws(0, 2_000_000)
    n = len(z)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    kurtosis = (z**4).mean() / z.var() ** 2 - 3
    assert abs(kurtosis) < 5 * math.sqrt(24 / n)
    assert abs((z > 0).mean() - 0.5) < 5 * math.sqrt(0.25 / n)
    for edge in (1.0, 2.0, 3.0, ZIG_TAIL, 4.0):  # a two-sided tail beyond `edge`
        p = math.erfc(edge / math.sqrt(2))
        seen = (np.abs(z) > edge).mean()
        assert abs(seen - p) < 5 * math.sqrt(p * (1 - p) / n) + 1e-7, edge
    assert np.abs(z).max() > ZIG_TAIL  # the tail is drawn, not cut at the base strip


def test_draws_by_position_are_the_streams_draws_in_order() -> None:
    # uniform_at(z, k) is the k-th draw of uniform from z, and skip(z, n) the state after n.
    z0 = new_streams(torch.Generator().manual_seed(5), 1)[0]
    z = z0
    for k in range(1, 50):
        u, state = uniform(z)
        z = np.uint64(state)  # numba hands back a Python int; the kernels' state is uint64
        assert uniform_at(z0, k) == u
        assert skip(z0, k) == z
