"""Bootstrap confidence intervals, paired tests and Holm correction over per-query values.

Conventions shared by every function here:

- Resampling unit = query. A bootstrap resample draws n query indices uniformly with
  replacement; resample r uses the r-th row drawn from ``numpy.random.default_rng(seed)``,
  one ``rng.integers(0, n, size=n)`` call per row, so the same seed and n give the same
  resampled indices in :func:`bootstrap_ci`, :func:`bootstrap_ci_groups`,
  :func:`bootstrap_means` and :func:`paired_bootstrap` (rows are only batched for speed).
- Intervals are percentile intervals: the alpha/2 and 1 - alpha/2 quantiles (numpy
  "linear" interpolation) of the statistic over the resamples.
- p-values are two-sided and never 0 for Monte-Carlo tests: (1 + #extreme) / (1 + R).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Upper bound on the number of elements materialised per batch of resamples (~64 MB of
# float64): keeps memory flat when n is large (e.g. 10^4 queries x 132 language pairs).
_BATCH_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a bootstrap percentile interval (and optional p-value).

    ``to_dict`` returns plain floats with non-finite values as None, ready for JSON.
    """

    point: float
    lo: float
    hi: float
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: json_float(value) for key, value in asdict(self).items()}


def json_float(value: float | None) -> float | None:
    """``float(value)`` if finite, else None (JSON has no NaN or infinity)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _check_resamples(n_resamples: int) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def resample_indices(
    n: int, n_resamples: int, seed: int, batch_rows: int | None = None
) -> Iterator[np.ndarray]:
    """Yield batches (shape (rows, n), int64) of bootstrap query indices, ``n_resamples`` rows.

    Row r is the r-th ``rng.integers(0, n, size=n)`` draw of ``default_rng(seed)``, whatever
    the batch size, so results never depend on batching.
    """
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample (n = 0)")
    _check_resamples(n_resamples)
    rng = np.random.default_rng(seed)
    rows = batch_rows if batch_rows is not None else max(1, _BATCH_ELEMENTS // n)
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        yield np.stack([rng.integers(0, n, size=n) for _ in range(take)])
        done += take


def percentile_interval(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    """(alpha/2, 1 - alpha/2) percentiles of the finite values in ``samples``; NaN if none."""
    _check_alpha(alpha)
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(lo), float(hi)


def bootstrap_ci(
    values: np.ndarray,
    stat: Callable[..., Any] = np.mean,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of ``stat`` over per-query ``values``: (point, lo, hi).

    ``stat`` is a numpy-style reduction called as ``stat(x, axis=-1)`` on a (rows, n) array of
    resampled values (np.mean, np.median, ...); ``point = stat(values)`` on the original data.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-d (one value per query), got shape {v.shape}")
    _check_alpha(alpha)
    point = float(stat(v[None, :], axis=-1)[0])
    boot = np.concatenate(
        [np.asarray(stat(v[idx], axis=-1), dtype=np.float64)
         for idx in resample_indices(v.size, n_resamples, seed)]
    )
    lo, hi = percentile_interval(boot, alpha)
    return point, lo, hi


def bootstrap_distribution_groups(
    arrays: Sequence[np.ndarray],
    stat: Callable[..., Any],
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """(point, bootstrap samples of shape (n_resamples,)) for :func:`bootstrap_ci_groups`."""
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not arrs:
        raise ValueError("arrays is empty: pass at least one per-query array")
    n = arrs[0].shape[0] if arrs[0].ndim else 0
    for i, a in enumerate(arrs):
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(
                f"all arrays must share the query axis 0 of length {n}; array {i} has shape "
                f"{a.shape}"
            )
    point = float(np.asarray(stat(*[a[None] for a in arrs]))[0])
    per_row = sum(a.size for a in arrs) or 1
    rows = max(1, _BATCH_ELEMENTS // per_row)
    chunks = [
        np.asarray(stat(*[a[idx] for a in arrs]), dtype=np.float64).reshape(-1)
        for idx in resample_indices(n, n_resamples, seed, batch_rows=rows)
    ]
    return point, np.concatenate(chunks)


def bootstrap_ci_groups(
    arrays: Sequence[np.ndarray],
    stat: Callable[..., Any],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap of a statistic of several query-aligned arrays: (point, lo, hi).

    All arrays share axis 0 = query (same length n, same query order, e.g. aligned pair ids);
    every resample draws one set of n query indices and applies it to *all* arrays jointly.
    ``stat(*resampled)`` receives each array with a leading resample axis, shape
    (rows, n, ...), and must return shape (rows,). Example, the ratio of two means:
    ``stat = lambda a, b: a.mean(axis=1) / b.mean(axis=1)``. The point estimate is
    ``stat`` on the original arrays (each given shape (1, n, ...)).
    """
    _check_alpha(alpha)
    point, boot = bootstrap_distribution_groups(arrays, stat, n_resamples, seed)
    lo, hi = percentile_interval(boot, alpha)
    return point, lo, hi


