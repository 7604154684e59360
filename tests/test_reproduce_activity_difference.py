"""benchmarks/reproduce_activity_difference.py: Braille restoration per name, with its ceiling."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from insitu.data.braille import MIN_HAMMING_DISTANCE, NAMES, clean_patterns

PER_NAME = 30  # test patterns per name and level: enough to tell rates apart, fast


@pytest.fixture(scope="module")
def ad(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("reproduce_activity_difference")


def nearest_decoder(x: torch.Tensor) -> torch.Tensor:
    """Two identical 'chips' that output the clean pattern nearest to the input."""
    clean = clean_patterns()
    return clean[torch.cdist(x, clean, p=1).argmin(-1)].expand(2, -1, -1)


def fixed_decoder(x: torch.Tensor) -> torch.Tensor:
    """Chip 0 always outputs TURING's clean pattern, chip 1 always ZUSE's."""
    clean = clean_patterns()
    return torch.stack([clean[0].expand(len(x), -1), clean[4].expand(len(x), -1)])


def test_the_nearest_pattern_decoder_restores_exactly_the_ceiling(ad: ModuleType) -> None:
    ceiling = ad.oracle(seed=3, per_name=PER_NAME)
    rest = ad.restoration(nearest_decoder, seed=3, per_name=PER_NAME)
    assert rest["mean"] == pytest.approx(ceiling["mean"])
    for key in ("0.1", "0.2", "0.3"):
        assert rest["per_name"][key]["mean"] == pytest.approx(ceiling["per_name"][key])
        assert rest["per_name"][key]["std"] == pytest.approx([0.0] * len(NAMES))
    # at 30 % flips some inputs lie nearer another name: the ceiling is below 100 %
    assert min(ceiling["per_name"]["0.3"]) < 1.0
    # each of its failures is an input nearer another name, decoded as that name's pattern
    f = rest["failures_at_0.2"]
    assert f["failed"] == pytest.approx(f["wrong_name"])
    assert f["failed"] == pytest.approx(f["failed_and_ambiguous"])
    assert f["failed"] == pytest.approx(f["ambiguous_input"])
    for c, wrong in enumerate(f["wrong_dots_per_failure"]):
        assert wrong == 0.0 if f["failed"][c] == 0 else wrong >= MIN_HAMMING_DISTANCE


def test_per_name_rates_are_spread_over_instances(ad: ModuleType) -> None:
    rest = ad.restoration(fixed_decoder, seed=0, per_name=PER_NAME)
    for key in ("0.1", "0.2", "0.3"):
        per = rest["per_name"][key]
        assert per["mean"] == pytest.approx([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0])
        assert per["std"] == pytest.approx([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0])
        assert per["min"] == pytest.approx([0.0] * len(NAMES))
    assert rest["mean"] == pytest.approx([1 / 9] * len(rest["levels"]))
    # ZUSE's chip is right only for ZUSE: for TURING every dot ZUSE and TURING differ in is wrong
    dots = torch.tensor(rest["failures_at_0.2"]["dot_error_rate"])
    differ = (clean_patterns()[0] != clean_patterns()[4]).to(torch.float32)
    assert torch.allclose(dots[0], 0.5 * differ)
    taken_for = rest["failures_at_0.2"]["confused_with"]
    assert (taken_for[0], taken_for[4]) == ("ZUSE", "TURING")


def test_tables_and_figure_name_the_names_short_of_the_bar(ad: ModuleType, tmp_path: Path) -> None:
    rest = ad.restoration(fixed_decoder, seed=0, per_name=PER_NAME)
    results = {
        "oracle": ad.oracle(seed=0, per_name=PER_NAME),
        "methods": {"fixed": {"restoration": rest, "wall_s": 1.0}},
        "config": {"device": "reram-taox", "test_per_name": PER_NAME},
        "paper": ad.PAPER_BRAILLE,
    }
    lines = ad.per_name_tables(results)
    verdict = next(line for line in lines if line.startswith("- fixed:"))
    assert verdict.startswith("- fixed: missed: TURING 50.0, LOVELACE 0.0")
    assert "ZUSE 50.0" in verdict
    assert sum(line.startswith("| pooled |") for line in lines) == 3
    header = next(line for line in lines if line.startswith("| method | name |"))
    row = next(line for line in lines if line.startswith("| fixed | TURING |"))
    assert header.count("|") == row.count("|")
    assert row.endswith("| ZUSE |")  # TURING's patterns are taken for ZUSE's on chip 1
    ad.per_name_figure(results, tmp_path / "per_name.png")
    assert (tmp_path / "per_name.png").stat().st_size > 0


def test_a_set_without_a_value_is_a_usage_error(
    ad: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["reproduce", "--set", "epochs"])
    with pytest.raises(SystemExit) as err:
        ad.main()
    assert err.value.code == 2


def test_seeds_pool_every_chip_of_every_seed(ad: ModuleType, tmp_path: Path) -> None:
    # Two "seeds" of two chips each: the pooled rate of a name is the mean over all four chips,
    # and each seed's own mean stays beside it.
    per_seed = {
        seed: {"methods": {"m": {"restoration": ad.restoration(decoder, seed, PER_NAME)}}}
        for seed, decoder in ((0, fixed_decoder), (1, nearest_decoder))
    }
    pooled = ad.pool_seeds(per_seed, ["m"], 2, tmp_path)
    chips = [per_seed[s]["methods"]["m"]["restoration"]["per_name"]["0.2"]["chips"] for s in (0, 1)]
    all_chips = torch.tensor(chips[0] + chips[1])  # (4 chips, names)
    assert pooled["m"]["mean"] == pytest.approx(all_chips.mean(0).tolist())
    assert pooled["m"]["min"] == pytest.approx(all_chips.amin(0).tolist())
    assert pooled["m"]["per_seed"][0] == pytest.approx([0.5, 0, 0, 0, 0.5, 0, 0, 0, 0])
    held = sum(min(m) >= ad.BAR for m in pooled["m"]["per_seed"])
    text = (tmp_path / "braille_seeds.md").read_text()
    assert f"on {held} of 2 seeds" in text and "over all 4 chips" in text
    assert "missed: TURING" in text  # the fixed chips pull every name below the bar
    assert (tmp_path / "braille_seeds.json").exists()
    assert (tmp_path / "braille_per_name_seeds.png").stat().st_size > 0
