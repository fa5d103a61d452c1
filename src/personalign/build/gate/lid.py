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

Short texts. Length = letters and combining marks (Unicode categories L* and M*).

- Fewer than ``min_letters`` (default 20): not identified at all (undetermined). On a name
  or a single word both identifiers give confident but arbitrary answers (heliport calls
  "Ravi" Finnish and "नमस्ते" Marathi).
- Fewer than ``confirm_letters`` (default 50): a heliport decision stands only when pycld2
  reliably names the same language (identifier "heliport+pycld2"); otherwise the text is
  undetermined. Measured on the first 20 / 30 / 40 letters of the 3,898 texts of the
  published validation sheets: heliport alone names a wrong language for 109 / 41 / 17 of
  them (Marathi <-> Hindi, Bengali <-> Assamese, English, Urdu); with the confirmation rule
  20 / 5 / 2 texts get a wrong language and 265 / 84 / 45 stay undetermined. Texts of 50
  letters or more are decided by heliport alone (0 errors on the full texts of the
  validation sheets and of pa-authored).

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
    is outside the table or nothing was decided; ``label``: the identifier's own label
    ("short" for a text too short to judge, "<label>?" for a short text pycld2 did not
    confirm); ``identifier``: "heliport", "heliport+pycld2", "pycld2" or "none"
    (undetermined)."""

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


def identify(texts: Sequence[str], min_letters: int = 20,
             confirm_letters: int = 50) -> list[LidResult]:
    """Identify every text (heliport in parallel over the batch, pycld2 as fallback and,
    for short texts, as confirmation; see the module docstring)."""
    lengths = [letter_count(t) for t in texts]
    out: list[LidResult | None] = [
        None if n >= min_letters else LidResult(None, "short", "none") for n in lengths]
    todo = [i for i, r in enumerate(out) if r is None]
    for i, result in zip(todo, _identify([texts[i] for i in todo]), strict=True):
        if result.identifier == "heliport" and lengths[i] < confirm_letters:
            second = _cld2(texts[i])
            if second.decided and second.code == result.code:
                result = LidResult(result.code, result.label, "heliport+pycld2",
                                   result.score)
            else:
                result = LidResult(None, f"{result.label}?", "none")
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
