"""Thresholds the gate learns from the dataset itself: length-ratio bounds and the
cross-lingual similarity threshold.

Length ratio (per language L, over every translated text t of L with an English source s
of the same pair and field)::

    chars(x) = number of non-whitespace code points of NFC(x)
    r(t)     = log(chars(t) / chars(s))
    m        = median of r over L
    sigma    = max(1.4826 * median(|r - m|), length_sigma_floor)   # MAD, scaled to a SD
    bounds   = [exp(m - k * sigma), exp(m + k * sigma)]             # k = length_k (3.5)

A text fails when its chars ratio lies outside the bounds, i.e. when its robust z-score
|r - m| / sigma exceeds k (the modified z-score rule of Iglewicz and Hoaglin, 3.5).
Languages with fewer than ``length_min_samples`` texts use m and sigma of all languages
pooled (basis "pooled"); bounds given in ``GateThresholds.length_bounds`` are used as they
are (basis "fixed").

Similarity (per language L): ``cos(e(t), e(s))`` with e = L2-normalised multilingual-e5
embeddings of ``"query: " + text`` (the E5 card's prefix for symmetric tasks such as
bitext mining). The null distribution is that of *mismatched* pairs: a translation of L
against the English source of another pair, same field (persona with persona, ...), never
two pairs whose English texts are identical. All such ordered pairs are used when there
are at most ``similarity_max_null`` of them, otherwise that many drawn uniformly at random
(seed ``seed + crc32(L)``). The threshold is the (1 - far) quantile of the null
(``numpy.quantile(method="higher")``, far = ``similarity_far``) and a text passes when
its cosine is strictly above it, so at most a share far of mismatched pairs would pass.
Languages with fewer than ``similarity_min_null`` null pairs use the null of all languages
pooled (basis "pooled"); if that is still too small, the check is not run for them
(basis "uncalibrated"). Reported with each threshold: the achieved null accept rate, the
share of matched pairs rejected, and the AUROC of matched vs mismatched cosines.
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from personalign.build.gate.settings import GateThresholds

MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD * this estimates the SD of a normal sample


def char_count(text: str) -> int:
    """Non-whitespace code points of NFC(text)."""
    return sum(not ch.isspace() for ch in unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class LengthBounds:
    """Bounds on chars(translation) / chars(English source) for one language."""

    low: float | None
    high: float | None
    basis: str  # "per-language" | "pooled" | "fixed" | "uncalibrated"
    n: int  # texts of this language with a source
    median_ratio: float | None = None  # exp(m)
    sigma: float | None = None  # robust SD of log ratio

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def accepts(self, ratio: float) -> bool:
        assert self.low is not None and self.high is not None
        return self.low <= ratio <= self.high


def _robust(values: np.ndarray, floor: float) -> tuple[float, float]:
    m = float(np.median(values))
    sigma = max(MAD_TO_SD * float(np.median(np.abs(values - m))), floor)
    return m, sigma


def learn_length_bounds(log_ratios: Mapping[str, Sequence[float]],
                        th: GateThresholds) -> dict[str, LengthBounds]:
    """Bounds per language from its log chars ratios (see module docstring)."""
    fixed = th.length_bounds or {}
    pooled_values = np.array([v for values in log_ratios.values() for v in values], float)
    out: dict[str, LengthBounds] = {}
    for lang, values in log_ratios.items():
        arr = np.asarray(values, dtype=float)
        if lang in fixed:
            low, high = fixed[lang]
            out[lang] = LengthBounds(low, high, "fixed", len(arr))
            continue
        if len(arr) >= th.length_min_samples:
            basis, sample = "per-language", arr
        elif len(pooled_values) >= th.length_min_samples:
            basis, sample = "pooled", pooled_values
        else:
            out[lang] = LengthBounds(None, None, "uncalibrated", len(arr))
            continue
        m, sigma = _robust(sample, th.length_sigma_floor)
        out[lang] = LengthBounds(math.exp(m - th.length_k * sigma),
                                 math.exp(m + th.length_k * sigma), basis, len(arr),
                                 math.exp(m), sigma)
    return out


@dataclass(frozen=True)
class SimilarityCalibration:
    """The similarity threshold of one language and what it rests on."""

    threshold: float | None
    basis: str  # "per-language" | "pooled" | "fixed" | "uncalibrated"
    far: float  # the false-accept rate asked for
    matched_n: int
    null_n: int  # mismatched pairs behind the threshold (for "fixed": used to assess it)
    null_accept_rate: float | None = None  # share of those null pairs with cos > threshold
    matched_reject_rate: float | None = None  # share of matched pairs with cos <= threshold
    auroc: float | None = None  # P(matched cos > null cos), ties count 1/2
    matched_quantiles: dict[str, float] = field(default_factory=dict)
    null_quantiles: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def null_similarities(translations: np.ndarray, sources: np.ndarray, groups: Sequence[str],
                      source_texts: Sequence[str], max_pairs: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Cosines of mismatched pairs (translation i, source j), i != j within a group (field),
    leaving out pairs whose English texts are identical. Rows must be L2-normalised."""
    by_group: dict[str, list[int]] = {}
    for row, g in enumerate(groups):
        by_group.setdefault(g, []).append(row)
    _, text_ids = np.unique(np.asarray(source_texts, dtype=object).astype(str),
                            return_inverse=True)
    total = sum(len(ix) * (len(ix) - 1) for ix in by_group.values())
    if total == 0:
        return np.zeros(0, dtype=np.float32)
    parts: list[np.ndarray] = []
    for ix in by_group.values():
        idx = np.asarray(ix)
        n = len(idx)
        if n < 2:
            continue
        if total <= max_pairs:
            sims = translations[idx] @ sources[idx].T
            keep = text_ids[idx][:, None] != text_ids[idx][None, :]  # also drops i == j
            parts.append(sims[keep])
            continue
        m = max(1, max_pairs * n * (n - 1) // total)  # this group's share of max_pairs
        a = rng.integers(n, size=m)
        b = (a + rng.integers(1, n, size=m)) % n  # never a == b
        i, j = idx[a], idx[b]
        keep = text_ids[i] != text_ids[j]
        parts.append(np.einsum("ij,ij->i", translations[i[keep]], sources[j[keep]]))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float | None:
    """Mann-Whitney AUROC: P(positive > negative) + P(tie) / 2."""
    if len(positives) == 0 or len(negatives) == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positives, negatives]))
    n1, n0 = len(positives), len(negatives)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {f"q{round(q * 100):02d}": float(np.quantile(values, q)) for q in qs}


