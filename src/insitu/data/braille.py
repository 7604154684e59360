"""The Braille reconstruction task: restore distorted Braille names to their clean patterns.

After Yi, Kendall, Williams, Kumar (2022), "Activity-difference training of deep neural
networks using memristor crossbars", Nature Electronics: distorted Braille renderings
of the names of nine famous computer scientists are restored to the clean patterns by networks
trained in situ on 64x64 memristor crossbars. This module generates the task; nothing is read
from files.

Choices:

* **Alphabet.** Six-dot grade-1 (uncontracted) Braille letters ``a``-``z``. Dots are numbered
  1-2-3 down the left column and 4-5-6 down the right column, so a cell is a 3 x 2 picture.
  ``a``-``j`` use only dots 1, 2, 4 and 5; ``k``-``t`` are ``a``-``j`` plus dot 3; ``u``, ``v``,
  ``x``, ``y``, ``z`` are ``a``-``e`` plus dots 3 and 6; ``w`` (added to French Braille later)
  is dots 2-4-5-6. The 26 cells are distinct and none is blank.
* **Pattern.** A name is written as its letters' cells left to right, padded with blank cells to
  :data:`CELLS` = 10 cells: a picture of shape :data:`IMAGE_SHAPE` = (3, 20) (3 dot rows,
  10 cells x 2 dot columns), flattened row-major into :data:`PATTERN_BITS` = 60 bits. So
  ``pattern.reshape(3, 20)`` is the picture of the word, and the dot ``d`` of cell ``c`` is bit
  ``row * 20 + 2 * c + col`` with ``(row, col)`` = (0, 0), (1, 0), (2, 0), (0, 1), (1, 1),
  (2, 1) for ``d`` = 1..6. 60 inputs plus a bias row fit a 64-row crossbar.
* **Names.** Nine famous computer scientists whose patterns are far apart, so that the task is
  about restoring dots and not about telling near-twins apart. A first list (TURING, HOPPER,
  LOVELACE, KNUTH, DIJKSTRA, SHANNON, BABBAGE, LAMPORT, LISKOV) was poorly separated: HOPPER and
  LAMPORT differ in only 10 of 60 bits. A search over nine-name subsets of 34 well-known names
  gave :data:`NAMES` = TURING, LOVELACE, SHANNON, VONNEUMANN, ZUSE, HAMMING, MINSKY, RITCHIE,
  TORVALDS: the **minimum pairwise Hamming distance is 16 bits** (TURING-MINSKY,
  LOVELACE-ZUSE, SHANNON-HAMMING), the mean 21.3, the maximum 31 (TURING-VONNEUMANN). See
  :data:`MIN_HAMMING_DISTANCE`. With 20 % of the bits flipped, the best possible decoder
  (nearest clean pattern) restores 99.0 % of inputs (98.2 % for the hardest name), so a
  network can reach the 95 % bar only by nearly optimal restoration.
* **Distortion** (:func:`distort`): independent bit flips, optionally
  Gaussian analog noise clipped to [0, 1], and occlusion of whole cells (set to 0).
* **Task.** A :class:`~insitu.data.Dataset` whose labels name the scientist and whose
  ``targets`` are the clean patterns: a network maps a distorted 60-bit pattern to the clean
  60-bit pattern of its class. :func:`exact_reconstruction` scores a sample as right when every
  dot is right.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch

from insitu.data.datasets import Dataset
from insitu.errors import ConfigError, check_count, check_range

__all__ = [
    "CELLS",
    "IMAGE_SHAPE",
    "LETTER_DOTS",
    "MIN_HAMMING_DISTANCE",
    "NAMES",
    "PATTERN_BITS",
    "clean_patterns",
    "distort",
    "exact_reconstruction",
    "make_braille",
    "name_pattern",
]

#: Cells per name pattern; shorter names are padded with blank cells.
CELLS = 10
#: Bits per name pattern: 6 dots per cell.
PATTERN_BITS = 6 * CELLS
#: The picture of a pattern: 3 dot rows by 2 dot columns per cell.
IMAGE_SHAPE: tuple[int, int] = (3, 2 * CELLS)

#: The nine names, one class each, in label order (see the module docstring for the choice).
NAMES: tuple[str, ...] = (
    "TURING",
    "LOVELACE",
    "SHANNON",
    "VONNEUMANN",
    "ZUSE",
    "HAMMING",
    "MINSKY",
    "RITCHIE",
    "TORVALDS",
)
#: The smallest number of bits in which two of the nine clean patterns differ.
MIN_HAMMING_DISTANCE = 16

#: Grade-1 Braille: the raised dots (numbered 1-3 down the left column, 4-6 down the right)
#: of each lower-case letter.
LETTER_DOTS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "a": (1,),
        "b": (1, 2),
        "c": (1, 4),
        "d": (1, 4, 5),
        "e": (1, 5),
        "f": (1, 2, 4),
        "g": (1, 2, 4, 5),
        "h": (1, 2, 5),
        "i": (2, 4),
        "j": (2, 4, 5),
        "k": (1, 3),
        "l": (1, 2, 3),
        "m": (1, 3, 4),
        "n": (1, 3, 4, 5),
        "o": (1, 3, 5),
        "p": (1, 2, 3, 4),
        "q": (1, 2, 3, 4, 5),
        "r": (1, 2, 3, 5),
        "s": (2, 3, 4),
        "t": (2, 3, 4, 5),
        "u": (1, 3, 6),
        "v": (1, 2, 3, 6),
        "w": (2, 4, 5, 6),
        "x": (1, 3, 4, 6),
        "y": (1, 3, 4, 5, 6),
        "z": (1, 3, 5, 6),
    }
)

# (row, column) of dots 1..6 inside a cell.
_DOT_POSITION = {1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (0, 1), 5: (1, 1), 6: (2, 1)}


def name_pattern(name: str) -> torch.Tensor:
    """The 60-bit pattern of ``name``: float32 of shape (60,) holding 0 and 1.

    Letters are case-insensitive. ``pattern.reshape(3, 20)`` is the picture of the word.

    Raises:
        ConfigError: an empty name, a character that is not a letter a-z, or more than
            :data:`CELLS` letters.
    """
    if not name:
        raise ConfigError("a Braille name needs at least one letter, got ''")
    if len(name) > CELLS:
        raise ConfigError(
            f"Braille name {name!r} has {len(name)} letters; at most {CELLS} fit a pattern"
        )
    image = torch.zeros(3, CELLS, 2)
    for cell, char in enumerate(name):
        dots = LETTER_DOTS.get(char.lower())
        if dots is None:
            raise ConfigError(
                f"Braille name {name!r}: unsupported character {char!r}; only the letters a-z "
                "(either case) are supported"
            )
        for dot in dots:
            row, col = _DOT_POSITION[dot]
            image[row, cell, col] = 1.0
    return image.reshape(PATTERN_BITS)


def clean_patterns() -> torch.Tensor:
    """The clean patterns of :data:`NAMES`: float32 of shape (9, 60), row ``i`` is class ``i``."""
    return torch.stack([name_pattern(name) for name in NAMES])


def distort(
    patterns: torch.Tensor,
    *,
    flip_rate: float = 0.0,
    noise_std: float = 0.0,
    occluded_cells: int = 0,
    generator: torch.Generator,
) -> torch.Tensor:
    """Distorted copies of ``patterns`` (shape (N, 60)), as a new float32 tensor.

    In order: each bit flips (``x -> 1 - x``) independently with probability ``flip_rate``;
    Gaussian noise of standard deviation ``noise_std`` is added and the result clipped to
    [0, 1]; then ``occluded_cells`` distinct cells (6 bits each), chosen at random for each
    sample, are set to 0. A step whose parameter is zero draws nothing from ``generator``,
    which must live on the device of ``patterns``.

    Raises:
        ConfigError: ``patterns`` not of shape (N, 60), or a parameter out of range
            (``flip_rate`` in [0, 0.5], ``noise_std`` >= 0, ``occluded_cells`` in [0, 10]).
    """
    if patterns.ndim != 2 or patterns.shape[1] != PATTERN_BITS:
        raise ConfigError(
            f"patterns must have shape (N, {PATTERN_BITS}), got {tuple(patterns.shape)}"
        )
    check_range("flip_rate", flip_rate, low=0.0, high=0.5)
    check_range("noise_std", noise_std, low=0.0)
    check_count("occluded_cells", occluded_cells, 0, CELLS)

    out = patterns.to(torch.float32, copy=True)
    n, device = out.shape[0], out.device
    if flip_rate > 0:
        flips = torch.rand(out.shape, generator=generator, device=device) < flip_rate
        out = torch.where(flips, 1.0 - out, out)
    if noise_std > 0:
        noise = torch.randn(out.shape, generator=generator, device=device)
        out = (out + noise_std * noise).clamp_(0.0, 1.0)
    if occluded_cells > 0:
        # A random permutation of the cells per sample; its first k entries are occluded.
        order = torch.rand(n, CELLS, generator=generator, device=device).argsort(dim=1)
        hidden = torch.zeros(n, CELLS, dtype=torch.bool, device=device)
        hidden.scatter_(1, order[:, :occluded_cells], True)
        # Bit row*20 + 2*cell + col belongs to cell `cell`: view the bits as (N, 3, 10, 2).
        mask = hidden[:, None, :, None].expand(n, 3, CELLS, 2).reshape(n, PATTERN_BITS)
        out = out.masked_fill(mask, 0.0)
    return out


def _split(
    per_class: int, flip_rate: float, noise_std: float, occluded_cells: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(NAMES)).repeat_interleave(per_class)
    x = distort(
        clean_patterns()[labels],
        flip_rate=flip_rate,
        noise_std=noise_std,
        occluded_cells=occluded_cells,
        generator=generator,
    )
    order = torch.randperm(len(labels), generator=generator)
    return x[order].contiguous(), labels[order].contiguous()


def make_braille(
    *,
    train_per_class: int = 200,
    test_per_class: int = 100,
    flip_rate: float = 0.2,
    test_flip_rate: float | None = None,
    noise_std: float = 0.0,
    occluded_cells: int = 0,
    seed: int = 0,
) -> Dataset:
    """The Braille reconstruction task as a :class:`~insitu.data.Dataset` (no validation rows).

    The training set holds ``train_per_class`` distorted copies of each of the nine names
    (labels 0..8, in the order of :data:`NAMES`), the test set ``test_per_class`` independently
    distorted copies, both shuffled. Bits flip with probability ``flip_rate`` in training and
    ``test_flip_rate`` (``flip_rate`` when None) in the test set; ``noise_std`` and
    ``occluded_cells`` apply to both (see :func:`distort`). ``targets`` are
    :func:`clean_patterns`. Equal seeds give equal datasets; the training and test sets come
    from separate streams, so the test set does not depend on ``train_per_class``.

    Raises:
        ConfigError: a count or rate out of range.
    """
    check_count("train_per_class", train_per_class, 1)
    check_count("test_per_class", test_per_class, 1)
    if test_flip_rate is None:
        test_flip_rate = flip_rate
    check_range("flip_rate", flip_rate, low=0.0, high=0.5)
    check_range("test_flip_rate", test_flip_rate, low=0.0, high=0.5)
    check_range("noise_std", noise_std, low=0.0)
    check_count("occluded_cells", occluded_cells, 0, CELLS)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed = {seed!r} must be an integer")

    streams = torch.randint(2**62, (2,), generator=torch.Generator().manual_seed(seed))
    train_seed, test_seed = (int(s) for s in streams)
    x_train, y_train = _split(train_per_class, flip_rate, noise_std, occluded_cells, train_seed)
    x_test, y_test = _split(test_per_class, test_flip_rate, noise_std, occluded_cells, test_seed)
    return Dataset(
        name="braille",
        x_train=x_train,
        y_train=y_train,
        x_val=x_train[:0].clone(),
        y_val=y_train[:0].clone(),
        x_test=x_test,
        y_test=y_test,
        n_classes=len(NAMES),
        image_shape=IMAGE_SHAPE,
        targets=clean_patterns(),
    )


def exact_reconstruction(
    outputs: torch.Tensor, labels: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """Whether each output restores its label's clean pattern with every dot right.

    Args:
        outputs: shape (..., N, 60); a dot counts as raised where the output exceeds
            ``threshold``.
        labels: int64 of shape (N,), class indices into :data:`NAMES`.
        threshold: the decision level between a blank and a raised dot.

    Returns:
        bool of shape (..., N).

    Raises:
        ConfigError: shapes that do not match, or labels outside [0, 9).
    """
    if outputs.ndim < 2 or outputs.shape[-1] != PATTERN_BITS:
        raise ConfigError(
            f"outputs must have shape (..., N, {PATTERN_BITS}), got {tuple(outputs.shape)}"
        )
    if labels.shape != (outputs.shape[-2],):
        raise ConfigError(
            f"labels must have shape ({outputs.shape[-2]},) to match outputs "
            f"{tuple(outputs.shape)}, got {tuple(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(NAMES)):
        raise ConfigError(f"labels must lie in [0, {len(NAMES)})")
    clean = clean_patterns().to(outputs.device)[labels.to(outputs.device)] > 0.5
    return ((outputs > threshold) == clean).all(dim=-1)
