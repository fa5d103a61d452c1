"""Blocked gold-rank scoring: never holds the full query x corpus score matrix.

For query i with gold corpus item g(i) and scores s_ij = <q_i, c_j>:

    higher_i = #{j : s_ij > s_ig}          ties_i = #{j != g : s_ij == s_ig}
    rank_i   = 1 + higher_i + ties_i / 2    (expected rank under random tie-breaking)

Queries are processed in blocks so that a block's scores fit in ``memory_mb``; the peak
extra memory is one (block x corpus) float32 matrix, e.g. 64 MiB for a 50,000-item corpus
and a 335-query block, however many queries there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

# Dense float arrays or scipy CSR matrices (lexical baselines); typed loosely because
# scipy.sparse ships no precise stubs.
Matrix: TypeAlias = Any


@dataclass(frozen=True)
class GoldRanks:
    rank: np.ndarray  # float64 (n_queries,), expected rank of the gold item, 1-based
    ties: np.ndarray  # int64, corpus items (other than gold) scoring exactly the gold score
    gold_score: np.ndarray  # float32
    top1: np.ndarray  # int64, index of the best-scoring corpus item (first on ties)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def block_rows(n_corpus: int, memory_mb: float) -> int:
    """Query rows per block so that a float32 (rows x n_corpus) block fits ``memory_mb``."""
    return max(1, int(memory_mb * 2**20 // (4 * max(1, n_corpus))))


def gold_ranks(
    queries: Matrix,
    corpus: Matrix,
    gold: np.ndarray,
    *,
    memory_mb: float = 64.0,
) -> GoldRanks:
    """Rank of ``corpus[gold[i]]`` among all corpus items for each query i.

    ``queries`` (n_q x d) and ``corpus`` (n_c x d) are dense arrays or CSR matrices whose row
    dot products are the scores (pass L2-normalised rows for cosine).
    """
    gold = np.asarray(gold, dtype=np.int64)
    n_q = queries.shape[0]
    n_c = corpus.shape[0]
    if gold.shape != (n_q,):
        raise ValueError(f"gold has shape {gold.shape}, expected ({n_q},)")
    if n_q and (gold.min() < 0 or gold.max() >= n_c):
        raise ValueError("gold index outside the corpus")
    sparse = sp.issparse(queries)
    corpus_t = corpus.T.tocsr() if sparse else np.ascontiguousarray(corpus, np.float32).T
    rank = np.empty(n_q, dtype=np.float64)
    ties = np.empty(n_q, dtype=np.int64)
    gscore = np.empty(n_q, dtype=np.float32)
    top1 = np.empty(n_q, dtype=np.int64)
    step = block_rows(n_c, memory_mb)
    for start in range(0, n_q, step):
        stop = min(n_q, start + step)
        if sparse:
            block = np.asarray((queries[start:stop] @ corpus_t).todense(), dtype=np.float32)
        else:
            block = np.asarray(queries[start:stop], np.float32) @ corpus_t
        rows = np.arange(stop - start)
        g = block[rows, gold[start:stop]]
        higher = (block > g[:, None]).sum(axis=1)
        equal = (block == g[:, None]).sum(axis=1) - 1
        rank[start:stop] = 1.0 + higher + equal / 2.0
        ties[start:stop] = equal
        gscore[start:stop] = g
        top1[start:stop] = block.argmax(axis=1)
    return GoldRanks(rank=rank, ties=ties, gold_score=gscore, top1=top1)


def paired_scores(u: Matrix, v: Matrix) -> np.ndarray:
    """Row-wise dot products <u_i, v_i> (cosine when rows are L2-normalised)."""
    if sp.issparse(u):
        return np.asarray(u.multiply(v).sum(axis=1)).ravel().astype(np.float32)
    return np.einsum("ij,ij->i", np.asarray(u, np.float32), np.asarray(v, np.float32))