def language_seed(seed: int, lang: str) -> int:
    """A per-language seed that does not depend on which other languages are present."""
    return seed + zlib.crc32(lang.encode("utf-8"))


def calibrate_similarity(matched: Mapping[str, np.ndarray], null: Mapping[str, np.ndarray],
                         th: GateThresholds) -> dict[str, SimilarityCalibration]:
    """One threshold per language from its matched and null cosines (module docstring)."""
    pooled = (np.concatenate([v for v in null.values() if len(v)])
              if any(len(v) for v in null.values()) else np.zeros(0, np.float32))
    out: dict[str, SimilarityCalibration] = {}
    for lang, sims in matched.items():
        fixed = th.similarity_fixed(lang)
        lang_null = null.get(lang, np.zeros(0, np.float32))
        if fixed is not None:
            basis, threshold, sample = "fixed", fixed, lang_null
        else:
            if len(lang_null) >= th.similarity_min_null:
                basis, sample = "per-language", lang_null
            elif len(pooled) >= th.similarity_min_null:
                basis, sample = "pooled", pooled
            else:
                out[lang] = SimilarityCalibration(
                    None, "uncalibrated", th.similarity_far, len(sims), len(pooled),
                    matched_quantiles=_quantiles(sims, (0.01, 0.05, 0.5)),
                    null_quantiles=_quantiles(pooled, (0.5, 0.95, 0.99)))
                continue
            threshold = float(np.quantile(sample, 1.0 - th.similarity_far, method="higher"))
        out[lang] = SimilarityCalibration(
            threshold=threshold,
            basis=basis,
            far=th.similarity_far,
            matched_n=len(sims),
            null_n=len(sample),
            null_accept_rate=float(np.mean(sample > threshold)) if len(sample) else None,
            matched_reject_rate=float(np.mean(sims <= threshold)) if len(sims) else None,
            auroc=auroc(sims, sample),
            matched_quantiles=_quantiles(sims, (0.01, 0.05, 0.5)),
            null_quantiles=_quantiles(sample, (0.5, 0.95, 0.99)),
        )
    return out
