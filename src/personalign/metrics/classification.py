"""Binary compatibility-classification metrics (T4) on the positive-class probability p.

Inputs everywhere: ``y`` 1-d labels in {0, 1} (1 = compatible / gold pair) and ``p`` 1-d
probabilities P(y = 1) in [0, 1], same length.

    auroc        area under the ROC curve (scikit-learn ``roc_auc_score``); NaN if y has one class
    ap           average precision (scikit-learn ``average_precision_score``); NaN if one class
    f1           F1 of the positive class at threshold 0.5 (predict 1 iff p >= 0.5)
                 = 2 TP / (2 TP + FP + FN); 0.0 when 2 TP + FP + FN = 0
    brier        mean (p - y)^2
    ece          expected calibration error, 15 equal-width bins over [0, 1]:
                 ECE = sum_b (n_b / N) |mean(p in b) - fraction of positives in b|
                 bin b = [b/B, (b+1)/B) with the last bin closed, so p = 1.0 is in the last bin
    ece_adaptive the same sum over 15 equal-mass bins: the examples sorted by p (stable sort, so
                 ties keep input order) are cut into B consecutive groups whose sizes differ by
                 at most one (the first N mod B groups get the extra example)

:func:`ece_paper` reproduces the reference implementation's variant for comparison only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

BinStrategy = Literal["uniform", "quantile"]
CLASSIFICATION_KEYS: tuple[str, ...] = ("auroc", "ap", "f1", "brier", "ece", "ece_adaptive")
DEFAULT_BINS = 15


def check_binary(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and probabilities; return (y as int64, p as float64).

    Raises ValueError naming the first offending position when y is not in {0, 1}, p is not a
    finite value in [0, 1], the arrays are not 1-d, differ in length, or are empty.
    """
    y_arr = np.asarray(y)
    p_arr = np.asarray(p, dtype=np.float64)
    if y_arr.ndim != 1 or p_arr.ndim != 1:
        raise ValueError(f"y and p must be 1-d; got shapes {y_arr.shape} and {p_arr.shape}")
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p differ in length: {y_arr.shape[0]} vs {p_arr.shape[0]}")
    if y_arr.size == 0:
        raise ValueError("y and p are empty: there is nothing to evaluate")
    bad_y = np.flatnonzero((y_arr != 0) & (y_arr != 1))
    if bad_y.size:
        i = int(bad_y[0])
        raise ValueError(f"labels must be 0 or 1; position {i} holds {y_arr[i]!r}")
    bad_p = np.flatnonzero(~np.isfinite(p_arr) | (p_arr < 0.0) | (p_arr > 1.0))
    if bad_p.size:
        i = int(bad_p[0])
        raise ValueError(
            f"probabilities must be finite and in [0, 1]; position {i} holds {p_arr[i]!r}"
        )
    return y_arr.astype(np.int64), p_arr


