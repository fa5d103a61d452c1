"""The embedded pa-authored dataset: complete, aligned, gated, with a fixed split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from personalign.build.gate import load_report
from personalign.data.loaders import load_dataset
from personalign.data.registry import pa_authored_dir
from personalign.data.splits import grouped_splits
from personalign.data.validate import validate_dataset
from personalign.embeddings import EvalModel
from personalign.languages import ALL_CODES
from personalign.models.load import load_model
from personalign.runner import RunConfig, evaluate
from personalign.store import EmbeddingStore


@pytest.fixture(scope="module")
def ds():  # type: ignore[no-untyped-def]
    return load_dataset("pa-authored")


def test_all_13_languages_300_aligned_pairs_with_negatives(ds) -> None:  # type: ignore[no-untyped-def]
    assert ds.languages() == list(ALL_CODES)
    assert ds.counts() == {code: 300 for code in ALL_CODES}
    assert all(r.negative and r.persona and r.instruction for r in ds.records)
    domains = Counter(r.domain for r in ds.records if r.lang == "eng_Latn")
    assert len(domains) == 25 and set(domains.values()) == {12}
    assert validate_dataset(ds, strict=True) is not None
    # No part files left behind: the package ships one file per language.
    assert not list(pa_authored_dir().glob("*.part*.jsonl"))


def test_shipped_split_is_the_grouped_split(ds) -> None:  # type: ignore[no-untyped-def]
    shipped = json.loads((pa_authored_dir() / "splits.json").read_text(encoding="utf-8"))
    assert shipped["splits"] == grouped_splits(ds.pair_ids(), seed=42)
    assert shipped["counts"] == {"train": 210, "calib": 30, "test": 60}


def test_card_and_quality_report_match_the_data(ds) -> None:  # type: ignore[no-untyped-def]
    card = (pa_authored_dir() / "CARD.md").read_text(encoding="utf-8")
    assert ds.fingerprint() in card
    assert "Not yet validated by a human native speaker" in card and "CC-BY-4.0" in card
    assert "## Quality gate" in card
    report = load_report(pa_authored_dir() / "quality.json")
    assert report.fingerprint == ds.fingerprint()  # the report is of these very texts
    assert "similarity" in report.checks  # the full gate, mE5 check included
    quality = json.loads((pa_authored_dir() / "quality.json").read_text(encoding="utf-8"))
    langs = quality["languages"]
    assert set(langs) >= set(ALL_CODES) - {"eng_Latn"}
    # The acceptance criterion: at least 98% of the texts pass, in every language.
    assert min(v["text_pass_rate"] for v in langs.values()) >= 0.98
    assert all(v["texts"] == 900 for v in langs.values())
    assert all(v["record_pass_rate"] == v["records_passed"] / v["records"]
               for v in langs.values())
    # No flag waved through silently: every failure carries a review.
    assert all(report.review_of(f) is not None for f in report.failures)
    assert "## Review of flagged texts" in (
        pa_authored_dir() / "QUALITY.md").read_text(encoding="utf-8")


def test_every_pair_and_authored_t4_appear_in_results(ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = EvalModel("bm25", load_model("bm25"))
    out = evaluate(ds, [model], RunConfig(tasks=["t2", "t4"]), EmbeddingStore(tmp_path))
    by_task = Counter(e["task"] for e in out.entries)
    assert by_task["t2"] == 13 * 12
    t4 = [e for e in out.entries if e["task"] == "t4"]
    assert len(t4) == 14 and all("authored" in e["negatives"] for e in t4)
