"""Retrieval metrics from per-query gold ranks (one relevant item per query).

Protocol (DESIGN.md section 3): for each query the corpus holds exactly one gold item. Its rank
is the expected rank under random tie-breaking,

    rank = 1 + #(items scoring strictly higher than gold) + #(other items scoring equal) / 2,

so it is a float >= 1 and a multiple of 0.5. Every metric below is a mean over queries of a
per-query value computed from that rank alone:

    recall@k  = 1[rank <= k]                                   (k = 1, 5, 10)
    mrr@10    = 1 / rank            if rank <= 10 else 0
    ndcg@10   = 1 / log2(1 + rank)  if rank <= 10 else 0       (one relevant item: IDCG = 1)
    mean_rank = rank

A tied rank such as 1.5 is *not* a hit at k = 1 (1.5 > 1): the definitions compare the expected
rank with k, exactly as written in the protocol. Per-query values are kept
(:func:`per_query_retrieval`) because they feed bootstrap intervals and paired tests.
"""

from __future__ import annotations

import numpy as np

RETRIEVAL_KEYS: tuple[str, ...] = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "mean_rank",
)
RECALL_KS: tuple[int, ...] = (1, 5, 10)
CUTOFF = 10  # cutoff of MRR and nDCG


def check_ranks(ranks: np.ndarray) -> np.ndarray:
    """Return ``ranks`` as a 1-d float64 array after checking it is a valid rank vector.

    Valid: non-empty, 1-d, finite, every value >= 1. Raises ValueError saying which query
    (0-based position) is wrong otherwise.
    """
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"ranks must be a 1-d array (one rank per query), got shape {r.shape}")
    if r.size == 0:
        raise ValueError("ranks is empty: there are no queries to evaluate")
    bad = np.flatnonzero(~np.isfinite(r) | (r < 1.0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"ranks must be finite and >= 1 (1-based); query {i} has rank {r[i]!r} "
            f"({bad.size} invalid value(s) in total)"
        )
    return r


def expected_rank(n_higher: np.ndarray, n_ties: np.ndarray) -> np.ndarray:
    """Expected 1-based rank under random tie-breaking: ``1 + n_higher + n_ties / 2``.

    ``n_higher``: per query, the number of corpus items scoring strictly higher than the gold
    item; ``n_ties``: the number of *other* items scoring exactly equal to it. Both are counts
    (non-negative integers); a blocked scorer may sum them over corpus blocks before calling.
    """
    higher = np.asarray(n_higher)
    ties = np.asarray(n_ties)
    if higher.shape != ties.shape:
        raise ValueError(f"n_higher {higher.shape} and n_ties {ties.shape} differ in shape")
    if (higher < 0).any() or (ties < 0).any():
        raise ValueError("n_higher and n_ties are counts and must be >= 0")
    return 1.0 + higher.astype(np.float64) + ties.astype(np.float64) / 2.0


def ranks_from_scores(scores: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference ranking of a full score matrix: gold rank and tie count per query.

    ``scores``: shape (n_queries, n_corpus), higher = more similar (e.g. cosine);
    ``gold``: shape (n_queries,), integer column index of each query's gold item.

    Returns ``(ranks, ties)``: ``ranks`` float64 as in :func:`expected_rank`, ``ties`` int64 =
    number of *other* corpus items whose score equals the gold score exactly. This is the
    plain O(n_queries * n_corpus) reference the blocked scorer is checked against.
    Raises ValueError on NaN scores, wrong shapes or out-of-range gold indices.
    """
    s = np.asarray(scores)
    g = np.asarray(gold)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-d (n_queries, n_corpus), got shape {s.shape}")
    if g.shape != (s.shape[0],):
        raise ValueError(
            f"gold must have one index per query: shape ({s.shape[0]},), got {g.shape}"
        )
    if not np.issubdtype(g.dtype, np.integer):
        raise ValueError(f"gold must hold integer column indices, got dtype {g.dtype}")
    if s.shape[0] == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    if g.min() < 0 or g.max() >= s.shape[1]:
        raise ValueError(
            f"gold indices must lie in [0, {s.shape[1] - 1}]; got min {g.min()}, max {g.max()}"
        )
    if np.issubdtype(s.dtype, np.inexact) and np.isnan(s).any():
        row = int(np.flatnonzero(np.isnan(s).any(axis=1))[0])
        raise ValueError(f"scores contain NaN (first in query row {row}); NaN cannot be ranked")
    gold_scores = s[np.arange(s.shape[0]), g][:, None]
    n_higher = (s > gold_scores).sum(axis=1, dtype=np.int64)
    n_ties = (s == gold_scores).sum(axis=1, dtype=np.int64) - 1  # minus the gold item itself
    return expected_rank(n_higher, n_ties), n_ties


def per_query_retrieval(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query value of every metric in :data:`RETRIEVAL_KEYS` (float64 arrays).

    See the module docstring for the formulas. The mean of each array is the metric reported
    by :func:`retrieval_metrics`.
    """
    r = check_ranks(ranks)
    within = r <= CUTOFF
    out: dict[str, np.ndarray] = {}
    for k in RECALL_KS:
        out[f"recall@{k}"] = (r <= k).astype(np.float64)
    out["mrr@10"] = np.where(within, 1.0 / r, 0.0)
    out["ndcg@10"] = np.where(within, 1.0 / np.log2(1.0 + r), 0.0)
    out["mean_rank"] = r.copy()
    return out


def retrieval_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Mean over queries of each per-query metric: recall@1/5/10, mrr@10, ndcg@10, mean_rank.

    ``ranks``: per-query 1-based expected gold ranks (see module docstring). All values are
    shares or means in [0, 1] except ``mean_rank`` (in rank units, >= 1).
    """
    return {key: float(values.mean()) for key, values in per_query_retrieval(ranks).items()}
