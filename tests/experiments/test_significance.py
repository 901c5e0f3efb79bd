"""McNemar's exact test and the Wilson interval against answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convlens.experiments.significance import (
    binomial_two_sided_p,
    format_p,
    mcnemar_p,
    paired_test,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (3, 10, 2 * (1 + 10 + 45 + 120) / 1024),  # 0.34375
        (0, 10, 2 / 1024),
        (5, 10, 1.0),  # the middle: as likely as it gets
        (7, 10, 2 * (1 + 10 + 45 + 120) / 1024),  # symmetric
        (0, 1, 1.0),  # 2 * 1/2
        (0, 0, 1.0),  # no discordant image: nothing to decide
        (1, 6, 2 * (1 + 6) / 64),  # 0.21875
        (0, 5, 2 / 32),  # 0.0625: five out of five is still not p < 0.05
        (0, 6, 2 / 64),  # 0.03125: six out of six is
    ],
)
def test_the_exact_binomial_test_against_hand_computed_values(k, n, expected) -> None:
    assert binomial_two_sided_p(k, n) == pytest.approx(expected, rel=1e-12)


def test_a_large_count_stays_exact() -> None:
    """4 of 10,000 images one way, 0 the other: 2 * (1/2)^4 = 0.125."""
    assert mcnemar_p(4, 0) == pytest.approx(0.125, rel=1e-12)
    # 220 vs 180 of 400 discordant: sum of exact integers, checked by hand with math.comb
    tail = sum(math.comb(400, i) for i in range(181))
    assert mcnemar_p(220, 180) == pytest.approx(2 * tail / 2**400, rel=1e-12)
    assert 0.04 < mcnemar_p(220, 180) < 0.06


def test_wilson_interval_against_the_textbook_values() -> None:
    """8 of 10: (0.4902, 0.9433); 0 of 10: (0, 0.2775); 10 of 10: (0.7225, 1)."""
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=5e-5), pytest.approx(0.9433, abs=5e-5))
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=5e-5))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=5e-5), pytest.approx(1.0))
    low, high = wilson_interval(9124, 10000)  # 91.24% on Fashion-MNIST's test set
    assert high - low == pytest.approx(2 * 1.96 * math.sqrt(0.9124 * 0.0876 / 10000), rel=0.01)


def test_paired_test_counts_only_the_discordant_images() -> None:
    a = np.array([1, 1, 1, 0, 0, 1, 1, 1], bool)
    b = np.array([1, 0, 0, 1, 0, 1, 0, 1], bool)
    result = paired_test("cnn", a, "dnn", b)
    assert (result.only_a, result.only_b, result.count) == (3, 1, 8)
    assert result.p_value == pytest.approx(2 * (1 + 4) / 16)
    assert result.better is None
    assert result.sentence().startswith("cnn and dnn are a tie within noise (3 test images")
    assert "p = 0.62" in result.sentence()
    strong = paired_test("cnn", np.ones(100, bool), "dnn", np.arange(100) >= 10)
    assert strong.better == "cnn" and strong.sentence().startswith("cnn is more accurate than dnn")
    with pytest.raises(ValueError, match="same test images"):
        paired_test("a", np.ones(3, bool), "b", np.ones(4, bool))


def test_p_values_are_printed_as_people_read_them() -> None:
    assert format_p(0.3125) == "p = 0.31"
    assert format_p(0.049) == "p = 0.049"
    assert format_p(0.0032) == "p = 0.0032"
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(1.0) == "p = 1"
