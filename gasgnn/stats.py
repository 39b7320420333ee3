"""Statistics for comparing search variants over paired seeds.

A seed pairs runs across variants (same seed, same split, same budget), so the comparison of two
variants is a paired one: the per-seed differences carry the signal and the seed-to-seed spread that
both variants share cancels. :func:`paired_comparison` gives the mean difference, its t-based confidence
interval, the paired t-test and the exact Wilcoxon signed-rank test; :func:`summarize` the mean and
sample standard deviation of one variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats as _st


class _Record:
    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Summary(_Record):
    """Mean and spread of one variant's values.

    Args:
        n (int): Values.
        mean (float): Mean.
        std (float): Sample standard deviation (``ddof=1``; 0 for one value).
        ci_low (float): Lower end of the t-based confidence interval of the mean.
        ci_high (float): Upper end.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class PairedComparison(_Record):
    """The paired difference ``a - b`` over seeds.

    Args:
        n (int): Pairs.
        mean_diff (float): Mean of the per-seed differences.
        std_diff (float): Their sample standard deviation.
        ci_low (float): Lower end of the t-based confidence interval of the mean difference.
        ci_high (float): Upper end.
        t (float): Paired t statistic (``nan`` when every difference is equal).
        p_t (float): Two-sided p-value of the paired t-test.
        p_wilcoxon (float): Two-sided exact p-value of the Wilcoxon signed-rank test (with 5 pairs it
            cannot go below 0.0625).
        wins (int): Seeds where ``a > b``.
    """

    n: int
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float
    t: float
    p_t: float
    p_wilcoxon: float
    wins: int


def _check(values: Sequence[float], name: str) -> list[float]:
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError(f"{name}: no values")
    if any(not math.isfinite(v) for v in xs):
        raise ValueError(f"{name}: non-finite value in {xs}")
    return xs


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample standard deviation and t-based confidence interval of ``values``.

    Args:
        values (sequence of float): One value per seed.
        confidence (float, optional): Level of the interval. (default: :obj:`0.95`)

    Returns:
        Summary: With ``ci_low == ci_high == mean`` for a single value.
    """
    xs = _check(values, "summarize")
    n, m = len(xs), sum(xs) / len(xs)
    if n == 1:
        return Summary(1, m, 0.0, m, m)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    h = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, m, sd, m - h, m + h)


def paired_comparison(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedComparison:
    """Compares ``a`` with ``b`` seed by seed (``a[i]`` and ``b[i]`` share seed ``i``).

    Args:
        a (sequence of float): Values of the variant under test.
        b (sequence of float): Values of the baseline, same seeds in the same order.
        confidence (float, optional): Level of the interval of the mean difference. (default: :obj:`0.95`)

    Returns:
        PairedComparison: The mean difference ``a - b`` with its interval and both tests.

    Raises:
        ValueError: if the lengths differ, fewer than 2 pairs are given, or a value is not finite.
    """
    xa, xb = _check(a, "paired_comparison a"), _check(b, "paired_comparison b")
    if len(xa) != len(xb):
        raise ValueError(f"paired_comparison: {len(xa)} values against {len(xb)}; pair them by seed")
    if len(xa) < 2:
        raise ValueError("paired_comparison: needs at least 2 pairs")
    d = [x - y for x, y in zip(xa, xb)]
    s = summarize(d, confidence)
    if s.std == 0.0:  # every seed moved by the same amount: the t statistic is undefined
        t, p_t = math.nan, (1.0 if s.mean == 0.0 else 0.0)
    else:
        t = s.mean / (s.std / math.sqrt(s.n))
        p_t = float(2 * _st.t.sf(abs(t), s.n - 1))
    nz = [x for x in d if x != 0.0]
    p_w = float(_st.wilcoxon(nz, alternative="two-sided", method="exact").pvalue) if nz else 1.0
    return PairedComparison(s.n, s.mean, s.std, s.ci_low, s.ci_high, t, p_t, p_w, sum(x > 0 for x in d))
