"""Names of the gate's checks and the thresholds they use."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from personalign.languages import resolve

# Stable slugs, in the order the checks are reported.
CHECKS: tuple[str, ...] = (
    "empty", "language-id", "script", "repetition", "untranslated", "length-ratio",
    "similarity",
)
# Checks that compare a translation with its English source (not run on English records).
SOURCE_CHECKS: frozenset[str] = frozenset({"untranslated", "length-ratio", "similarity"})
# The record fields that hold text, in report order.
TEXT_FIELDS: tuple[str, ...] = ("persona", "instruction", "negative")
# What the similarity check thresholds (definitions in gate.calibrate): the margin of the
# cosine over the texts' nearest neighbours (default), or the raw cosine.
SIMILARITY_SCORES: tuple[str, ...] = ("margin", "cosine")


@dataclass(frozen=True)
class GateThresholds:
    """Every threshold of the gate (see ``gate.text``, ``gate.lid`` and ``gate.calibrate``
    for the exact definitions). ``length_bounds`` and ``similarity_threshold`` fix values
    that are otherwise learned from the dataset: per language code (``{"hin_Deva": ...}``)
    or, for the similarity, one float for every language. Languages left out are learned.
    ``similarity_threshold`` is a threshold on the score named by ``similarity_score``
    (a margin for "margin", a cosine for "cosine").
    """

    # language id
    lid_min_letters: int = 20
    lid_confirm_letters: int = 50
    # script
    min_script_share: float = 0.90
    # repetition
    word_repeat: int = 3
    ngram_repeat: int = 2
    max_ngram: int = 8
    repeated_span: int = 6
    char_repeat: int = 4
    distinct_window: int = 30
    min_distinct_ratio: float = 0.5
    min_distinct_tokens: int = 10
    # untranslated
    max_source_similarity: float = 0.9
    max_latin_share: float = 0.5
    # length ratio: robust z on log(chars ratio), learned per language
    length_k: float = 3.5
    length_min_samples: int = 20
    length_sigma_floor: float = 0.05
    length_bounds: Mapping[str, tuple[float, float]] | None = None
    # similarity: threshold on a score (margin or cosine) at a false-accept rate on
    # mismatched pairs; margin over the mean cosine of k nearest neighbours
    similarity_score: str = "margin"
    similarity_k: int = 4
    # adequacy: also fail a cosine at or below its null threshold that is a low outlier
    # (median - k * 1.4826 * MAD of the language's matched cosines); None: off
    similarity_outlier_k: float | None = 3.5
    similarity_far: float = 0.01
    similarity_threshold: float | Mapping[str, float] | None = None
    similarity_min_null: int = 1000
    similarity_max_null: int = 50_000
    seed: int = 0
    # not a threshold: texts per encoder call when embedding
    batch_size: int = field(default=32, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("min_script_share", "min_distinct_ratio", "max_source_similarity",
                     "max_latin_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must lie in [0, 1], got {value}")
        if self.similarity_score not in SIMILARITY_SCORES:
            problems.append(f"similarity_score must be one of {', '.join(SIMILARITY_SCORES)}, "
                            f"got {self.similarity_score!r}")
        if not 0.0 < self.similarity_far < 1.0:
            problems.append(f"similarity_far must lie in (0, 1), got {self.similarity_far}")
        for name, least in (("word_repeat", 2), ("ngram_repeat", 2), ("max_ngram", 2),
                            ("repeated_span", 2), ("char_repeat", 2), ("distinct_window", 2),
                            ("min_distinct_tokens", 1), ("lid_min_letters", 0),
                            ("lid_confirm_letters", 0),
                            ("length_min_samples", 2), ("similarity_min_null", 1),
                            ("similarity_max_null", 1), ("similarity_k", 1),
                            ("batch_size", 1)):
            if getattr(self, name) < least:
                problems.append(f"{name} must be >= {least}, got {getattr(self, name)}")
        if self.similarity_outlier_k is not None and self.similarity_outlier_k <= 0:
            problems.append(f"similarity_outlier_k must be > 0 or None, got "
                            f"{self.similarity_outlier_k}")
        if self.length_k <= 0 or self.length_sigma_floor < 0:
            problems.append("length_k must be > 0 and length_sigma_floor >= 0")
        if self.length_bounds is not None:
            fixed: dict[str, tuple[float, float]] = {}
            for lang, bounds in self.length_bounds.items():
                low, high = (float(b) for b in bounds)
                if not 0 < low < high:
                    problems.append(f"length_bounds[{lang!r}] must be (low, high) with "
                                    f"0 < low < high, got {bounds}")
                fixed[_code(lang, problems)] = (low, high)
            object.__setattr__(self, "length_bounds", fixed)
        if isinstance(self.similarity_threshold, Mapping):
            object.__setattr__(self, "similarity_threshold", {
                _code(lang, problems): float(v) for lang, v in self.similarity_threshold.items()
            })
        if problems:
            raise ValueError("invalid gate thresholds: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.length_bounds is not None:
            out["length_bounds"] = {k: list(v) for k, v in self.length_bounds.items()}
        return out

    def similarity_fixed(self, lang: str) -> float | None:
        """The fixed similarity threshold for ``lang``, or None if it is to be learned."""
        if self.similarity_threshold is None:
            return None
        if isinstance(self.similarity_threshold, Mapping):
            value = self.similarity_threshold.get(lang)
            return None if value is None else float(value)
        return float(self.similarity_threshold)


def _code(lang: str, problems: list[str]) -> str:
    try:
        return resolve(lang).code
    except ValueError as exc:
        problems.append(str(exc))
        return lang


def make_thresholds(thresholds: GateThresholds | Mapping[str, Any] | None) -> GateThresholds:
    """A GateThresholds from itself, from a dict of overrides, or the defaults (None)."""
    if thresholds is None:
        return GateThresholds()
    if isinstance(thresholds, GateThresholds):
        return thresholds
    known = {f.name for f in dataclasses.fields(GateThresholds)}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise ValueError(f"unknown gate threshold(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return GateThresholds(**dict(thresholds))


def select_checks(checks: Iterable[str] | None) -> tuple[str, ...]:
    """The requested checks in report order; ValueError naming any unknown check."""
    if checks is None:
        return CHECKS
    wanted = list(checks)
    unknown = [c for c in wanted if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown gate check(s) {', '.join(unknown)}; use any of "
                         f"{', '.join(CHECKS)}")
    return tuple(c for c in CHECKS if c in wanted)
