"""gasgnn.stats: paired comparisons over seeds, checked against values computed by hand and scipy."""

import math

import pytest
from scipy import stats as st

from gasgnn.stats import paired_comparison, summarize


def test_summarize_matches_hand_computation():
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.n == 5 and s.mean == pytest.approx(3.0) and s.std == pytest.approx(math.sqrt(2.5))
    h = st.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)  # 2.776 * 0.7071
    assert (s.ci_low, s.ci_high) == pytest.approx((3.0 - h, 3.0 + h))
    assert h == pytest.approx(1.963, abs=1e-3)
    one = summarize([7.0])
    assert (one.std, one.ci_low, one.ci_high) == (0.0, 7.0, 7.0)


def test_paired_comparison_uses_the_per_seed_differences():
    # A shared seed effect (large spread) with a constant-ish shift: unpaired tests miss it, paired finds it.
    base = [30.0, 25.0, 35.0, 28.0, 32.0]
    a = [x + d for x, d in zip(base, [1.1, 0.9, 1.0, 1.2, 0.8])]
    c = paired_comparison(a, base)
    assert c.mean_diff == pytest.approx(1.0) and c.wins == 5
    ref = st.ttest_rel(a, base)
    assert c.t == pytest.approx(ref.statistic) and c.p_t == pytest.approx(ref.pvalue)
    assert c.p_t < 1e-3 < st.ttest_ind(a, base).pvalue
    assert c.ci_low < 1.0 < c.ci_high and c.ci_low > 0
    assert c.p_wilcoxon == pytest.approx(0.0625)  # the smallest exact two-sided p with 5 pairs


def test_paired_comparison_sign_and_ties():
    c = paired_comparison([1.0, 2.0, 3.0], [2.0, 3.0, 4.5])
    assert c.mean_diff < 0 and c.wins == 0 and c.ci_high < 0
    same = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert same.mean_diff == 0.0 and same.p_t == 1.0 and same.p_wilcoxon == 1.0 and math.isnan(same.t)


@pytest.mark.parametrize("a,b,msg", [([1.0, 2.0], [1.0], "pair them"), ([1.0], [2.0], "at least 2"),
                                     ([1.0, float("nan")], [1.0, 2.0], "non-finite"), ([], [], "no values")])
def test_paired_comparison_refuses_bad_input(a, b, msg):
    with pytest.raises(ValueError, match=msg):
        paired_comparison(a, b)
