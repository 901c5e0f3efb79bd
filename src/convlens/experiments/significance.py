"""Is one model really more accurate than another? Exact tests on the same test images.

Two models judged on the same 10,000 test images differ on a few hundred of them at
most; a gap of 0.04 points is 4 images, which a different seed moves either way.
*McNemar's exact test* asks the only question the paired data can answer: among the
images exactly one of the two models gets right, is the split further from 50:50 than
chance makes it? With ``b`` images only model A gets right and ``c`` only model B, and
``n = b + c``, under "equally accurate" ``b`` follows Binomial(n, 1/2), and the two-sided
p-value is::

    p = min(1, 2 * sum_{i <= min(b, c)} C(n, i) / 2**n)

computed here with exact integers (no scipy). Each accuracy also gets its 95% *Wilson
score interval*, which stays inside 0..1 and is right near 100%, unlike the textbook
``p ± 1.96 sqrt(p(1-p)/n)``.

    >>> mcnemar_p(3, 7)    # 3 vs 7 discordant images: 2 * (1+10+45+120)/1024
    0.34375
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "ALPHA",
    "Paired",
    "binomial_two_sided_p",
    "format_p",
    "mcnemar_p",
    "paired_test",
    "wilson_interval",
]

ALPHA = 0.05  # a difference counts when p < 0.05
Z_95 = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair coin flips (p = 1/2).

    The probability of an outcome at least as far from n/2 as ``k``, on either side:
    ``min(1, 2 * P(X <= min(k, n - k)))`` with X ~ Binomial(n, 1/2); 1 when n is 0.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def mcnemar_p(only_a: int, only_b: int) -> float:
    """McNemar's exact test: ``only_a`` images only A gets right, ``only_b`` only B."""
    return binomial_two_sided_p(min(only_a, only_b), only_a + only_b)


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy of ``correct`` out of ``total``.

    centre = (p + z²/2n) / (1 + z²/n), half-width = z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    """
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    p, n = correct / total, total
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Paired:
    """Two models on the same test images: the discordant counts and the decision."""

    a: str
    b: str
    count: int  # test images both were judged on
    only_a: int  # images only A classifies correctly
    only_b: int  # images only B classifies correctly
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def better(self) -> str | None:
        """The more accurate model's name when the difference is significant, else None."""
        if not self.significant:
            return None
        return self.a if self.only_a > self.only_b else self.b

    def sentence(self) -> str:
        """'cnn is more accurate than dnn (p < 0.001: ...)' or 'a tie within noise ...'."""
        counts = (
            f"{self.only_a:,} test images only {self.a} gets right, {self.only_b:,} only "
            f"{self.b}; McNemar's exact test, {format_p(self.p_value)}"
        )
        if self.better is None:
            return f"{self.a} and {self.b} are a tie within noise ({counts})."
        worse = self.b if self.better == self.a else self.a
        return f"{self.better} is more accurate than {worse} ({counts})."

    def to_dict(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "count": self.count,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "p_value": self.p_value,
            "significant": self.significant,
            "better": self.better,
        }


def paired_test(a: str, correct_a: np.ndarray, b: str, correct_b: np.ndarray) -> Paired:
    """McNemar's exact test on two (N,) bool arrays of per-image correctness."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1:
        raise ValueError(
            f"paired test needs the same test images for both models, got {correct_a.shape} "
            f"and {correct_b.shape}"
        )
    only_a = int(np.count_nonzero(correct_a & ~correct_b))
    only_b = int(np.count_nonzero(correct_b & ~correct_a))
    return Paired(a, b, len(correct_a), only_a, only_b, mcnemar_p(only_a, only_b))


def format_p(p: float) -> str:
    """'p = 0.31', 'p = 0.049', 'p = 0.0032', 'p < 0.001', 'p = 1'."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}"
