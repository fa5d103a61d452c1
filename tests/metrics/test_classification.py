"""Classification metrics: hand-computed ECE fixtures, scikit-learn and netcal cross-checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score

from personalign.metrics.classification import (
    CLASSIFICATION_KEYS,
    classification_metrics,
    ece,
    ece_paper,
    reliability,
)

# Bins of width 1/15: 0.05 -> 0, 0.1 -> 1, 0.5 -> 7, 0.55 -> 8, 0.95 and 1.0 -> 14 (last).
P = np.array([0.05, 0.1, 0.5, 0.55, 0.95, 1.0])
Y = np.array([0, 1, 0, 1, 1, 1])


def test_ece_uniform_15_bins_by_hand() -> None:
    # |0.05-0| + |0.1-1| + |0.5-0| + |0.55-1| + 2*|0.975-1| = 1.95, over N = 6
    assert ece(Y, P) == pytest.approx(1.95 / 6, abs=1e-12)
    table = reliability(Y, P)
    assert [r["bin"] for r in table] == [0, 1, 7, 8, 14]
    last = table[-1]
    assert last["n"] == 2 and last["mean_p"] == pytest.approx(0.975)
    assert last["frac_pos"] == 1.0
    assert last["lo"] == pytest.approx(14 / 15) and last["hi"] == 1.0


def test_ece_two_bins_by_hand() -> None:
    # [0, .5): p .05 .1 -> mean .075, positives 1/2 -> .425 x 2; [.5, 1]: mean .75 = 3/4 -> 0
    assert ece(Y, P, bins=2) == pytest.approx(2 * 0.425 / 6, abs=1e-12)


def test_ece_adaptive_by_hand() -> None:
    # 3 equal-mass bins: {.05,.1} .075 vs .5; {.5,.55} .525 vs .5; {.95,1} .975 vs 1
    assert ece(Y, P, bins=3, strategy="quantile") == pytest.approx(0.95 / 6, abs=1e-12)
    # 4 bins over 6 examples: sizes 2, 2, 1, 1 (first N mod B bins get the extra one)
    table = reliability(Y, P, bins=4, strategy="quantile")
    assert [r["n"] for r in table] == [2, 2, 1, 1]
    assert [(r["lo"], r["hi"]) for r in table] == [(0.05, 0.1), (0.5, 0.55), (0.95, 0.95),
                                                   (1.0, 1.0)]
    # input order does not matter when p has no ties
    perm = np.array([3, 5, 0, 4, 1, 2])
    assert ece(Y[perm], P[perm], bins=3, strategy="quantile") == pytest.approx(0.95 / 6)


def test_classification_metrics_adaptive_key_uses_15_equal_mass_bins() -> None:
    # 15 examples -> one per bin -> ECE_adaptive = mean |p - y|
    rng = np.random.default_rng(3)
    p = rng.random(15)
    y = (rng.random(15) < 0.5).astype(int)
    m = classification_metrics(y, p)
    assert m["ece_adaptive"] == pytest.approx(np.mean(np.abs(p - y)))


def test_ece_paper_by_hand() -> None:
    # argmax predictions [0,0,1,1,1,1] vs y -> correct [1,0,0,1,1,1]; p = 1.0 is in no bin but
    # counts in N: |1-.05| + |0-.1| + |0-.5| + |1-.55| + |1-.95| = 2.05, over N = 6
    assert ece_paper(Y, P) == pytest.approx(2.05 / 6, abs=1e-12)


def test_ece_paper_drops_p_equal_one_but_counts_it_in_n() -> None:
    # p = 0.9 (bin 13): argmax correct, |1 - .9| = .1, weight 1/2; p = 1.0 with y = 0 is in no
    # bin (weight 0). The default ECE puts p = 1.0 in the last bin: (|.9 - 1| + |1 - 0|) / 2.
    y, p = np.array([0, 1]), np.array([1.0, 0.9])
    assert ece_paper(y, p) == pytest.approx(0.05, abs=1e-12)
    assert ece(y, p) == pytest.approx(0.55, abs=1e-12)


def test_ece_paper_penalises_calibrated_low_bins() -> None:
    # p = 0.2 with 1 positive in 5: perfectly calibrated, ECE 0; the paper's variant compares
    # 0.2 with the argmax accuracy 0.8
    p = np.full(5, 0.2)
    y = np.array([1, 0, 0, 0, 0])
    assert ece(y, p) == pytest.approx(0.0, abs=1e-12)
    assert ece_paper(y, p) == pytest.approx(0.6)


def test_against_sklearn() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(400)
    y = (rng.random(400) < p).astype(int)
    p[:10] = 0.5  # exactly at the threshold: predicted positive
    m = classification_metrics(y, p)
    assert set(m) == set(CLASSIFICATION_KEYS)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["ap"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.5), abs=1e-12)


def test_against_netcal_uniform_ece() -> None:
    netcal_metrics = pytest.importorskip("netcal.metrics")
    rng = np.random.default_rng(1)
    p = rng.random(500)
    y = (rng.random(500) < p**1.5).astype(int)
    theirs = netcal_metrics.ECE(bins=15).measure(p, y)
    assert ece(y, p) == pytest.approx(float(theirs), abs=1e-12)


def test_single_class_gives_nan_ranking_metrics_and_zero_f1() -> None:
    m = classification_metrics(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.isnan(m["auroc"]) and np.isnan(m["ap"])
    assert m["f1"] == 0.0
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.16) / 4)


@pytest.mark.parametrize(
    ("y", "p", "msg"),
    [
        ([0, 2], [0.1, 0.2], "position 1"),
        ([0, 1], [0.1, 1.2], "position 1"),
        ([0, 1], [np.nan, 0.2], "position 0"),
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
        ([], [], "empty"),
    ],
)
def test_invalid_inputs(y: list[float], p: list[float], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        classification_metrics(np.array(y), np.array(p))


def test_ranking_metrics_take_unbounded_scores() -> None:
    from sklearn.metrics import roc_auc_score

    from personalign.metrics.classification import ranking_metrics

    y = np.array([1, 0, 1, 0, 0])
    s = np.array([18.2, 3.0, 2.5, 2.5, -1.0])  # BM25-like scale
    # pairs (pos, neg): 18.2 beats all 3; 2.5 loses to 3.0, ties 2.5, beats -1 -> 1.5 / 3
    assert ranking_metrics(y, s)["auroc"] == pytest.approx((3 + 1.5) / 6)
    assert ranking_metrics(y, s)["auroc"] == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(ranking_metrics(np.ones(3), np.ones(3))["auroc"])
