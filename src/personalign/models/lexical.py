"""Weightless lexical baselines: Okapi BM25 and character n-gram TF-IDF cosine.

Both implement ``LexicalScorer``: ``fit(corpus)`` learns the corpus statistics (vocabulary,
document frequencies, mean length) from the documents to be searched, then
``transform(texts, side)`` returns a ``scipy.sparse.csr_matrix`` over that vocabulary such
that ``transform(queries, "query") @ transform(docs, "document").T`` is the score matrix.
Terms absent from the fitted corpus are dropped (they cannot match any document).

Tokenisation has to work for all 12 Indic scripts. Python's ``\\w`` does not match most
Indic vowel signs and viramas (Unicode categories Mn/Mc), so ``re.findall(r"\\w+", "हिंदी")``
gives ``['ह', 'द']``; ``word_tokens`` instead takes maximal runs of letters, marks and
numbers (categories L*, M*, N*) plus ZWNJ/ZWJ, after NFC normalisation and casefolding.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from personalign.models.base import Role

_ZW = "\u200c\u200d"  # zero-width non-joiner / joiner: word-internal in Indic and Urdu text


@functools.cache
def _word_regex() -> re.Pattern[str]:
    """A regex matching runs of Unicode letters, marks, numbers and ZWNJ/ZWJ.

    Built once from ``unicodedata`` (about 0.3 s) because ``re`` has no ``\\p{..}`` classes.
    """
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        ok = unicodedata.category(ch)[0] in "LMN" or ch in _ZW
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, sys.maxunicode))
    parts = [
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    ]
    return re.compile(f"[{''.join(parts)}]+")


def normalize_text(text: str) -> str:
    """NFC normalisation then casefolding (a no-op for Indic scripts, lower-cases Latin)."""
    return unicodedata.normalize("NFC", text).casefold()


def word_tokens(text: str) -> list[str]:
    """Unicode word tokens: maximal runs of categories L*, M*, N* (plus inner ZWNJ/ZWJ) of
    the NFC-normalised, casefolded text. Combining marks stay inside their word;
    punctuation (including the danda U+0964) and symbols separate words."""
    out = []
    for tok in _word_regex().findall(normalize_text(text)):
        tok = tok.strip(_ZW)
        if tok:
            out.append(tok)
    return out


def whitespace_tokens(text: str) -> list[str]:
    """``text.lower().split()``: the reference implementation's BM25 tokenizer (punctuation
    stays attached to words)."""
    return text.lower().split()


class BM25Scorer:
    """Okapi BM25 as sparse vectors.

    For a query q and document d:

        score(q, d) = sum over query tokens t (repeats counted) of w(t, d)
        w(t, d) = idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

    with tf(t, d) the count of t in d, |d| the number of tokens of d and avgdl the mean |d|
    over the fitted corpus (N documents, n_t of which contain t). Document rows hold w(t, d),
    query rows hold token counts, so ``Q @ D.T`` is the score matrix.

    ``idf="lucene"`` (default, as Lucene and bm25s): idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5)),
    always positive. ``idf="okapi"`` (as rank_bm25's BM25Okapi, used by the reference
    implementation): idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5)), and terms with negative idf
    get ``epsilon * mean idf`` instead. ``tokenizer="word"`` (default) uses ``word_tokens``;
    ``"whitespace"`` is the reference implementation's ``lower().split()``. The reference
    setting is ``BM25Scorer(idf="okapi", tokenizer="whitespace")`` (k1=1.5, b=0.75,
    epsilon=0.25).
    """

    kind: Literal["lexical"] = "lexical"

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        idf: Literal["lucene", "okapi"] = "lucene",
        tokenizer: Literal["word", "whitespace"] = "word",
        epsilon: float = 0.25,
        name: str = "bm25",
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if idf not in ("lucene", "okapi"):
            raise ValueError(f"unknown idf {idf!r}; use 'lucene' or 'okapi'")
        if tokenizer not in ("word", "whitespace"):
            raise ValueError(f"unknown tokenizer {tokenizer!r}; use 'word' or 'whitespace'")
        self.name = name
        self.k1 = k1
        self.b = b
        self.idf_kind = idf
        self.tokenizer = tokenizer
        self.epsilon = epsilon
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None
        self.avgdl_: float = 0.0
        self.n_docs_: int = 0

    def _tokens(self, text: str) -> list[str]:
        return word_tokens(text) if self.tokenizer == "word" else whitespace_tokens(text)

    def fit(self, corpus: Sequence[str]) -> BM25Scorer:
        """Learn vocabulary, document frequencies and mean document length from ``corpus``."""
        token_lists = [self._tokens(t) for t in corpus]
        vocab: dict[str, int] = {}
        for toks in token_lists:
            for tok in toks:
                vocab.setdefault(tok, len(vocab))
        n_docs = len(token_lists)
        df = np.zeros(len(vocab), dtype=np.float64)
        for toks in token_lists:
            for tok in set(toks):
                df[vocab[tok]] += 1
        total = sum(len(toks) for toks in token_lists)
        self.avgdl_ = total / n_docs if n_docs and total else 1.0
        self.n_docs_ = n_docs
        self.vocabulary_ = vocab
        if self.idf_kind == "lucene":
            idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        else:
            idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
            if len(idf):
                floor = self.epsilon * float(idf.mean())
                idf = np.where(idf < 0, floor, idf)
        self.idf_ = idf
        return self

    def transform(self, texts: Sequence[str], side: Role) -> sp.csr_matrix:
        """Query rows: token counts. Document rows: BM25 term weights w(t, d)."""
        if self.vocabulary_ is None or self.idf_ is None:
            raise RuntimeError(f"{self.name}: call fit(corpus) before transform()")
        if side not in ("query", "document"):
            raise ValueError(f"side must be 'query' or 'document', got {side!r}")
        vocab = self.vocabulary_
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        lengths: list[int] = []
        for text in texts:
            toks = self._tokens(text)
            counts = Counter(vocab[t] for t in toks if t in vocab)
            for j in sorted(counts):
                indices.append(j)
                data.append(float(counts[j]))
            indptr.append(len(indices))
            lengths.append(len(toks))
        tf = np.asarray(data, dtype=np.float64)
        idx = np.asarray(indices, dtype=np.int64)
        if side == "document":
            row_len = np.repeat(np.asarray(lengths, dtype=np.float64), np.diff(indptr))
            norm = self.k1 * (1.0 - self.b + self.b * row_len / self.avgdl_)
            tf = self.idf_[idx] * tf * (self.k1 + 1.0) / (tf + norm)
        return sp.csr_matrix(
            (tf, idx, np.asarray(indptr, dtype=np.int64)), shape=(len(lengths), len(vocab))
        )

    def describe(self) -> dict[str, Any]:
        """The settings that change scores (for result metadata; lexical scores are never
        cached because they depend on the corpus)."""
        return {"backend": "lexical-bm25", "k1": self.k1, "b": self.b, "idf": self.idf_kind,
                "tokenizer": self.tokenizer, "epsilon": self.epsilon}


class CharTfidfScorer:
    """Character n-gram TF-IDF, scored by cosine.

    scikit-learn ``TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4),
    sublinear_tf=True, norm="l2")`` on NFC-normalised, casefolded text (combining marks are
    kept: ``strip_accents`` stays off). ``char_wb`` takes n-grams inside words padded with
    one space on each side. With tf(g, x) the count of n-gram g in text x:

        weight(g, x) = (1 + ln tf(g, x)) * idf(g),  idf(g) = ln((1 + N) / (1 + n_g)) + 1

    over the N fitted documents (n_g of which contain g), each row then divided by its L2
    norm, so the row dot product is the cosine (1 for identical texts with any n-gram in
    the vocabulary; 0 when no n-gram is shared). Queries and documents are treated alike.
    """

    kind: Literal["lexical"] = "lexical"

    def __init__(self, *, ngram_range: tuple[int, int] = (2, 4), name: str = "tfidf-char"):
        self.name = name
        self.ngram_range = ngram_range
        self._vectorizer: Any = None

    def fit(self, corpus: Sequence[str]) -> CharTfidfScorer:
        """Learn the n-gram vocabulary and idf from ``corpus``."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True,
            preprocessor=normalize_text, lowercase=False, strip_accents=None, norm="l2",
            dtype=np.float64,
        )
        vec.fit(list(corpus))
        self._vectorizer = vec
        return self

    def transform(self, texts: Sequence[str], side: Role) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows (the same for both sides)."""
        if self._vectorizer is None:
            raise RuntimeError(f"{self.name}: call fit(corpus) before transform()")
        if side not in ("query", "document"):
            raise ValueError(f"side must be 'query' or 'document', got {side!r}")
        return sp.csr_matrix(self._vectorizer.transform(list(texts)))

    def describe(self) -> dict[str, Any]:
        return {"backend": "lexical-tfidf-char", "analyzer": "char_wb",
                "ngram_range": list(self.ngram_range), "sublinear_tf": True, "norm": "l2"}
