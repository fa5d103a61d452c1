"""Checks on one text (and its English source): empty, script, repetition, untranslated.

Each check returns ``None`` when the text passes, or a :class:`Finding` (a one-line reason
plus the measured value) when it fails. Definitions (all thresholds are fields of
:class:`~personalign.build.gate.settings.GateThresholds`, defaults in brackets):

Tokens
    ``tokens(t)``: NFC-normalise, split on whitespace, strip leading and trailing
    punctuation and symbols (Unicode categories P* and S*) from each piece, casefold, drop
    pieces that become empty. Combining marks stay inside their token, so an Indic word
    with vowel signs or virama is one token (``re``'s ``\\w`` would split it).

Empty
    The text is missing, blank, or has no letter at all (``str.isalpha`` false for every
    character: only digits, punctuation, symbols). A translated record whose English source
    has a negative but which has none itself fails as a missing text.

Script
    ``share = personalign.languages.script_share(t, lang)``: the share of the
    text's letters that lie in the declared language's script (native digits and dandas
    are not letters). Fails when ``share < min_script_share`` [0.90].

Repetition (degenerate machine-translation output). The text fails if any of:

    a. word run: one token repeated ``word_repeat`` [3] or more times in a row
       ("ଭିନ୍ନ ଭିନ୍ନ ଭିନ୍ନ"); two in a row is ordinary reduplication
       ("ଭିନ୍ନ ଭିନ୍ନ", "धीरे धीरे") and passes;
    b. n-gram run: a sequence of n tokens, 2 <= n <= ``max_ngram`` [8], repeated
       ``ngram_repeat`` [2] or more times in a row ("କୀବୋର୍ ଡ୍ କୀବୋର୍ ଡ୍");
    c. repeated span: a sequence of ``repeated_span`` [6] or more tokens that occurs twice
       anywhere in the text (a sentence translated twice);
    d. character run: a unit of 1 to 8 characters that contains a letter or a combining
       mark, repeated ``char_repeat`` [4] or more times in a row with nothing in between
       ("ହାହାହାହା", "aaaa"); catches loops inside one token that (a)-(c) cannot see;
    e. low diversity: for texts of at least ``min_distinct_tokens`` [10] tokens, the
       minimum over all windows of ``distinct_window`` [30] consecutive tokens (the whole
       text if shorter) of (#distinct tokens / #tokens in the window) is below
       ``min_distinct_ratio`` [0.5]. Windows keep the measure independent of length: on
       the published validation data the lowest value of a good text is 0.57 (Urdu),
       typical values are 0.8-0.95.

Untranslated (non-English texts only). The text fails if any of:

    a. identical: ``norm(t) == norm(source)`` with norm = NFC, casefold, whitespace runs
       collapsed to one space, stripped;
    b. near-identical: ``difflib.SequenceMatcher(None, norm(t), norm(source)).ratio()`` >=
       ``max_source_similarity`` [0.9] (ratio = 2 * matched characters / total characters);
    c. Latin script: the share of the text's letters in Latin script (the script ranges of
       eng_Latn) is >= ``max_latin_share`` [0.5], with or without a source.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from personalign.languages import BY_CODE, ENGLISH, script_share


@functools.cache
def _char_run(repeats: int) -> re.Pattern[str]:
    """A unit of 1-8 characters followed by at least ``repeats - 1`` copies of itself."""
    return re.compile(rf"(.{{1,8}}?)\1{{{repeats - 1},}}", re.DOTALL)


@dataclass(frozen=True)
class Finding:
    """Why a text failed one check: ``reason`` (one line) and the measured ``value``."""

    reason: str
    value: float | None = None


def normalise(text: str) -> str:
    """NFC, casefold, whitespace runs collapsed to one space, stripped."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _edge(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def tokens(text: str) -> list[str]:
    """Whitespace tokens with edge punctuation/symbols stripped, casefolded (see module
    docstring)."""
    out: list[str] = []
    for piece in unicodedata.normalize("NFC", text).split():
        start, end = 0, len(piece)
        while start < end and _edge(piece[start]):
            start += 1
        while end > start and _edge(piece[end - 1]):
            end -= 1
        if start < end:
            out.append(piece[start:end].casefold())
    return out


def has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def check_empty(text: str | None) -> Finding | None:
    if text is None or not text.strip():
        return Finding("text is empty")
    if not has_letter(text):
        return Finding("text has no letters (only digits, punctuation or symbols)")
    return None


def check_script(text: str, lang: str, min_share: float) -> Finding | None:
    share = script_share(text, lang)
    if share >= min_share:
        return None
    language = BY_CODE[lang]
    return Finding(f"only {share:.0%} of its letters are in {language.script_name} script "
                   f"(needs >= {min_share:.0%} for {language.name})", share)


