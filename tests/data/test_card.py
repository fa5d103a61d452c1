import math
from pathlib import Path

import pytest

from personalign.data.card import dataset_card, length_stats
from personalign.data.loaders import load_dataset
from personalign.data.schema import Dataset, Record


def test_length_stats_by_hand() -> None:
    s = length_stats(["a b", "c d e f"])  # chars 3, 7; words 2, 4
    assert s["n"] == 2
    assert (s["chars_mean"], s["chars_median"]) == (5.0, 5.0)
    assert s["chars_p95"] == pytest.approx(3 + 0.95 * 4)  # linear interpolation: 6.8
    assert (s["words_mean"], s["words_median"]) == (3.0, 3.0)
    assert s["words_p95"] == pytest.approx(2 + 0.95 * 2)  # 3.9
    # Indic: code points, so the vowel sign counts ("नमस्ते" = 6 code points)
    assert length_stats(["नमस्ते"])["chars_mean"] == 6
    assert math.isnan(length_stats([])["chars_mean"])


def _toy() -> Dataset:
    records = [
        Record("1", "eng_Latn", "a b", "one two three", negative="x y", domain="farming",
               source="s1"),
        Record("2", "eng_Latn", "c d e f", "four", domain="farming", source="s1"),
        Record("3", "eng_Latn", "g", "five six", domain="health", source="s2"),
        Record("1", "hin_Deva", "क ख", "ग", source="s3",
               extra={"expert_1": "Completely Agree", "expert_2": "Completely Agree"}),
        Record("2", "hin_Deva", "घ", "ङ", source="s3",
               extra={"expert_1": "Completely Agree", "expert_2": "Partially Agree"}),
    ]
    meta = {"provenance": "hand-made", "license": "CC0", "skipped": [
        {"file": "f.csv", "line": 5, "record_id": "3", "reason": "bad JSON"}]}
    return Dataset("toy", records, meta)


def test_card_sections_and_numbers() -> None:
    ds = _toy()
    card = dataset_card(ds, splits={"1": "train", "2": "train", "3": "test"})
    assert card.startswith("# Dataset card: toy")
    assert "| records | 5 |" in card and "| pairs (distinct pair ids) | 3 |" in card
    assert f"`{ds.fingerprint()}`" in card
    assert "- Provenance: hand-made" in card and "- License: CC0" in card
    assert "| s1 | 2 |" in card and "| s3 | 2 |" in card
    # per language: records, with negative, pair ids missing
    assert "| eng_Latn (English) | 3 | 1 | 0 |" in card
    assert "| hin_Deva (Hindi) | 2 | 0 | 1 |" in card
    # per domain: pairs, records
    assert "| farming | 2 | 2 |" in card and "| health | 1 | 1 |" in card
    # lengths: English personas "a b", "c d e f", "g": chars 3, 7, 1 -> mean 3.7, median 3
    assert "| eng_Latn | persona | 3 | 3.7 | 3.0 |" in card
    # splits: pairs and records per split
    assert "| train | 2 | 4 |" in card and "| calib | 0 | 0 |" in card
    assert "| test | 1 | 1 |" in card
    # expert ratings: 2 rated, 1 both CA, raw agreement 50%
    assert "| hin_Deva | 2 | 1 | 50.0% |" in card
    assert "| f.csv | 5 | 3 | bad JSON |" in card


def test_card_default_split_and_no_domains() -> None:
    ds = Dataset("t", [Record(str(i), "eng_Latn", "a", "b") for i in range(10)])
    card = dataset_card(ds)
    assert "grouped by pair id, fractions (0.7, 0.1, 0.2), seed 42" in card
    assert "| train | 7 | 7 |" in card and "| calib | 1 | 1 |" in card
    assert "No domain labels." in card and "## Skipped rows\n\nNone." in card
    assert "Expert ratings" not in card


def test_card_of_fixture_sheets(fixtures: Path) -> None:
    card = dataset_card(load_dataset(fixtures / "validation"))
    assert "| hin_Deva | 3 | 2 | 66.7% |" in card  # ids 1 and 3 CA/CA; id 2 CA/PA
    assert "| tam_Taml | 3 | 2 | 66.7% |" in card  # ids 1, 2 CA/CA; id 3 PA/DNA
    assert "nirdesha:2-shot:nllb-200-3.3B" in card
