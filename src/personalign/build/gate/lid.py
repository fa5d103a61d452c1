"""Language identification: heliport first, pycld2 when heliport is unsure or fails.

Decision for one text:

1. heliport (``Identifier().identify_with_score(text)``, with heliport's own per-language
   confidence thresholds). Its confidence is the gap between the best and the second-best
   raw score; below the language's threshold heliport answers ``"und"``. Any label other
   than ``"und"`` / ``"zxx"`` (no text) is a decision by heliport.
2. Otherwise (heliport unsure, or it raised), pycld2 (``pycld2.detect(text)``): its top
   language is a decision if CLD2 marks the result reliable and the code is not ``"un"``
   (unknown).
3. Otherwise the language is undetermined.

Texts with fewer than ``min_letters`` (default 20) letters and combining marks (Unicode
categories L* and M*) are not identified at all (undetermined): on a name or a single word
both identifiers give confident but arbitrary answers (heliport calls "Ravi" Finnish and
"नमस्ते" Marathi).

Labels map to our codes with ``personalign.languages.resolve`` (heliport gives ISO 639-3
codes such as ``"hin"`` or ``"ori"``, CLD2 ISO 639-1 codes such as ``"hi"`` or ``"or"``).
A label outside the language table (heliport's ``"nep"``, CLD2's ``"ne"``) maps to no
code: a decision for a language we do not have, which never agrees.

The ``language-id`` check passes when the decided language is the declared one, and when
the language is undetermined (typically a very short text: a name, a number); it fails
when a decision names another language.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personalign.languages import resolve

_NO_DECISION = ("und", "zxx")


@dataclass(frozen=True)
class LidResult:
    """One identification. ``code``: our language code, or None when the decided language
    is outside the table or nothing was decided; ``label``: the identifier's own label;
    ``identifier``: "heliport", "pycld2" or "none" (undetermined)."""

    code: str | None
    label: str
    identifier: str
    score: float | None = None

    @property
    def decided(self) -> bool:
        return self.identifier != "none"


def map_label(label: str) -> str | None:
    """Our code for an identifier's label, or None if the language is not in the table."""
    try:
        return resolve(label).code
    except ValueError:
        return None


@functools.cache
def _heliport() -> Any:
    import heliport  # the model loads once (about 2 s, 130 MB)

    return heliport.Identifier()


def _cld2(text: str) -> LidResult:
    import pycld2

    try:
        reliable, _, details = pycld2.detect(text)
    except (pycld2.error, UnicodeError, ValueError):
        return LidResult(None, "error", "none")
    label = str(details[0][1]) if details else "un"
    if not reliable or label == "un":
        return LidResult(None, label, "none")
    return LidResult(map_label(label), label, "pycld2", float(details[0][2]))


def letter_count(text: str) -> int:
    """Letters and combining marks (Unicode categories L* and M*)."""
    return sum(unicodedata.category(ch)[0] in "LM" for ch in text)


def identify(texts: Sequence[str], min_letters: int = 20) -> list[LidResult]:
    """Identify every text (heliport in parallel over the batch, pycld2 as fallback);
    texts with fewer than ``min_letters`` letters come back undetermined ("short")."""
    out: list[LidResult | None] = [
        None if letter_count(t) >= min_letters else LidResult(None, "short", "none")
        for t in texts]
    todo = [i for i, r in enumerate(out) if r is None]
    for i, result in zip(todo, _identify([texts[i] for i in todo]), strict=True):
        out[i] = result
    return [r for r in out if r is not None]


def _identify(texts: Sequence[str]) -> list[LidResult]:
    items = list(texts)
    if not items:
        return []
    try:
        first: list[tuple[str, float] | None] = list(
            _heliport().par_identify_with_score(items))
    except Exception:  # heliport failing on the batch: try text by text
        first = []
        for text in items:
            try:
                first.append(_heliport().identify_with_score(text))
            except Exception:  # this text goes to the fallback
                first.append(None)
    out: list[LidResult] = []
    for text, result in zip(items, first, strict=True):
        if result is not None and result[0] not in _NO_DECISION:
            label = str(result[0])
            out.append(LidResult(map_label(label), label, "heliport", float(result[1])))
        else:
            out.append(_cld2(text))
    return out


def describe(result: LidResult) -> str:
    """``"Tamil (heliport: tam)"`` or ``"nep (heliport), not in the language table"``."""
    if result.code is None:
        return f"{result.label!r} ({result.identifier}), a language outside the table"
    return f"{resolve(result.code).name} ({result.identifier}: {result.label})"
