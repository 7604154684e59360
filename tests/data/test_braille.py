"""The Braille reconstruction task: letters, patterns, distortion, the dataset and scoring."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
import torch

from insitu.data import (
    CELLS,
    DATASET_NAMES,
    IMAGE_SHAPE,
    LETTER_DOTS,
    MIN_HAMMING_DISTANCE,
    NAMES,
    PATTERN_BITS,
    Dataset,
    clean_patterns,
    distort,
    exact_reconstruction,
    load_dataset,
    make_braille,
    name_pattern,
)
from insitu.errors import ConfigError

# (row, column) in the 3 x 2 cell of each dot number.
DOT_AT = {1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (0, 1), 5: (1, 1), 6: (2, 1)}


def raised(pattern: torch.Tensor) -> set[tuple[int, int]]:
    """The (row, column) of every raised dot in the (3, 20) picture of ``pattern``."""
    picture = pattern.reshape(IMAGE_SHAPE)
    return {(int(r), int(c)) for r, c in picture.nonzero().tolist()}


def cell_dots(pattern: torch.Tensor, cell: int) -> set[int]:
    """The dot numbers raised in cell ``cell`` of ``pattern``."""
    picture = pattern.reshape(IMAGE_SHAPE)
    return {d for d, (r, c) in DOT_AT.items() if picture[r, 2 * cell + c] == 1}


def hamming(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a != b).sum())


# --- letters and patterns ---------------------------------------------------------------


def test_letter_table_has_26_distinct_non_empty_cells() -> None:
    assert sorted(LETTER_DOTS) == [chr(c) for c in range(ord("a"), ord("z") + 1)]
    cells = [frozenset(dots) for dots in LETTER_DOTS.values()]
    assert all(cells) and all(dots <= set(range(1, 7)) for dots in cells)
    assert len(set(cells)) == 26


def test_letter_table_follows_the_braille_decades() -> None:
    first = "abcdefghij"
    for i, letter in enumerate("klmnopqrst"):  # second decade: first decade plus dot 3
        assert set(LETTER_DOTS[letter]) == set(LETTER_DOTS[first[i]]) | {3}
    for i, letter in enumerate("uvxyz"):  # third decade: a-e plus dots 3 and 6
        assert set(LETTER_DOTS[letter]) == set(LETTER_DOTS[first[i]]) | {3, 6}
    assert set(LETTER_DOTS["w"]) == {2, 4, 5, 6}


@pytest.mark.parametrize(
    ("letter", "dots"),
    [("a", {1}), ("l", {1, 2, 3}), ("z", {1, 3, 5, 6}), ("w", {2, 4, 5, 6}), ("j", {2, 4, 5})],
)
@pytest.mark.parametrize("cell", [0, 3, 9])
def test_known_letters_land_at_the_right_bits(letter: str, dots: set[int], cell: int) -> None:
    name = "b" * cell + letter  # 'b' (dots 1-2) fills the cells before
    pattern = name_pattern(name)
    expected = {(DOT_AT[d][0], 2 * cell + DOT_AT[d][1]) for d in dots}
    in_cell = {rc for rc in raised(pattern) if rc[1] // 2 == cell}
    assert in_cell == expected
    # Bit index is row * 20 + column: row-major over the (3, 20) picture.
    for row, col in expected:
        assert pattern[row * 20 + col] == 1


def test_pattern_shape_dtype_padding_and_case() -> None:
    p = name_pattern("Knuth")
    assert p.shape == (PATTERN_BITS,) == (60,)
    assert p.dtype == torch.float32
    assert set(p.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(p, name_pattern("KNUTH"))
    assert [cell_dots(p, c) for c in range(5, CELLS)] == [set()] * 5  # padded blanks
    assert cell_dots(p, 0) == {1, 3} and cell_dots(p, 3) == {2, 3, 4, 5}  # k, t


@pytest.mark.parametrize("name", ["", "ABCDEFGHIJK", "VON NEUMANN", "HOPPER2", "ERDŐS", "A-B"])
def test_unsupported_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError):
        name_pattern(name)


def test_ten_letters_fill_every_cell() -> None:
    p = name_pattern("abcdefghij")
    assert all(cell_dots(p, c) for c in range(CELLS))


def test_nine_names_are_distinct_and_separated_by_the_documented_distance() -> None:
    assert len(NAMES) == 9 and len(set(NAMES)) == 9
    assert all(n.isupper() and n.isalpha() and len(n) <= CELLS for n in NAMES)
    patterns = clean_patterns()
    assert patterns.shape == (9, 60) and patterns.dtype == torch.float32
    for i, name in enumerate(NAMES):
        assert torch.equal(patterns[i], name_pattern(name))
    distances = [hamming(patterns[i], patterns[j]) for i, j in itertools.combinations(range(9), 2)]
    assert min(distances) == MIN_HAMMING_DISTANCE == 16


def test_documented_reason_for_replacing_names_holds() -> None:
    # The module docstring says HOPPER and LAMPORT were dropped for being only 10 bits apart.
    assert hamming(name_pattern("HOPPER"), name_pattern("LAMPORT")) == 10


# --- distort ----------------------------------------------------------------------------


def test_measured_flip_rate_matches_the_request() -> None:
    clean = clean_patterns().repeat(500, 1)  # 4500 x 60 = 270000 bits
    for rate in (0.05, 0.2, 0.5):
        out = distort(clean, flip_rate=rate, generator=torch.Generator().manual_seed(1))
        assert set(out.unique().tolist()) <= {0.0, 1.0}
        measured = float((out != clean).float().mean())
        assert abs(measured - rate) < 0.01, (rate, measured)


def test_zero_distortion_is_an_unchanged_copy() -> None:
    clean = clean_patterns()
    out = distort(clean, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, clean) and out.data_ptr() != clean.data_ptr()


@pytest.mark.parametrize("k", [1, 3, 10])
def test_occlusion_zeroes_exactly_k_whole_cells(k: int) -> None:
    ones = torch.ones(200, PATTERN_BITS)
    out = distort(ones, occluded_cells=k, generator=torch.Generator().manual_seed(2))
    cells = out.reshape(200, 3, CELLS, 2)  # bit row*20 + 2*cell + col
    blank = (cells == 0).all(dim=(1, 3))
    lit = (cells == 1).all(dim=(1, 3))
    assert torch.equal(blank | lit, torch.ones_like(blank))  # every cell all or nothing
    assert torch.equal(blank.sum(dim=1), torch.full((200,), k))
    if k < CELLS:  # the occluded cells vary between samples
        assert len({tuple(row.tolist()) for row in blank}) > 1


def test_noise_is_clipped_and_has_the_requested_spread() -> None:
    half = torch.full((2000, PATTERN_BITS), 0.5)
    out = distort(half, noise_std=0.1, generator=torch.Generator().manual_seed(3))
    assert abs(float(out.std()) - 0.1) < 0.005
    big = distort(half, noise_std=5.0, generator=torch.Generator().manual_seed(3))
    assert float(big.min()) == 0.0 and float(big.max()) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"flip_rate": -0.1},
        {"flip_rate": 0.6},
        {"flip_rate": float("nan")},
        {"noise_std": -1.0},
        {"occluded_cells": -1},
        {"occluded_cells": 11},
        {"occluded_cells": 1.5},
    ],
)
def test_distort_rejects_out_of_range_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        distort(clean_patterns(), generator=torch.Generator(), **kwargs)


def test_distort_rejects_wrong_shapes() -> None:
    with pytest.raises(ConfigError, match="shape"):
        distort(torch.zeros(4, 59), generator=torch.Generator())


# --- make_braille and load_dataset --------------------------------------------------------


def test_make_braille_shapes_labels_and_targets() -> None:
    d = make_braille(train_per_class=30, test_per_class=7, seed=4)
    assert isinstance(d, Dataset)
    assert (d.name, d.n_classes, d.image_shape, d.n_features, d.n_outputs) == (
        "braille",
        9,
        (3, 20),
        60,
        60,
    )
    assert d.x_train.shape == (270, 60) and d.x_test.shape == (63, 60) and len(d.y_val) == 0
    assert torch.equal(torch.bincount(d.y_train, minlength=9), torch.full((9,), 30))
    assert torch.equal(torch.bincount(d.y_test, minlength=9), torch.full((9,), 7))
    assert d.targets is not None and torch.equal(d.targets, clean_patterns())
    assert not torch.equal(d.y_train, d.y_train.sort().values)  # shuffled
    # The distortion is a 20 % bit flip of each sample's own clean pattern.
    flipped = (d.x_train != clean_patterns()[d.y_train]).float().mean()
    assert abs(float(flipped) - 0.2) < 0.02


def test_make_braille_test_flip_rate_is_separate() -> None:
    d = make_braille(train_per_class=50, test_per_class=50, flip_rate=0.0, test_flip_rate=0.3)
    assert torch.equal(d.x_train, clean_patterns()[d.y_train])
    flipped = (d.x_test != clean_patterns()[d.y_test]).float().mean()
    assert abs(float(flipped) - 0.3) < 0.02


def test_make_braille_is_deterministic_per_seed() -> None:
    a, b = make_braille(seed=7), make_braille(seed=7)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    c = make_braille(seed=8)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_test, c.x_test)


def test_make_braille_test_set_does_not_depend_on_training_size() -> None:
    a = make_braille(train_per_class=5, seed=3)
    b = make_braille(train_per_class=50, seed=3)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)


def test_make_braille_applies_occlusion_and_noise() -> None:
    d = make_braille(train_per_class=10, flip_rate=0.0, occluded_cells=10, seed=0)
    assert float(d.x_train.abs().sum()) == 0.0 and float(d.x_test.abs().sum()) == 0.0
    noisy = make_braille(train_per_class=10, flip_rate=0.0, noise_std=0.2, seed=0)
    assert float((noisy.x_train - clean_patterns()[noisy.y_train]).abs().mean()) > 0.0
    assert float(noisy.x_train.min()) >= 0.0 and float(noisy.x_train.max()) <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_per_class": 0},
        {"test_per_class": -1},
        {"train_per_class": 2.5},
        {"flip_rate": 0.7},
        {"test_flip_rate": -0.1},
        {"noise_std": -0.5},
        {"occluded_cells": 12},
    ],
)
def test_make_braille_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_braille(**kwargs)


def test_load_dataset_braille_with_options_split_and_limits() -> None:
    assert "braille" in DATASET_NAMES
    options: dict[str, Any] = {"train_per_class": 20, "test_per_class": 10, "flip_rate": 0.1}
    d = load_dataset("braille", seed=5, validation_fraction=0.25, limit_test=40, options=options)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (135, 45, 40)
    assert d.targets is not None and d.n_outputs == 60
    whole = make_braille(seed=5, **options)
    # Train and validation together are exactly the generated training set.
    merged = torch.cat([d.x_train, d.x_val])
    assert sorted(map(tuple, merged.tolist())) == sorted(map(tuple, whole.x_train.tolist()))
    assert torch.equal(d.x_test, whole.x_test[:40])
    assert "n_outputs=60" in repr(d)
    again = load_dataset("braille", seed=5, validation_fraction=0.25, options=options)
    assert torch.equal(again.x_val, d.x_val)


def test_load_dataset_braille_defaults() -> None:
    d = load_dataset("braille", limit_train=10)
    assert len(d.y_train) == 10 and len(d.y_test) == 900


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"flip_rat": 0.1}, "valid options: .*train_per_class"),
        ({"seed": 3}, "pass seed= to load_dataset"),
        ({"flip_rate": 0.9}, "flip_rate"),
    ],
)
def test_load_dataset_braille_bad_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_dataset("braille", options=options)


def test_other_datasets_take_no_options() -> None:
    with pytest.raises(ConfigError, match="'digits' takes no options"):
        load_dataset("digits", options={"flip_rate": 0.1})
    assert load_dataset("digits", options={}, limit_train=5).targets is None


# --- Dataset.targets ----------------------------------------------------------------------


def toy(targets: torch.Tensor | None) -> Dataset:
    x, y = torch.zeros(4, 4), torch.tensor([0, 1, 2, 0])
    return Dataset("toy", x, y, x, y, x, y, n_classes=3, image_shape=(2, 2), targets=targets)


def test_dataset_targets_set_n_outputs() -> None:
    assert toy(None).n_outputs == 3
    assert toy(torch.zeros(3, 7)).n_outputs == 7
    assert "n_outputs" not in repr(toy(None))
    assert "n_outputs=7" in repr(toy(torch.zeros(3, 7)))


@pytest.mark.parametrize(
    ("targets", "match"),
    [
        (torch.zeros(3, 7, dtype=torch.float64), "not float32"),
        (torch.zeros(3), "1-D, not 2-D"),
        (torch.zeros(3, 2, 2), "3-D, not 2-D"),
        (torch.zeros(4, 7), "4 rows, not n_classes = 3"),
    ],
)
def test_dataset_rejects_bad_targets(targets: torch.Tensor, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        toy(targets)
    with pytest.raises(ConfigError, match="targets"):
        dataclasses.replace(toy(torch.zeros(3, 7)), targets=targets)


# --- exact_reconstruction -----------------------------------------------------------------


def test_exact_reconstruction_of_clean_patterns_and_one_wrong_dot() -> None:
    labels = torch.arange(9)
    clean = clean_patterns()
    assert exact_reconstruction(clean, labels).tolist() == [True] * 9
    # Analog outputs on the right side of the threshold count as right.
    assert exact_reconstruction(0.2 + 0.6 * clean, labels).all()
    wrong = clean.clone()
    wrong[4, 17] = 1.0 - wrong[4, 17]
    assert exact_reconstruction(wrong, labels).tolist() == [i != 4 for i in range(9)]
    # A clean pattern scored against another label is wrong.
    assert not exact_reconstruction(clean, labels.roll(1)).any()


def test_exact_reconstruction_batches_and_threshold() -> None:
    labels = torch.tensor([2, 2, 5])
    outputs = torch.stack([clean_patterns()[labels], 1 - clean_patterns()[labels]])
    result = exact_reconstruction(outputs, labels)
    assert result.shape == (2, 3) and result.dtype == torch.bool
    assert result.tolist() == [[True] * 3, [False] * 3]
    scaled = 0.7 * clean_patterns()[labels]
    assert exact_reconstruction(scaled, labels).all()
    assert not exact_reconstruction(scaled, labels, threshold=0.8).any()


@pytest.mark.parametrize(
    ("outputs", "labels"),
    [
        (torch.zeros(3, 59), torch.zeros(3, dtype=torch.long)),
        (torch.zeros(3, 60), torch.zeros(4, dtype=torch.long)),
        (torch.zeros(60), torch.zeros(1, dtype=torch.long)),
        (torch.zeros(2, 60), torch.tensor([0, 9])),
    ],
)
def test_exact_reconstruction_rejects_bad_shapes(
    outputs: torch.Tensor, labels: torch.Tensor
) -> None:
    with pytest.raises(ConfigError):
        exact_reconstruction(outputs, labels)