def _bin_ids(p: np.ndarray, bins: int, strategy: BinStrategy) -> np.ndarray:
    """Bin index in [0, bins) of every probability (see module docstring for the two schemes)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
        # side="right": a value equal to an inner edge opens the next bin, [lo, hi).
        ids = np.searchsorted(edges, p, side="right") - 1
        return np.clip(ids, 0, bins - 1)
    if strategy == "quantile":
        order = np.argsort(p, kind="stable")
        sizes = np.full(bins, p.size // bins)
        sizes[: p.size % bins] += 1
        ids = np.empty(p.size, dtype=np.int64)
        ids[order] = np.repeat(np.arange(bins), sizes)
        return ids
    raise ValueError(f"unknown bin strategy {strategy!r}; use 'uniform' or 'quantile'")


def reliability(
    y: np.ndarray, p: np.ndarray, bins: int = DEFAULT_BINS, strategy: BinStrategy = "uniform"
) -> list[dict[str, float]]:
    """Per-bin data for a reliability diagram; only bins holding at least one example.

    Each entry: ``bin`` (bin number in 0..bins-1, int; empty bins are skipped, so numbers can
    jump), ``lo``, ``hi`` (bin bounds: the fixed edges for "uniform"; the smallest and largest
    p inside the bin for "quantile"), ``n`` (count, int), ``mean_p`` (mean predicted
    probability in the bin), ``frac_pos`` (share of y = 1 in the bin).
    ECE = sum over entries of n / N * |mean_p - frac_pos|.
    """
    y_arr, p_arr = check_binary(y, p)
    ids = _bin_ids(p_arr, bins, strategy)
    n = np.bincount(ids, minlength=bins)
    sum_p = np.bincount(ids, weights=p_arr, minlength=bins)
    sum_y = np.bincount(ids, weights=y_arr.astype(np.float64), minlength=bins)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
        lo, hi = edges[:-1], edges[1:]
    else:
        lo = np.full(bins, np.inf)
        hi = np.full(bins, -np.inf)
        np.minimum.at(lo, ids, p_arr)
        np.maximum.at(hi, ids, p_arr)
    out: list[dict[str, float]] = []
    for b in np.flatnonzero(n):
        out.append(
            {
                "bin": int(b),
                "lo": float(lo[b]),
                "hi": float(hi[b]),
                "n": int(n[b]),
                "mean_p": float(sum_p[b] / n[b]),
                "frac_pos": float(sum_y[b] / n[b]),
            }
        )
    return out


def ece(
    y: np.ndarray, p: np.ndarray, bins: int = DEFAULT_BINS, strategy: BinStrategy = "uniform"
) -> float:
    """ECE = sum_b (n_b / N) |mean(p in b) - fraction of positives in b| (unit: probability).

    ``strategy="uniform"``: equal-width bins over [0, 1]; ``"quantile"``: equal-mass bins.
    """
    table = reliability(y, p, bins, strategy)
    total = sum(row["n"] for row in table)
    return float(sum(row["n"] / total * abs(row["mean_p"] - row["frac_pos"]) for row in table))


def ece_paper(y: np.ndarray, p: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """The reference implementation's ECE, reproduced for ``--protocol paper`` comparisons.

    Source: aryashah2k/PI-Indic-Align, ``src/metrics.py``, function
    ``expected_calibration_error`` (commit a7d6877f5ddff2ba8557e2651ebea30a6e23eec0). Its
    definition, rewritten here:

        edges = 16 equally spaced points on [0, 1] (for bins = 15); bin of p = the i with
        edges[i] <= p < edges[i + 1], i in 0..bins-1 (numpy.digitize - 1). p = 1.0 falls past
        the last edge and is therefore in *no* bin, but still counts in N.
        ECE_paper = sum_b (n_b / N) |acc_b - conf_b|,
        conf_b = mean(p in b)                          (mean P(y = 1), not max(p, 1 - p))
        acc_b  = mean(1[y == 1[p >= 0.5]] in b)        (accuracy of the argmax prediction)

    Comparing P(y = 1) with argmax accuracy mixes two quantities: in bins below 0.5 a perfectly
    calibrated model scores |(1 - p) - p| instead of 0. That is why the default protocol uses
    :func:`ece` instead.
    """
    y_arr, p_arr = check_binary(y, p)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges, p_arr, side="right") - 1  # == np.digitize(p, edges) - 1
    keep = ids < bins  # p == 1.0 lands on index `bins`: dropped, as in the reference
    ids_k = ids[keep]
    correct = (y_arr == (p_arr >= 0.5)).astype(np.float64)[keep]
    n = np.bincount(ids_k, minlength=bins).astype(np.float64)
    sum_p = np.bincount(ids_k, weights=p_arr[keep], minlength=bins)
    sum_c = np.bincount(ids_k, weights=correct, minlength=bins)
    nz = n > 0
    gaps = np.abs(sum_c[nz] / n[nz] - sum_p[nz] / n[nz])
    return float(np.sum(n[nz] / p_arr.size * gaps))


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive class predicting 1 iff p >= threshold; 0.0 if 2TP + FP + FN = 0."""
    y_arr, p_arr = check_binary(y, p)
    pred = p_arr >= threshold
    tp = int(np.sum(pred & (y_arr == 1)))
    fp = int(np.sum(pred & (y_arr == 0)))
    fn = int(np.sum(~pred & (y_arr == 1)))
    denom = 2 * tp + fp + fn
    return 0.0 if denom == 0 else 2.0 * tp / denom


def classification_metrics(
    y: np.ndarray, p: np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, float]:
    """All T4 metrics of :data:`CLASSIFICATION_KEYS` (see module docstring for formulas).

    AUROC and AP are NaN when ``y`` holds a single class (they are undefined there).
    """
    y_arr, p_arr = check_binary(y, p)
    both_classes = 0 < int(y_arr.sum()) < y_arr.size
    return {
        "auroc": float(roc_auc_score(y_arr, p_arr)) if both_classes else float("nan"),
        "ap": float(average_precision_score(y_arr, p_arr)) if both_classes else float("nan"),
        "f1": f1_at(y_arr, p_arr, 0.5),
        "brier": float(np.mean((p_arr - y_arr) ** 2)),
        "ece": ece(y_arr, p_arr, bins, "uniform"),
        "ece_adaptive": ece(y_arr, p_arr, bins, "quantile"),
    }


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC and AP of raw scores of any scale (zero-shot cosine, BM25): ranking metrics
    need no probabilities. NaN when ``y`` holds a single class."""
    y_arr = np.asarray(y).astype(np.int64)
    s_arr = np.asarray(scores, dtype=np.float64)
    if y_arr.shape != s_arr.shape or not np.isfinite(s_arr).all():
        raise ValueError("scores must be finite and shaped like y")
    both_classes = 0 < int(y_arr.sum()) < y_arr.size
    if not both_classes:
        return {"auroc": float("nan"), "ap": float("nan")}
    return {"auroc": float(roc_auc_score(y_arr, s_arr)),
            "ap": float(average_precision_score(y_arr, s_arr))}