def bootstrap_means(matrix: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Column means of ``matrix`` (shape (n, k) or (n,)) under each bootstrap resample.

    Returns shape (n_resamples, k) (or (n_resamples,) for 1-d input). Uses the same
    resampled indices as the other functions here with the same seed, but computes each
    mean as counts @ matrix / n (counts = how often each query was drawn), which is much
    faster than gathering rows when k is large.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim not in (1, 2):
        raise ValueError(f"matrix must be 1-d or 2-d (queries x columns), got shape {m.shape}")
    n = m.shape[0]
    out = []
    for idx in resample_indices(n, n_resamples, seed):
        rows = idx.shape[0]
        offsets = (np.arange(rows) * n)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=rows * n).reshape(rows, n)
        out.append(counts.astype(np.float64) @ m / n)
    return np.concatenate(out, axis=0)


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    stat: Callable[..., Any] = np.mean,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap of ``stat(a) - stat(b)`` over the same queries.

    Returns ``diff`` (observed difference), ``lo``/``hi`` (percentile interval of the
    resampled difference d*) and ``p_value``, two-sided, from the bootstrap distribution
    shifted to the null of no difference: p = (1 + #{|d* - diff| >= |diff|}) / (1 + R).
    ``stat`` is a reduction called with ``axis=-1`` (see :func:`bootstrap_ci`).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be 1-d and aligned by query; got {x.shape} and {y.shape}")
    _check_alpha(alpha)

    def diff_stat(xs: np.ndarray, ys: np.ndarray) -> Any:
        return np.asarray(stat(xs, axis=-1)) - np.asarray(stat(ys, axis=-1))

    diff, boot = bootstrap_distribution_groups([x, y], diff_stat, n_resamples, seed)
    lo, hi = percentile_interval(boot, alpha)
    return {"diff": diff, "lo": lo, "hi": hi, "p_value": bootstrap_p_value(boot, diff)}


def bootstrap_p_value(boot: np.ndarray, observed: float) -> float:
    """Two-sided p-value of ``observed`` against the null-shifted bootstrap distribution.

    p = (1 + #{|boot - observed| >= |observed|}) / (1 + R), with a relative tolerance of
    1e-12 so that exact ties are not lost to rounding. NaN if ``observed`` is not finite.
    """
    if not math.isfinite(observed):
        return float("nan")
    b = np.asarray(boot, dtype=np.float64)
    b = b[np.isfinite(b)]
    threshold = abs(observed) * (1.0 - 1e-12)
    extreme = int(np.sum(np.abs(b - observed) >= threshold))
    return (1.0 + extreme) / (1.0 + b.size)


def paired_permutation_test(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 10000, seed: int = 0
) -> float:
    """Two-sided sign-flip permutation test of mean(a - b) = 0 for paired per-query values.

    d = a - b; T = |mean(s * d)| over sign vectors s in {-1, +1}^n. If 2^n <= n_resamples all
    2^n sign vectors are enumerated and p = #{T_s >= T_obs} / 2^n exactly. Otherwise
    ``n_resamples`` random sign vectors are drawn from ``default_rng(seed)`` and
    p = (1 + #{T_s >= T_obs}) / (1 + n_resamples). Comparisons use a relative tolerance of
    1e-12 so that sign vectors tying the observed value count as extreme despite rounding.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be 1-d and aligned by query; got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("a and b are empty")
    _check_resamples(n_resamples)
    d = x - y
    n = d.size
    if not np.isfinite(d).all():
        raise ValueError("a and b must be finite")
    observed = abs(float(d.mean()))
    threshold = observed * (1.0 - 1e-12)
    if n < 63 and (1 << n) <= n_resamples:
        # All 2^n sign vectors: bit j of the vector number decides the sign of d[j].
        codes = np.arange(1 << n, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
        null = np.abs(signs @ d) / n
        return float(np.sum(null >= threshold)) / float(1 << n)
    rng = np.random.default_rng(seed)
    rows = max(1, _BATCH_ELEMENTS // n)
    extreme = 0
    done = 0
    while done < n_resamples:
        take = min(rows, n_resamples - done)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(take, n))
        extreme += int(np.sum(np.abs(signs @ d) / n >= threshold))
        done += take
    return (1.0 + extreme) / (1.0 + n_resamples)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order.

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m):
    adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j)). Adjusted values are monotone in the
    raw ones and capped at 1. Reject hypothesis i at level alpha iff adj_i <= alpha.
    """
    p = np.asarray(list(p_values), dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p_values must be a flat sequence")
    if p.size == 0:
        return []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1] and not be NaN; got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return [float(v) for v in adjusted]
