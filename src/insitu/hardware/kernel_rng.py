"""Random numbers inside the compiled kernels: small independent streams, cheap normal draws.

Each stream is one 64-bit word advanced by splitmix64 (Steele, Lea & Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014): a Weyl increment and a 64-bit finaliser, no
other state, so a stream can be saved in a checkpoint as one integer. Streams are seeded from a
torch generator, so runs stay reproducible from the run seed.

Normal draws use the ziggurat method (Marsaglia & Tsang, "The ziggurat method for generating
random variables", J. Stat. Softw. 5(8), 2000) with 256 layers, arranged as in Doornik, "An
improved ziggurat method to generate normal random samples" (2005): about 99 % of draws cost one
64-bit word, a table lookup and a comparison. The pulsed update draws one normal per pulsed
device; Marsaglia's polar method, used before, took a quarter of the update's time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U11 = np.uint64(11)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_LAYER_MASK = np.uint64(255)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer edges ``x`` (257,), the density at them ``f``, and the edge ratios
    ``x[i+1] / x[i]`` under which a point is inside the curve for sure."""
    layers, r, area = 256, 3.6541528853610088, 0.00492867323399  # Marsaglia & Tsang, n = 256
    x = np.zeros(layers + 1)
    x[0] = area / math.exp(-0.5 * r * r)  # the base strip, widened to hold the tail's area
    x[1] = r
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(area / x[i] + math.exp(-0.5 * x[i] * x[i])))
    f = np.exp(-0.5 * x * x)
    return x, f, x[1:] / x[:-1]


ZIG_X, ZIG_F, ZIG_R = _ziggurat_tables()
ZIG_TAIL = float(ZIG_X[1])


def new_streams(gen: torch.Generator, n: int) -> np.ndarray:
    """``n`` stream states (uint64) seeded from a torch generator."""
    draw = torch.randint(0, 2**62, (n,), generator=gen, device=gen.device, dtype=torch.int64)
    return draw.cpu().numpy().view(np.uint64).copy()


@njit(inline="always")
def next_word(z: Any) -> tuple[Any, Any]:
    """The next 64 random bits of a stream whose state word is ``z``, and the new state.

    A kernel loads its stream's word into a local variable, draws with it and stores it back
    at the end: kept in a register, the draws of a loop overlap, where a state read from and
    written to memory at every draw chained them (normal draws took twice as long)."""
    z = z + _GOLDEN
    w = (z ^ (z >> _U30)) * _MIX1
    w = (w ^ (w >> _U27)) * _MIX2
    return w ^ (w >> _U31), z


@njit(inline="always")
def uniform(z: Any) -> tuple[float, Any]:
    """A uniform draw in [0, 1) with 53 random bits, and the new state."""
    w, z = next_word(z)
    return float(w >> _U11) * _INV53, z


@njit(inline="always")
def skip(z: Any, n: int) -> Any:
    """The state of a stream ``n`` words after state ``z`` (splitmix64's state is a counter)."""
    return z + np.uint64(n) * _GOLDEN


@njit(inline="always")
def uniform_at(z: Any, k: int) -> float:
    """The uniform draw that the ``k``-th call of :func:`uniform` from state ``z`` makes
    (``k`` >= 1), without the calls before it: a loop that draws this way has no chain from one
    draw to the next, and ends with ``z = skip(z, n)`` after ``n`` draws."""
    u, _ = uniform(skip(z, k - 1))
    return u


@njit
def _outside_box(z: Any, i: int, x: float) -> tuple[float, Any]:
    """The rare cases of :func:`normal`, a point ``x`` outside layer ``i``'s inner box: in the
    base strip (``i`` = 0) a draw from the tail beyond it; in a wedge ``x`` itself if it falls
    under the curve, else NaN (draw again)."""
    if i == 0:  # the tail beyond r, by Marsaglia's exponential rejection
        while True:
            u, z = uniform(z)
            t = -math.log(1.0 - u) / ZIG_TAIL
            u, z = uniform(z)
            y = -math.log(1.0 - u)
            if 2.0 * y > t * t:
                return (ZIG_TAIL + t if x > 0.0 else -ZIG_TAIL - t), z
    f0, f1 = ZIG_F[i], ZIG_F[i + 1]
    u, z = uniform(z)
    if f0 + u * (f1 - f0) < math.exp(-0.5 * x * x):
        return x, z
    return math.nan, z


@njit(inline="always")
def _point(z: Any) -> tuple[int, float, float, Any]:
    """A point of the ziggurat: the low 8 bits of one word pick a layer ``i``, the top 53 a
    signed position ``u`` in (-1, 1) (independent bits); ``x`` = ``u`` times the layer's
    width."""
    w, z = next_word(z)
    i = int(w & _LAYER_MASK)
    u = 2.0 * (float(w >> _U11) * _INV53) - 1.0
    return i, u, u * ZIG_X[i], z


@njit
def _redraw(z: Any, i: int, x: float) -> tuple[float, Any]:
    """:func:`normal` after its first point fell outside its layer's inner box."""
    while True:
        x, z = _outside_box(z, i, x)
        if not math.isnan(x):
            return x, z
        i, u, x, z = _point(z)
        if abs(u) < ZIG_R[i]:
            return x, z


@njit(inline="always")
def normal(z: Any) -> tuple[float, Any]:
    """A standard normal draw and the new state: about 99 % of points fall inside their
    layer's inner box and are taken at once."""
    i, u, x, z = _point(z)
    if abs(u) < ZIG_R[i]:
        return x, z
    x, z = _redraw(z, i, x)
    return x, z


@njit(cache=True)
def normal_draws(state: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws of :func:`normal` from stream 0 of ``state`` (to test the generator)."""
    out = np.empty(n)
    z = state[0]
    for j in range(n):
        out[j], z = normal(z)
    state[0] = z
    return out
