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

Similarity (per language L). Embeddings: e = L2-normalised multilingual-e5 embeddings of
``"query: " + text`` (the E5 card's prefix for symmetric tasks such as bitext mining).
A text t of L is compared with its English source s (same pair, same field) and, for the
margin, with the other texts of its field: the English sources S_f and the translations
T_{L,f} of the same field f (persona with persona, ...; duplicates of a text counted once)::

    cos(t, s)  = e(t) . e(s)
    n_x(t)     = mean of the k largest cos(t, s') over s' in S_f              (t's neighbours)
    n_y(s)     = mean of the k largest cos(t', s) over t' in T_{L,f}          (s's neighbours)
    margin(t, s) = cos(t, s) - (n_x(t) + n_y(s)) / 2                          # k = similarity_k

This is the (difference) margin of bitext mining (Artetxe and Schwenk, "Margin-based
parallel corpus mining with multilingual sentence embeddings", ACL 2019; k = 4 there and
here). It measures how much closer t and s are to each other than to their nearest
alternatives, so it does not depend on where a model puts cosines on its scale: the
scale differs by language (with mE5-small, faithful Assamese pairs have a median cosine of
0.88, Hindi ones 0.92, while mismatched pairs sit near 0.80 in both) and by text (generic
or jargon-heavy texts are close to everything, "hubs"). A faithful translation is usually
its source's nearest neighbour, so its margin is >= 0; a text that translates something
else is closer to other texts than to its source, so its margin is < 0. Fewer than k + 1
distinct texts on a side: k is lowered to what there is (``k_used``); with fewer than 2
the margin is undefined and the check does not apply.

Null distribution (per language): *mismatched* pairs, translation t_i of pair i against
the English source s_j of another pair j, same field, never two pairs whose English texts
are identical. All such ordered pairs are used when there are at most
``similarity_max_null`` of them, otherwise that many drawn uniformly at random (seed
``seed + crc32(L)``). A mismatched pair is scored as if t_i really stood in slot j (the
dataset a translator's mix-up would produce): t_i's own source and t_j are not among the
neighbours (n_x and n_y over S_f minus s_i and T_{L,f} minus t_j)::

    null(i, j) = cos(t_i, s_j) - (n_x(t_i | S_f - {s_i}) + n_y(s_j | T_{L,f} - {t_j})) / 2

Decision: a text fails when either part fails.

1. Identity (is t a translation of *this* source?): its score is at or below the
   identity threshold. Score: the margin (``similarity_score`` = "margin", default) or the
   raw cosine ("cosine", the rule before margins). Threshold: the (1 - far) quantile of
   the null scores (``numpy.quantile(method="higher")``, far = ``similarity_far``), so at
   most a share far of mismatched pairs pass it.
2. Adequacy (does t carry its source, or only point to it?): cos(t, s) is at or below the
   cosine's own (1 - far) null threshold (no higher than mismatched pairs reach) *and* a
   robust low outlier among the language's matched cosines::

       cos(t, s) < median - k * 1.4826 * MAD       # k = similarity_outlier_k (3.5)

   (median and MAD over all texts of L with a source, the modified z-score rule of the
   length check). ``similarity_outlier_k = None`` turns this part off.

The adequacy part only adds rejections, so the rule lets through at most a share far of
mismatched pairs (reported as "null accepted" of the rule). Languages with fewer than
``similarity_min_null`` null pairs use the null of all languages pooled (basis "pooled");
if that is still too small, that part is not run for them (basis "uncalibrated");
``similarity_threshold`` fixes the identity threshold (basis "fixed"); the adequacy part
always learns its cosine threshold. Reported per language: both thresholds, the outlier
bound, the null accept rate and matched reject rate of each part and of the rule, and the
AUROC of matched vs mismatched margins and cosines.

Why this rule (measured with mE5-small). The cosine scale differs by language and by
text: at a 1% false-accept rate the raw-cosine threshold sits where matched and
mismatched cosines overlap in the weaker languages and rejects faithful translations
(7.0% of the Assamese texts of pa-authored, 2.6% of the Punjabi and Tamil ones; read
against the English, all 175 texts it flagged there were faithful). Failing only robust
low outliers of the cosine (part 2 alone) rejects few faithful texts but lets mismatches
through wherever the outlier bound falls below the threshold: on pa-authored it accepts
27% of mismatched Assamese pairs and 9% of Punjabi ones. The margin is the identity test
of bitext mining and keeps the 1% false-accept rate in every language: AUROC >= 0.9998
per language on pa-authored and on the PI-Indic-Align validation sheets (raw cosine
0.996-0.9999); with 5% of pa-authored's translations replaced by another record's
translation from the same domain it flags 98.9% of the replaced texts (raw cosine 95.2%,
part 2 alone 77.6%) and 0.05% of the others (raw cosine 1.7%). But a margin does not see
a translation that drops a clause and still points to its source: of the 14 texts of the
validation sheets (NLLB output) the raw cosine flags, 10 are clearly truncated or
mistranslated; the margin alone flags 1 of those, the margin with part 2 flags 8 (12
texts in all). On pa-authored the full rule flags 29 of 10,800 texts (0.27%).
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
    """The threshold of one language on one score (margin or cosine) and what it rests on."""

    threshold: float | None
    basis: str  # "per-language" | "pooled" | "fixed" | "uncalibrated"
    far: float  # the false-accept rate asked for
    matched_n: int
    null_n: int  # mismatched pairs behind the threshold (for "fixed": used to assess it)
    null_accept_rate: float | None = None  # share of those null pairs with score > threshold
    matched_reject_rate: float | None = None  # share of matched pairs with score <= threshold
    auroc: float | None = None  # P(matched score > null score), ties count 1/2
    matched_quantiles: dict[str, float] = field(default_factory=dict)
    null_quantiles: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AdequacyBound:
    """The low-outlier bound on one language's matched cosines (module docstring)."""

    median: float
    mad: float
    sigma: float  # 1.4826 * MAD
    k: float
    bound: float  # median - k * sigma
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adequacy_bound(cosines: np.ndarray, k: float) -> AdequacyBound | None:
    """median - k * 1.4826 * MAD of a language's matched cosines; None without any."""
    values = np.asarray(cosines, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None
    median, sigma = _robust(values, 0.0)
    return AdequacyBound(median, sigma / MAD_TO_SD, sigma, k, median - k * sigma, len(values))


def null_pairs(groups: Sequence[str], source_texts: Sequence[str], max_pairs: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: row indices of mismatched pairs (translation i, source j), i != j within
    a group (field), leaving out pairs whose English texts are identical; all of them when
    there are at most ``max_pairs``, else about that many drawn at random."""
    by_group: dict[str, list[int]] = {}
    for row, g in enumerate(groups):
        by_group.setdefault(g, []).append(row)
    _, text_ids = np.unique(np.asarray(source_texts, dtype=object).astype(str),
                            return_inverse=True)
    total = sum(len(ix) * (len(ix) - 1) for ix in by_group.values())
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for ix in by_group.values():
        idx = np.asarray(ix)
        n = len(idx)
        if n < 2:
            continue
        if total <= max_pairs:
            a, b = np.repeat(np.arange(n), n), np.tile(np.arange(n), n)  # every (a, b)
        else:
            m = max(1, max_pairs * n * (n - 1) // total)  # this group's share of max_pairs
            a = rng.integers(n, size=m)
            b = (a + rng.integers(1, n, size=m)) % n  # never a == b
        i, j = idx[a], idx[b]
        keep = text_ids[i] != text_ids[j]  # also drops i == j
        rows.append(i[keep])
        cols.append(j[keep])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def null_similarities(translations: np.ndarray, sources: np.ndarray, groups: Sequence[str],
                      source_texts: Sequence[str], max_pairs: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Cosines of the mismatched pairs of :func:`null_pairs`. Rows must be L2-normalised."""
    i, j = null_pairs(groups, source_texts, max_pairs, rng)
    return np.einsum("ij,ij->i", translations[i], sources[j]).astype(np.float32)


@dataclass(frozen=True)
class Neighbourhoods:
    """For each text of one group (field) of one language, the mean cosine of its k
    nearest neighbours on the other side (module docstring): ``translation`` = n_x(t_i)
    over all English sources of the group, ``source`` = n_y(s_i) over all translations;
    ``*_excluding_own`` leave out the pair's own source (for n_x) or own translation (for
    n_y), as the null needs."""

    k: int  # neighbours used (similarity_k, or fewer when the group is small)
    translation: np.ndarray
    source: np.ndarray
    translation_excluding_own: np.ndarray
    source_excluding_own: np.ndarray


def _top_values(rows: np.ndarray, cols: np.ndarray, m: int,
                block: int) -> tuple[np.ndarray, np.ndarray]:
    """The m largest values of every row and of every column of ``rows @ cols.T``, each
    sorted in decreasing order, computed in row blocks (memory O((n_rows + n_cols) * m))."""
    n_cols = len(cols)
    row_top = np.empty((len(rows), m), dtype=np.float64)
    col_top = np.full((n_cols, m), -np.inf)
    for start in range(0, len(rows), block):
        sims = (rows[start:start + block] @ cols.T).astype(np.float64)
        row_top[start:start + len(sims)] = np.partition(sims, n_cols - m, axis=1)[:, -m:]
        take = min(m, len(sims))
        best = np.partition(sims, len(sims) - take, axis=0)[-take:].T  # (n_cols, take)
        merged = np.concatenate([col_top, best], axis=1)
        col_top = np.partition(merged, merged.shape[1] - m, axis=1)[:, -m:]
    return -np.sort(-row_top, axis=1), -np.sort(-col_top, axis=1)


def _mean_top(top: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From the k + 1 largest values of each row (sorted, decreasing) and the row's own
    value ``own``: the mean of the k largest, and the mean of the k largest once ``own`` is
    left out. ``own`` is among the k largest when it is >= the k-th largest (up to float
    noise: the two are computed by different BLAS calls); removing one copy of its value
    from the k + 1 largest then leaves the k largest of the rest."""
    full = top[:, :k].mean(axis=1)
    inside = own >= top[:, k - 1] - 1e-6
    excluding = np.where(inside, (top[:, :k + 1].sum(axis=1) - own) / k, full)
    return full, excluding


def neighbourhoods(translations: np.ndarray, sources: np.ndarray,
                   translation_texts: Sequence[str], source_texts: Sequence[str], k: int,
                   block: int = 1024) -> Neighbourhoods | None:
    """Neighbourhood means for the texts of one group (rows: translation i and its source
    i, L2-normalised). Distinct texts are counted once as neighbours. None when either
    side has fewer than 2 distinct texts (no neighbour besides the pair's own)."""
    t_keys, t_first, t_of = np.unique(np.asarray(translation_texts, dtype=object).astype(str),
                                      return_index=True, return_inverse=True)
    s_keys, s_first, s_of = np.unique(np.asarray(source_texts, dtype=object).astype(str),
                                      return_index=True, return_inverse=True)
    k_used = min(k, len(t_keys) - 1, len(s_keys) - 1)
    if k_used < 1:
        return None
    row_top, col_top = _top_values(translations[t_first], sources[s_first], k_used + 1, block)
    own = np.einsum("ij,ij->i", translations, sources).astype(np.float64)
    n_x, n_x_excl = _mean_top(row_top[t_of], own, k_used)
    n_y, n_y_excl = _mean_top(col_top[s_of], own, k_used)
    return Neighbourhoods(k_used, n_x, n_y, n_x_excl, n_y_excl)


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
    """One threshold per language from its matched and null scores (margins or cosines;
    module docstring). ``th.similarity_threshold`` fixes the threshold where it is set."""
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
