"""BM25 and character TF-IDF on tiny corpora with hand-computed scores; Indic tokenisation."""

from __future__ import annotations

import math
import unicodedata

import numpy as np
import pytest

from personalign.languages import INDIC_CODES
from personalign.models.base import LexicalScorer
from personalign.models.lexical import (
    BM25Scorer,
    CharTfidfScorer,
    whitespace_tokens,
    word_tokens,
)

# d0 = [a, b] (len 2), d1 = [b, c, c] (len 3), d2 = [d] (len 1): N = 3, avgdl = 2,
# df(a) = df(c) = df(d) = 1, df(b) = 2.
CORPUS = ["a b", "B c, c.", "d"]
K1, B = 1.5, 0.75
IDF_1 = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # ln(8/3), df = 1
IDF_2 = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # ln(1.6), df = 2


def scores(scorer: LexicalScorer, queries: list[str], docs: list[str]) -> np.ndarray:
    q = scorer.transform(queries, "query")
    d = scorer.transform(docs, "document")
    return np.asarray((q @ d.T).todense())


def test_bm25_matches_hand_computation() -> None:
    bm25 = BM25Scorer().fit(CORPUS)
    s = scores(bm25, ["b c"], CORPUS)[0]
    # d0: b has tf 1, |d| = avgdl -> length norm k1 * 1 = 1.5 -> idf * 1 * 2.5 / 2.5
    assert s[0] == pytest.approx(IDF_2)
    # d1: |d| = 3 -> norm = 1.5 * (0.25 + 0.75 * 3 / 2) = 2.0625
    assert s[1] == pytest.approx(IDF_2 * 1 * 2.5 / (1 + 2.0625) + IDF_1 * 2 * 2.5 / (2 + 2.0625))
    assert s[2] == 0.0


def test_bm25_query_repeats_count_and_unknown_terms_are_dropped() -> None:
    bm25 = BM25Scorer().fit(CORPUS)
    s = scores(bm25, ["c c", "c", "zzz", ""], CORPUS)
    np.testing.assert_allclose(s[0], 2 * s[1])
    assert not s[2].any() and not s[3].any()


def test_bm25_okapi_idf_floors_negative_idf_like_rank_bm25() -> None:
    bm25 = BM25Scorer(idf="okapi", tokenizer="whitespace").fit(["a b", "b c c", "d"])
    # okapi idf: a, c, d: ln(2.5 / 1.5); b: ln(1.5 / 2.5) < 0 -> 0.25 * mean idf
    raw = math.log(2.5 / 1.5)
    floor = 0.25 * (3 * raw - raw) / 4
    s = scores(bm25, ["b", "a"], ["a b", "b c c", "d"])
    assert s[0, 0] == pytest.approx(floor)  # tf-part is 1 for d0 (|d| = avgdl)
    assert s[1, 0] == pytest.approx(raw)


def test_bm25_needs_fit_and_a_valid_side() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        BM25Scorer().transform(["a"], "query")
    with pytest.raises(ValueError, match="side"):
        BM25Scorer().fit(["a"]).transform(["a"], "passage")  # type: ignore[arg-type]


def test_tfidf_identical_text_has_cosine_one() -> None:
    docs = ["मुंबई में एनसीपीए जैसे प्रदर्शन कला केंद्र", "தமிழ் நாட்டின் கலை", "a theatre in Mumbai"]
    tfidf = CharTfidfScorer().fit(docs)
    s = scores(tfidf, docs, docs)
    np.testing.assert_allclose(np.diag(s), 1.0)
    assert s[0, 1] == pytest.approx(0.0)  # no shared n-gram across scripts


def test_tfidf_cosine_matches_hand_computation() -> None:
    # "ab" -> char_wb n-grams of " ab ": " a", "ab", "b ", " ab", "ab ", " ab " (6, df 1).
    # "abcd" shares " a", "ab", " ab" with "ab" and "cd", "d ", "cd " with "cd"; all
    # weights are equal (tf 1, same idf), so cos = 3 / (sqrt(6) * sqrt(6)) = 0.5.
    tfidf = CharTfidfScorer().fit(["ab", "cd"])
    s = scores(tfidf, ["abcd"], ["ab", "cd"])
    np.testing.assert_allclose(s[0], [0.5, 0.5])


def test_tfidf_keeps_combining_marks() -> None:
    # कि and का differ only in the vowel sign; stripping marks would make them identical.
    tfidf = CharTfidfScorer().fit(["किताब", "काताब"])
    s = scores(tfidf, ["किताब"], ["किताब", "काताब"])[0]
    assert s[0] == pytest.approx(1.0) and s[1] < 0.9


# One word with combining marks (vowel signs, virama, anusvara, nukta, harakat) per language.
WORDS = {
    "asm_Beng": "অসমীয়া", "ben_Beng": "বাংলা", "guj_Gujr": "ગુજરાતી", "hin_Deva": "हिंदी",
    "kan_Knda": "ಕನ್ನಡ", "mal_Mlym": "മലയാളം", "mar_Deva": "मराठी", "ory_Orya": "ଓଡ଼ିଆ",
    "pan_Guru": "ਪੰਜਾਬੀ", "tam_Taml": "தமிழ்", "tel_Telu": "తెలుగు", "urd_Arab": "اُردُو",
}


def test_word_fixture_covers_every_indic_language() -> None:
    assert set(WORDS) == set(INDIC_CODES)
    for word in WORDS.values():
        assert any(unicodedata.category(ch).startswith("M") for ch in word)


@pytest.mark.parametrize("code", sorted(WORDS))
def test_word_tokens_keep_indic_words_whole(code: str) -> None:
    word = unicodedata.normalize("NFC", WORDS[code])
    assert word_tokens(f"{word}, {word}। ({word})") == [word, word, word]


def test_word_tokens_join_zwnj_inside_words_and_casefold() -> None:
    assert word_tokens("क्\u200dष Straße\u200c!") == ["क्\u200dष", "strasse"]


def test_whitespace_tokens_are_the_reference_tokenizer() -> None:
    assert whitespace_tokens("Hello, World  हिंदी।") == ["hello,", "world", "हिंदी।"]
