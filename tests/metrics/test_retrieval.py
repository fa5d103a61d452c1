"""Retrieval metrics: hand-computed fixtures (with ties) and pytrec_eval / ranx cross-checks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from personalign.metrics.retrieval import (
    RETRIEVAL_KEYS,
    expected_rank,
    per_query_retrieval,
    ranks_from_scores,
    retrieval_metrics,
)

# 4 queries x 4 corpus items; gold column per query.
SCORES = np.array(
    [
        [0.9, 0.5, 0.1, 0.3],  # gold 0: nothing higher              -> rank 1
        [0.7, 0.7, 0.7, 0.2],  # gold 1: 0 higher, 2 ties             -> rank 1 + 2/2 = 2
        [0.1, 0.9, 0.8, 0.4],  # gold 3: 0.9 and 0.8 higher           -> rank 3
        [0.5, 0.5, 0.9, 0.1],  # gold 0: 0.9 higher, one tie          -> rank 1 + 1 + 1/2 = 2.5
    ]
)
GOLD = np.array([0, 1, 3, 0])


def test_ranks_from_scores_hand_fixture_with_ties() -> None:
    ranks, ties = ranks_from_scores(SCORES, GOLD)
    assert ranks.tolist() == [1.0, 2.0, 3.0, 2.5]
    assert ties.tolist() == [0, 2, 0, 1]
    assert ranks.dtype == np.float64 and ties.dtype == np.int64


def test_metrics_hand_fixture() -> None:
    m = retrieval_metrics(np.array([1.0, 2.0, 3.0, 2.5]))
    assert set(m) == set(RETRIEVAL_KEYS)
    assert m["recall@1"] == pytest.approx(0.25)  # 2.5 and 2 are not <= 1
    assert m["recall@5"] == pytest.approx(1.0)
    assert m["recall@10"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 2.5) / 4)
    ndcg = (1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(3.5)) / 4
    assert m["ndcg@10"] == pytest.approx(ndcg)
    assert m["mean_rank"] == pytest.approx(8.5 / 4)


def test_cutoff_at_ten_including_a_tie_straddling_it() -> None:
    per = per_query_retrieval(np.array([10.0, 10.5, 11.0, 5.0, 5.5]))
    assert per["recall@10"].tolist() == [1, 0, 0, 1, 1]
    assert per["recall@5"].tolist() == [0, 0, 0, 1, 0]
    assert per["mrr@10"].tolist() == pytest.approx([0.1, 0, 0, 0.2, 1 / 5.5])
    assert per["ndcg@10"].tolist() == pytest.approx(
        [1 / math.log2(11), 0, 0, 1 / math.log2(6), 1 / math.log2(6.5)]
    )
    assert per["mean_rank"].tolist() == [10.0, 10.5, 11.0, 5.0, 5.5]


def test_expected_rank_adds_up_over_corpus_blocks() -> None:
    # A blocked scorer sums counts per block; the rank must equal the full-matrix one.
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(6, 23)).astype(float)  # many ties
    gold = rng.integers(0, 23, size=6)
    ref_ranks, ref_ties = ranks_from_scores(scores, gold)
    g = scores[np.arange(6), gold][:, None]
    higher = np.zeros(6, dtype=np.int64)
    equal = np.zeros(6, dtype=np.int64)
    for start in range(0, 23, 7):
        block = scores[:, start:start + 7]
        higher += (block > g).sum(axis=1)
        equal += (block == g).sum(axis=1)
    np.testing.assert_array_equal(expected_rank(higher, equal - 1), ref_ranks)
    np.testing.assert_array_equal(equal - 1, ref_ties)


@pytest.mark.parametrize(
    "ranks", [np.array([0.5, 1.0]), np.array([1.0, np.nan]), np.array([]), np.ones((2, 2))]
)
def test_invalid_ranks_are_rejected(ranks: np.ndarray) -> None:
    with pytest.raises(ValueError):
        retrieval_metrics(ranks)


def test_ranks_from_scores_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(np.array([[0.1, np.nan]]), np.array([0]))
    with pytest.raises(ValueError, match="gold indices"):
        ranks_from_scores(SCORES, np.array([0, 1, 4, 0]))
    with pytest.raises(ValueError, match="integer"):
        ranks_from_scores(SCORES, GOLD.astype(float))
    with pytest.raises(ValueError, match="one index per query"):
        ranks_from_scores(SCORES, GOLD[:3])


def _tie_free_fixture() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n_q, n_d = 60, 40
    scores = rng.random((n_q, n_d))
    gold = rng.integers(0, n_d, size=n_q)
    # Push a third of the golds to the top so every metric sees a spread of ranks.
    boost = rng.random(n_q) < 0.33
    scores[np.flatnonzero(boost), gold[boost]] += 1.0
    return scores, gold


def _run_and_qrels(
    scores: np.ndarray, gold: np.ndarray, top: int | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    run: dict[str, dict[str, float]] = {}
    for q in range(scores.shape[0]):
        order = np.argsort(-scores[q])[: top or scores.shape[1]]
        run[f"q{q}"] = {f"d{d}": float(scores[q, d]) for d in order}
    qrels = {f"q{q}": {f"d{gold[q]}": 1} for q in range(scores.shape[0])}
    return run, qrels


def test_against_pytrec_eval() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    scores, gold = _tie_free_fixture()
    ranks, ties = ranks_from_scores(scores, gold)
    assert ties.sum() == 0
    ours = retrieval_metrics(ranks)
    run, qrels = _run_and_qrels(scores, gold)
    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.10", "recall.1,5,10", "success.1,5,10"}
    )
    res = evaluator.evaluate(run)

    def mean(measure: str, source: dict[str, dict[str, float]] = res) -> float:
        return float(np.mean([source[q][measure] for q in source]))

    for k in (1, 5, 10):
        assert ours[f"recall@{k}"] == pytest.approx(mean(f"recall_{k}"), abs=1e-9)
        assert ours[f"recall@{k}"] == pytest.approx(mean(f"success_{k}"), abs=1e-9)
    assert ours["ndcg@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-9)
    # MRR@10: reciprocal rank on the run truncated to its top 10.
    run10, _ = _run_and_qrels(scores, gold, top=10)
    res10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run10)
    assert ours["mrr@10"] == pytest.approx(mean("recip_rank", res10), abs=1e-9)


_RANX_SCRIPT = """
import json, sys
import ranx
data = json.load(sys.stdin)
res = ranx.evaluate(ranx.Qrels(data["qrels"]), ranx.Run(data["run"]), data["metrics"])
print(json.dumps({k: float(v) for k, v in res.items()}))
"""


def test_against_ranx() -> None:
    pytest.importorskip("ranx")
    scores, gold = _tie_free_fixture()
    ours = retrieval_metrics(ranks_from_scores(scores, gold)[0])
    run, qrels = _run_and_qrels(scores, gold)
    names = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"]
    # ranx compiles its metrics with numba (~50 s cold); in a child process with the JIT off
    # the same Python code runs in a few seconds and leaves this process's numba alone.
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", _RANX_SCRIPT],
        input=json.dumps({"run": run, "qrels": qrels, "metrics": names}),
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in names:
        assert ours[name] == pytest.approx(res[name], abs=1e-9), name
