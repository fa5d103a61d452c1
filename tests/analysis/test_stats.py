"""Bootstrap intervals, paired tests and Holm correction: exact cases and scipy cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from personalign.analysis.stats import (
    bootstrap_ci,
    bootstrap_ci_groups,
    bootstrap_means,
    holm,
    paired_bootstrap,
    paired_permutation_test,
    resample_indices,
)


def test_constant_values_give_a_point_interval() -> None:
    assert bootstrap_ci(np.full(7, 0.3)) == pytest.approx((0.3, 0.3, 0.3))


def test_two_point_sample_interval_covers_both_ends() -> None:
    # Resampled mean of {0, 1}: 0 w.p. 1/4, 0.5 w.p. 1/2, 1 w.p. 1/4 -> 2.5 % / 97.5 % at 0 / 1.
    point, lo, hi = bootstrap_ci(np.array([0.0, 1.0]), n_resamples=4000, seed=3)
    assert (point, lo, hi) == (0.5, 0.0, 1.0)


def test_vectorised_bootstrap_equals_the_documented_loop() -> None:
    rng_data = np.random.default_rng(5)
    values = rng_data.normal(size=37)
    point, lo, hi = bootstrap_ci(values, np.median, n_resamples=300, alpha=0.1, seed=11)
    rng = np.random.default_rng(11)
    boot = [np.median(values[rng.integers(0, 37, size=37)]) for _ in range(300)]
    assert point == pytest.approx(np.median(values))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(boot, [5.0, 95.0])), abs=1e-12)


def test_resampled_indices_do_not_depend_on_batching() -> None:
    one = np.concatenate(list(resample_indices(13, 20, seed=2, batch_rows=1)))
    seven = np.concatenate(list(resample_indices(13, 20, seed=2, batch_rows=7)))
    default = np.concatenate(list(resample_indices(13, 20, seed=2)))
    assert one.shape == (20, 13)
    np.testing.assert_array_equal(one, seven)
    np.testing.assert_array_equal(one, default)


def test_bootstrap_means_equal_gathered_means() -> None:
    m = np.random.default_rng(0).random((29, 4))
    fast = bootstrap_means(m, n_resamples=50, seed=9)
    slow = np.concatenate([m[idx].mean(axis=1) for idx in resample_indices(29, 50, seed=9)])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    assert bootstrap_means(m[:, 0], 50, seed=9).shape == (50,)


def test_groups_are_resampled_jointly() -> None:
    a = np.random.default_rng(1).random(40)
    # Same resampled ids in both arrays -> the difference of means is 0 in every resample.
    assert bootstrap_ci_groups([a, a.copy()], lambda x, y: x.mean(1) - y.mean(1)) == (0, 0, 0)
    # A statistic of a 2-d array (queries x pairs) and a 1-d one.
    b = np.stack([a, 2 * a], axis=1)
    point, lo, hi = bootstrap_ci_groups(
        [b, a], lambda x, y: x.mean(axis=(1, 2)) / y.mean(axis=1), n_resamples=200
    )
    assert (point, lo, hi) == pytest.approx((1.5, 1.5, 1.5))


def test_group_arrays_must_be_aligned() -> None:
    with pytest.raises(ValueError, match="query axis"):
        bootstrap_ci_groups([np.ones(3), np.ones(4)], lambda x, y: x.mean(1))


def test_percentile_interval_close_to_scipy() -> None:
    values = np.random.default_rng(4).normal(loc=1.0, scale=2.0, size=300)
    _, lo, hi = bootstrap_ci(values, n_resamples=5000, seed=0)
    ref = sps.bootstrap((values,), np.mean, n_resamples=5000, method="percentile", rng=1)
    width = hi - lo
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)


def test_paired_bootstrap_exact_cases() -> None:
    a = np.random.default_rng(2).random(50)
    same = paired_bootstrap(a, a.copy(), n_resamples=500)
    assert same == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "p_value": 1.0}
    shifted = paired_bootstrap(a + 1.0, a, n_resamples=500)
    assert shifted["diff"] == pytest.approx(1.0)
    assert shifted["lo"] == pytest.approx(1.0) and shifted["hi"] == pytest.approx(1.0)
    assert shifted["p_value"] == pytest.approx(1 / 501)


def test_paired_bootstrap_detects_a_real_difference_only() -> None:
    rng = np.random.default_rng(8)
    base = rng.random(400)
    better = paired_bootstrap(base + rng.normal(0.1, 0.1, 400), base)
    assert better["p_value"] < 0.01 and better["lo"] > 0
    # A small difference: both p-values agree with the paired t-test (normal noise, n = 400).
    other = base + rng.normal(0.0, 0.1, 400)
    t_p = sps.ttest_rel(other, base).pvalue  # 0.019 for this draw
    assert paired_bootstrap(other, base)["p_value"] == pytest.approx(t_p, abs=0.01)
    assert paired_permutation_test(other, base) == pytest.approx(t_p, abs=0.01)


def test_permutation_test_exact_enumeration() -> None:
    # d = [1, 2, 3]: |sum| over the 8 sign vectors = 6, 4, 2, 0, 0, 2, 4, 6 -> 2 of 8 reach 6.
    assert paired_permutation_test(np.array([1.0, 2, 3]), np.zeros(3)) == 0.25
    assert paired_permutation_test(np.zeros(5), np.zeros(5)) == 1.0


def test_permutation_test_matches_scipy_exact() -> None:
    rng = np.random.default_rng(6)
    a = rng.random(10)
    b = a - rng.normal(0.2, 0.3, 10)
    ours = paired_permutation_test(a, b)  # 2^10 = 1024 <= 10000: exact
    ref = sps.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=np.inf, alternative="two-sided",
    )
    assert ours == pytest.approx(ref.pvalue, abs=1e-12)


def test_permutation_test_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(12)
    b = a - rng.normal(0.1, 0.3, 12)
    exact = paired_permutation_test(a, b, n_resamples=5000)  # 4096 <= 5000: exact
    sampled = paired_permutation_test(a, b, n_resamples=4000, seed=1)
    assert sampled == pytest.approx(exact, abs=0.02)
    big = paired_permutation_test(np.ones(40), np.zeros(40), n_resamples=999)
    assert big == pytest.approx(1 / 1000)


def test_holm_hand_example() -> None:
    # sorted: .005*4 = .02, .01*3 = .03, .03*2 = .06, .04*1 = .04 -> running max .06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])
