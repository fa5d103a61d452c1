"""End-to-end engine tests with the keyword mock encoder: exact ranks, single encoding,
cache reuse, results files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from personalign.embeddings import EvalModel
from personalign.report.write import write_run
from personalign.runner import RunConfig, evaluate
from personalign.store import EmbeddingStore
from tests.keyword_encoder import N_PAIRS, KeywordEncoder, prompt, toy_dataset


def _run(tmp_path: Path, enc: KeywordEncoder, tasks: list[str] | None = None):  # type: ignore[no-untyped-def]
    model = EvalModel("keyword-mock", enc, prompt=prompt, batch_size=7)
    config = RunConfig(tasks=tasks or ["t1", "t2", "t3", "t4"])  # type: ignore[arg-type]
    return evaluate(toy_dataset(), [model], config, EmbeddingStore(tmp_path / "cache")), model


def test_ranks_are_exact(tmp_path: Path) -> None:
    out, _ = _run(tmp_path, KeywordEncoder())
    t1 = {e["query_lang"]: e for e in out.entries if e["task"] == "t1"}
    assert set(t1) == {"eng_Latn", "hin_Deva"}
    for entry in t1.values():
        m = entry["metrics"]
        assert entry["n"] == N_PAIRS
        assert m["recall@1"] == pytest.approx((N_PAIRS - 1) / N_PAIRS)  # persona 0 ties
        assert m["recall@5"] == 1.0
        assert m["mrr@10"] == pytest.approx((N_PAIRS - 1 + 1 / 1.5) / N_PAIRS)
        assert m["ties"] == 1
    t2 = [e for e in out.entries if e["task"] == "t2"]
    assert {(e["query_lang"], e["corpus_lang"]) for e in t2} == {
        ("eng_Latn", "hin_Deva"), ("hin_Deva", "eng_Latn")}
    t3 = [e for e in out.entries if e["task"] == "t3"]
    assert len(t3) == 4
    # Reverse: instruction 1 (keyword 1) scores 1/sqrt(2) with persona 0 and 1 with persona
    # 1, so every instruction finds its persona first.
    assert all(e["metrics"]["recall@1"] == 1.0 for e in t3)
    ranks = [r for r, t, p, q in zip(out.per_query["rank"], out.per_query["task"],
                                     out.per_query["pair_id"], out.per_query["query_lang"],
                                     strict=True) if t == "t1" and q == "eng_Latn" and p == "p00"]
    assert ranks == [1.5]


def test_each_text_encoded_once_per_prompt_and_reused(tmp_path: Path) -> None:
    enc = KeywordEncoder()
    first, _ = _run(tmp_path, enc)
    counts = Counter(enc.calls)
    assert counts and max(counts.values()) == 1  # no (prompt, text) encoded twice
    ds = toy_dataset()
    personas = {r.persona for r in ds.records}
    instructions = {r.instruction for r in ds.records}
    negatives = {r.negative for r in ds.records}
    expected = (
        {("query-p2i: ", t) for t in personas}
        | {("document-p2i: ", t) for t in instructions | negatives}
        | {("query-i2p: ", t) for t in instructions}
        | {("document-i2p: ", t) for t in personas}
    )
    assert set(counts) == expected
    enc2 = KeywordEncoder()
    second, _ = _run(tmp_path, enc2)  # same store folder
    assert enc2.calls == []
    assert json.dumps(second.entries, sort_keys=True) == json.dumps(first.entries,
                                                                    sort_keys=True)


def test_t4_uses_authored_negatives_and_reports_them(tmp_path: Path) -> None:
    out, _ = _run(tmp_path, KeywordEncoder(), tasks=["t4"])
    t4 = [e for e in out.entries if e["task"] == "t4"]
    assert {e["query_lang"] for e in t4} == {"eng_Latn", "hin_Deva", "all"}
    for e in t4:
        assert e["negatives"] == ["random", "hard", "authored"]
        m = e["metrics"]
        for key in ("auroc", "ap", "f1", "brier", "ece", "ece_adaptive"):
            assert 0.0 <= m[key] <= 1.0
        # Random and hard negatives share no keyword with the persona: cosine 0 < gold.
        assert m["by_negative"]["random"]["zero_shot_auroc"] == 1.0
    assert out.t4_negatives["types"] == ["random", "hard", "authored"]
    # The toy negative repeats the persona's keyword: cosine ties with the gold -> 1/2 each.
    wins = out.analyses["keyword-mock"]["authored_negative_win_rate"]
    assert wins["eng_Latn"] == {"win_rate": 0.5, "n": 20}
    splits = Counter(zip(out.t4_predictions["pair_id"], out.t4_predictions["split"],
                         strict=True))
    pair_split: dict[str, set[str]] = {}
    for (pid, split) in splits:
        pair_split.setdefault(pid, set()).add(split)
    assert all(len(s) == 1 for s in pair_split.values())  # grouped: one split per pair


def test_results_files(tmp_path: Path) -> None:
    out, model = _run(tmp_path, KeywordEncoder())
    paths = write_run(tmp_path / "out", toy_dataset(), out, config=RunConfig(
        tasks=["t1", "t2", "t3", "t4"]), models=[model], device="cpu")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["schema_version"] == 1
    assert doc["dataset"]["name"] == "toy" and len(doc["dataset"]["fingerprint"]) == 64
    assert doc["environment"]["seed"] == 42
    for entry in doc["results"]:
        assert {"model", "task", "query_lang", "corpus_lang", "n", "metrics"} <= set(entry)
    retrieval = [e for e in doc["results"] if e["task"] != "t4"]
    assert set(retrieval[0]["metrics"]) >= {"recall@1", "recall@5", "recall@10", "mrr@10",
                                            "ndcg@10", "mean_rank"}
    table = pq.read_table(tmp_path / "out" / "per_query.parquet")
    assert table.num_rows == sum(e["n"] for e in retrieval)
    assert (tmp_path / "out" / "leaderboard.md").read_text().count("keyword-mock") == 1
    assert all(p.exists() for p in paths)


def test_paper_protocol_is_labelled_and_uses_reference_ece(tmp_path: Path) -> None:
    model = EvalModel("keyword-mock", KeywordEncoder(), prompt=prompt)
    out = evaluate(toy_dataset(), [model], RunConfig(tasks=["t4"], protocol="paper"),
                   EmbeddingStore(tmp_path))
    t4 = [e for e in out.entries if e["task"] == "t4" and e["query_lang"] == "all"]
    assert len(t4) == 1
    assert "ece_paper" in t4[0]["metrics"]
    # Row-level split: some persona has rows in more than one split (the reference's leak).
    seen: dict[str, set[str]] = {}
    for pid, split in zip(out.t4_predictions["pair_id"], out.t4_predictions["split"],
                          strict=True):
        seen.setdefault(pid, set()).add(split)
    assert any(len(s) > 1 for s in seen.values())


class _Killed(KeyboardInterrupt):
    pass


class DyingEncoder(KeywordEncoder):
    """Dies (like a killed process) on its third batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def encode(self, texts, prompt=""):  # type: ignore[no-untyped-def]
        self.batches += 1
        if self.batches == 3:
            raise _Killed()
        return super().encode(texts, prompt)


def test_killed_run_resumes_and_recomputes_only_the_batch_in_flight(tmp_path: Path) -> None:
    dying = DyingEncoder()
    with pytest.raises(_Killed):
        _run(tmp_path, dying)
    finished = set(dying.calls)  # two batches of 7 persisted before the kill
    assert len(finished) == 14
    resumed = KeywordEncoder()
    out, _ = _run(tmp_path, resumed)
    assert not finished & set(resumed.calls)  # nothing finished is encoded again
    clean, _ = _run(tmp_path / "clean", KeywordEncoder())
    assert json.dumps(out.entries, sort_keys=True) == json.dumps(clean.entries, sort_keys=True)