def _longest_run(toks: Sequence[str], n: int) -> tuple[int, int]:
    """``(repeats, start)`` of the longest run of one n-token sequence repeated back to
    back; ``repeats`` is 1 when nothing repeats.

    A stretch of s consecutive positions j with ``toks[j] == toks[j + n]``, starting at i,
    means toks[i : i + s + n] has period n: the n-gram at i is repeated s // n + 1 times.
    One pass per n, O(len(toks)).
    """
    best, best_start = 1, 0
    stretch = 0
    for j in range(len(toks) - n):
        if toks[j] == toks[j + n]:
            stretch += 1
            repeats = stretch // n + 1
            if repeats > best:
                best, best_start = repeats, j - stretch + 1
        else:
            stretch = 0
    return best, best_start


def _repeated_span(toks: Sequence[str], span: int) -> tuple[str, ...] | None:
    seen: set[tuple[str, ...]] = set()
    for i in range(len(toks) - span + 1):
        gram = tuple(toks[i:i + span])
        if gram in seen:
            return gram
        seen.add(gram)
    return None


def _min_window_diversity(toks: Sequence[str], window: int) -> float:
    if len(toks) <= window:
        return len(set(toks)) / len(toks)
    counts: dict[str, int] = {}
    for tok in toks[:window]:
        counts[tok] = counts.get(tok, 0) + 1
    lowest = len(counts)
    for i in range(window, len(toks)):
        counts[toks[i]] = counts.get(toks[i], 0) + 1
        old = toks[i - window]
        counts[old] -= 1
        if counts[old] == 0:
            del counts[old]
        lowest = min(lowest, len(counts))
    return lowest / window


def _quote(words: Sequence[str]) -> str:
    text = " ".join(words)
    return text if len(text) <= 60 else text[:57] + "..."


def check_repetition(text: str, *, word_repeat: int, ngram_repeat: int, max_ngram: int,
                     repeated_span: int, char_repeat: int, distinct_window: int,
                     min_distinct_ratio: float, min_distinct_tokens: int) -> Finding | None:
    toks = tokens(text)
    repeats, start = _longest_run(toks, 1)
    if repeats >= word_repeat:
        return Finding(f"the word {toks[start]!r} is repeated {repeats} times in a row",
                       float(repeats))
    for n in range(2, max_ngram + 1):
        repeats, start = _longest_run(toks, n)
        if repeats >= ngram_repeat:
            gram = toks[start:start + n]
            return Finding(f"the {n}-word sequence {_quote(gram)!r} is repeated {repeats} "
                           "times in a row", float(repeats))
    span = _repeated_span(toks, repeated_span)
    if span is not None:
        return Finding(f"the {repeated_span}-word sequence {_quote(span)!r} occurs twice "
                       "(a phrase or sentence translated twice?)", 2.0)
    for match in _char_run(char_repeat).finditer(text):
        unit = match.group(1)
        if any(unicodedata.category(ch)[0] in "LM" for ch in unit):
            count = len(match.group(0)) // len(unit)
            if count >= char_repeat:
                return Finding(f"the characters {unit!r} repeat {count} times in a row",
                               float(count))
    if len(toks) >= min_distinct_tokens:
        ratio = _min_window_diversity(toks, distinct_window)
        if ratio < min_distinct_ratio:
            return Finding(f"low word diversity: {ratio:.2f} distinct tokens per token in "
                           f"the worst {min(distinct_window, len(toks))}-token window "
                           f"(needs >= {min_distinct_ratio:.2f})", ratio)
    return None


def latin_share(text: str) -> float:
    """Share of the text's letters in Latin script (1.0 for a text without letters)."""
    return script_share(text, ENGLISH)


def check_untranslated(text: str, source: str | None, *, max_source_similarity: float,
                       max_latin_share: float) -> Finding | None:
    if source is not None:
        a, b = normalise(text), normalise(source)
        if a == b:
            return Finding("identical to the English source", 1.0)
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        # quick_ratio() is an upper bound of ratio(): skips the quadratic part for texts in
        # another script, which share almost no characters with English.
        if matcher.quick_ratio() >= max_source_similarity:
            ratio = matcher.ratio()
            if ratio >= max_source_similarity:
                return Finding(f"nearly identical to the English source (character "
                               f"similarity {ratio:.2f} >= {max_source_similarity:.2f})",
                               ratio)
    share = latin_share(text)
    if share >= max_latin_share:
        return Finding(f"{share:.0%} of its letters are in Latin script: left in English or "
                       "romanised?", share)
    return None
