"""Blocked gold-rank scoring against hand-computed ranks and the full-matrix reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personalign.scoring import block_rows, gold_ranks, l2_normalise, paired_scores


def test_hand_computed_ranks_with_ties() -> None:
    # scores = q @ c.T:
    # q0: [0.9, 0.5, 0.9, 0.1] gold 0 -> one tie, none higher -> rank 1.5
    # q1: [0.2, 0.8, 0.3, 0.8] gold 2 -> two higher (0.8, 0.8)  -> rank 3
    # q2: [0.4, 0.4, 0.4, 0.4] gold 3 -> three ties             -> rank 2.5
    scores = np.array([[0.9, 0.5, 0.9, 0.1], [0.2, 0.8, 0.3, 0.8], [0.4, 0.4, 0.4, 0.4]],
                      dtype=np.float32)
    q = scores  # queries as rows, corpus = identity -> q @ I = scores
    c = np.eye(4, dtype=np.float32)
    res = gold_ranks(q, c, np.array([0, 2, 3]))
    assert res.rank.tolist() == [1.5, 3.0, 2.5]
    assert res.ties.tolist() == [1, 0, 3]
    assert res.top1.tolist() == [0, 1, 0]
    np.testing.assert_allclose(res.gold_score, [0.9, 0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("memory_mb", [1e-6, 0.0001, 64.0])
def test_blocking_does_not_change_ranks(memory_mb: float) -> None:
    rng = np.random.default_rng(0)
    q = l2_normalise(rng.normal(size=(37, 8)))
    c = l2_normalise(rng.normal(size=(29, 8)))
    gold = rng.integers(0, 29, size=37)
    full = q @ c.T
    expect = 1 + (full > full[np.arange(37), gold][:, None]).sum(1)
    res = gold_ranks(q, c, gold, memory_mb=memory_mb)
    np.testing.assert_array_equal(res.rank, expect)


def test_block_rows_bounds_memory() -> None:
    # 64 MiB / (4 bytes * 50,000) = 335 rows: a 50k x 50k pair never needs more.
    assert block_rows(50_000, 64.0) == 335
    assert block_rows(10, 1e-9) == 1


def test_sparse_equals_dense() -> None:
    rng = np.random.default_rng(1)
    q = (rng.random((6, 5)) > 0.5).astype(np.float32)
    c = (rng.random((7, 5)) > 0.5).astype(np.float32)
    gold = np.array([0, 1, 2, 3, 4, 5])
    dense = gold_ranks(q, c, gold)
    sparse = gold_ranks(sp.csr_matrix(q), sp.csr_matrix(c), gold)
    np.testing.assert_array_equal(dense.rank, sparse.rank)
    np.testing.assert_array_equal(dense.ties, sparse.ties)


def test_bad_gold_is_rejected() -> None:
    with pytest.raises(ValueError):
        gold_ranks(np.ones((2, 2)), np.ones((2, 2)), np.array([0, 2]))


def test_paired_scores_and_normalise() -> None:
    u = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert u[0].tolist() == pytest.approx([0.6, 0.8])
    assert u[1].tolist() == [0.0, 0.0]
    v = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert paired_scores(u, v).tolist() == pytest.approx([0.6, 0.0])
    assert paired_scores(sp.csr_matrix(u), sp.csr_matrix(v)).tolist() == pytest.approx(
        [0.6, 0.0])
