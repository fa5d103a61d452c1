"""Cross-lingual analyses of per-query retrieval values, with bootstrap intervals over queries.

Input convention (``PairValues``): a mapping ``(query_lang, corpus_lang) -> per-query values``
(e.g. R@1 hits in {0, 1}, or reciprocal ranks) for one model, one split, one direction.
Keys with query_lang == corpus_lang are monolingual (T1, or T3 mono), the others
cross-lingual (T2, or T3 cross). Every array is 1-d and aligned by the same query pair ids
(position i is pair id i in every array), which is what lets one bootstrap resample of
pair ids be applied to all language pairs jointly. Language codes are those of
:mod:`personalign.languages`.

Definitions (DESIGN.md section 3), m(a, b) = mean over queries of values[(a, b)]:

    cross-lingual drop      1 - mean_{a != b} m(a, b) / mean_a m(a, a)
    transfer gap (grouping) mean_{a != b, shared} m(a, b) - mean_{a != b, not shared} m(a, b),
                            shared = same script | same script group | same family
    direction asymmetry     m(a, b) - m(b, a) for each unordered pair {a, b}
    forward vs reverse      mean over configurations of m_fwd(a, b) - m_rev(b, a), where
                            forward (a, b) = persona in a -> instruction in b, and reverse
                            (b, a) = instruction in b -> persona in a (same two texts' languages,
                            opposite direction)

Means over language pairs are unweighted (each pair counts once; with aligned arrays of equal
length this equals the pooled per-query mean). Intervals come from one joint bootstrap over
query ids (``stats.bootstrap_means``, same seed = same resamples in every function); they
reflect query sampling only, not the choice of languages. An empty group gives NaN estimates
(None in ``to_dict``), never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personalign.analysis.stats import (
    Estimate,
    bootstrap_means,
    bootstrap_p_value,
    holm,
    json_float,
    percentile_interval,
)
from personalign.languages import ALL_CODES, BY_CODE, same_family, same_script, same_script_group

PairKey = tuple[str, str]
PairValues = Mapping[PairKey, np.ndarray]

GROUPINGS: dict[str, Callable[[str, str], bool]] = {
    "script": same_script,
    "script_group": same_script_group,
    "family": same_family,
}

_NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), float("nan"))


def _lang_order(code: str) -> int:
    return ALL_CODES.index(code) if code in BY_CODE else len(ALL_CODES)


def check_pair_values(values: PairValues, what: str = "values") -> int:
    """Check the ``PairValues`` convention; return the common number of queries n.

    Raises ValueError naming the offending key when a key is not a (str, str) tuple, an array
    is not 1-d, is empty, holds a non-finite value, or differs in length from the others.
    """
    if not values:
        raise ValueError(f"{what} is empty: pass per-query values for at least one language pair")
    n: int | None = None
    first: PairKey | None = None
    for key, arr in values.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise ValueError(f"{what}: keys must be (query_lang, corpus_lang) tuples, got {key!r}")
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{what}[{key}]: expected a non-empty 1-d array, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{what}[{key}]: values must be finite")
        if n is None:
            n, first = a.size, key
        elif a.size != n:
            raise ValueError(
                f"{what}[{key}] has {a.size} queries but {what}[{first}] has {n}; all arrays "
                "must be aligned by the same query pair ids"
            )
    assert n is not None
    return n


def _check_codes(keys: Iterable[PairKey], what: str) -> None:
    for key in keys:
        for code in key:
            if code not in BY_CODE:
                raise ValueError(
                    f"{what}: unknown language code {code!r} in key {key}; use codes from "
                    f"personalign.languages: {', '.join(ALL_CODES)}"
                )


def restrict(values: PairValues, languages: Sequence[str]) -> dict[PairKey, np.ndarray]:
    """The entries of ``values`` whose query and corpus languages are both in ``languages``."""
    keep = set(languages)
    return {k: v for k, v in values.items() if k[0] in keep and k[1] in keep}


def _sorted_keys(keys: Iterable[PairKey]) -> list[PairKey]:
    return sorted(keys, key=lambda k: (_lang_order(k[0]), k[0], _lang_order(k[1]), k[1]))


def _estimate(
    point: float, boot: np.ndarray, alpha: float, null: float | None = None
) -> Estimate:
    """Estimate from a statistic's bootstrap samples; p-value vs the null value if given."""
    if not np.isfinite(point):
        return _NAN_ESTIMATE
    lo, hi = percentile_interval(boot, alpha)
    p = None if null is None else bootstrap_p_value(boot - null, point - null)
    return Estimate(float(point), lo, hi, p)


def _means(
    matrix: np.ndarray, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(observed column means (k,), bootstrap column means (R, k))."""
    return matrix.mean(axis=0), bootstrap_means(matrix, n_resamples, seed)


def _stack(values: PairValues, keys: Sequence[PairKey]) -> np.ndarray:
    return np.stack([np.asarray(values[k], dtype=np.float64) for k in keys], axis=1)


@dataclass(frozen=True)
class DropResult:
    """Cross-lingual drop = 1 - cross_mean / mono_mean (a share; 0.25 = 25 % lower R@1)."""

    drop: Estimate
    mono_mean: float  # mean over languages a of m(a, a)
    cross_mean: float  # mean over ordered pairs a != b of m(a, b)
    n_languages: int  # monolingual entries used
    n_pairs: int  # cross-lingual entries used
    n_queries: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.drop.to_dict(),
            "mono_mean": json_float(self.mono_mean),
            "cross_mean": json_float(self.cross_mean),
            "n_languages": self.n_languages,
            "n_pairs": self.n_pairs,
            "n_queries": self.n_queries,
        }


def crosslingual_drop(
    values: PairValues, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> DropResult:
    """Cross-lingual drop 1 - mean T2 / mean T1 with a joint bootstrap interval.

    ``values`` holds T1 entries (a, a) and T2 entries (a, b), a != b. The estimate is NaN when
    either kind is missing or the T1 mean is 0; resamples whose T1 mean is 0 are left out of
    the interval. p_value tests drop = 0.
    """
    n = check_pair_values(values)
    mono = _sorted_keys(k for k in values if k[0] == k[1])
    cross = _sorted_keys(k for k in values if k[0] != k[1])
    if not mono or not cross:
        return DropResult(_NAN_ESTIMATE, float("nan"), float("nan"), len(mono), len(cross), n)
    obs, boot = _means(_stack(values, mono + cross), n_resamples, seed)
    k = len(mono)
    mono_obs, cross_obs = float(obs[:k].mean()), float(obs[k:].mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        point = 1.0 - cross_obs / mono_obs if mono_obs != 0 else float("nan")
        boot_drop = 1.0 - boot[:, k:].mean(axis=1) / boot[:, :k].mean(axis=1)
    return DropResult(
        drop=_estimate(point, boot_drop, alpha, null=0.0),
        mono_mean=mono_obs,
        cross_mean=cross_obs,
        n_languages=len(mono),
        n_pairs=len(cross),
        n_queries=n,
    )


@dataclass(frozen=True)
class GapResult:
    """Transfer gap for one grouping: shared_mean - other_mean over cross-lingual pairs."""

    grouping: str  # "script" | "script_group" | "family"
    gap: Estimate
    shared_mean: float
    other_mean: float
    shared_pairs: list[PairKey] = field(default_factory=list)
    n_other_pairs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "grouping": self.grouping,
            **self.gap.to_dict(),
            "shared_mean": json_float(self.shared_mean),
            "other_mean": json_float(self.other_mean),
            "shared_pairs": [list(k) for k in self.shared_pairs],
            "n_shared_pairs": len(self.shared_pairs),
            "n_other_pairs": self.n_other_pairs,
        }


def transfer_gaps(
    values: PairValues, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, GapResult]:
    """Transfer gap by same script, same script group and same family (keys of GROUPINGS).

    Only cross-lingual entries (a != b) of ``values`` are used. For each grouping: mean of
    m(a, b) over pairs sharing the attribute minus the mean over pairs not sharing it, with a
    joint bootstrap interval and a p-value for gap = 0. NaN when either side has no pair.
    """
    check_pair_values(values)
    cross = _sorted_keys(k for k in values if k[0] != k[1])
    _check_codes(cross, "transfer_gaps")
    out: dict[str, GapResult] = {}
    if not cross:
        for name in GROUPINGS:
            out[name] = GapResult(name, _NAN_ESTIMATE, float("nan"), float("nan"), [], 0)
        return out
    obs, boot = _means(_stack(values, cross), n_resamples, seed)
    for name, shares in GROUPINGS.items():
        mask = np.array([shares(a, b) for a, b in cross])
        shared_pairs = [k for k, m in zip(cross, mask, strict=True) if m]
        if mask.all() or not mask.any():
            shared_mean = float(obs[mask].mean()) if mask.any() else float("nan")
            other_mean = float(obs[~mask].mean()) if (~mask).any() else float("nan")
            out[name] = GapResult(
                name, _NAN_ESTIMATE, shared_mean, other_mean, shared_pairs, int((~mask).sum())
            )
            continue
        shared_mean, other_mean = float(obs[mask].mean()), float(obs[~mask].mean())
        boot_gap = boot[:, mask].mean(axis=1) - boot[:, ~mask].mean(axis=1)
        out[name] = GapResult(
            grouping=name,
            gap=_estimate(shared_mean - other_mean, boot_gap, alpha, null=0.0),
            shared_mean=shared_mean,
            other_mean=other_mean,
            shared_pairs=shared_pairs,
            n_other_pairs=int((~mask).sum()),
        )
    return out


@dataclass(frozen=True)
class AsymmetryResult:
    """Direction asymmetry of one unordered pair: m(lang_a, lang_b) - m(lang_b, lang_a)."""

    lang_a: str  # the earlier language in the language table
    lang_b: str
    forward_mean: float  # m(a, b)
    backward_mean: float  # m(b, a)
    diff: Estimate  # p_value: H0 diff = 0, per pair
    p_holm: float  # Holm-adjusted over all pairs returned together

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang_a": self.lang_a,
            "lang_b": self.lang_b,
            "forward_mean": json_float(self.forward_mean),
            "backward_mean": json_float(self.backward_mean),
            **self.diff.to_dict(),
            "p_holm": json_float(self.p_holm),
        }


def direction_asymmetry(
    values: PairValues, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> list[AsymmetryResult]:
    """Asymmetry m(a, b) - m(b, a) for every unordered pair with both directions present.

    Pairs are ordered by the language table (a before b); results come in that order, with
    bootstrap p-values Holm-adjusted across the returned pairs. Empty list if no pair has both
    directions.
    """
    check_pair_values(values)
    pairs: list[PairKey] = []
    for a, b in _sorted_keys(values):
        if a != b and (b, a) in values and (_lang_order(a), a) < (_lang_order(b), b):
            pairs.append((a, b))
    if not pairs:
        return []
    keys = [k for a, b in pairs for k in ((a, b), (b, a))]
    obs, boot = _means(_stack(values, keys), n_resamples, seed)
    diffs_obs = obs[0::2] - obs[1::2]
    diffs_boot = boot[:, 0::2] - boot[:, 1::2]
    estimates = [
        _estimate(float(diffs_obs[i]), diffs_boot[:, i], alpha, null=0.0)
        for i in range(len(pairs))
    ]
    adjusted = _holm_nan([e.p_value for e in estimates])
    return [
        AsymmetryResult(a, b, float(obs[2 * i]), float(obs[2 * i + 1]), estimates[i],
                        adjusted[i])
        for i, (a, b) in enumerate(pairs)
    ]


def _holm_nan(p_values: Sequence[float | None]) -> list[float]:
    """Holm adjustment over the finite p-values; NaN stays NaN (None counts as NaN)."""
    p = np.array([np.nan if v is None else v for v in p_values], dtype=np.float64)
    out = np.full(p.size, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = holm(p[finite].tolist())
    return [float(v) for v in out]


@dataclass(frozen=True)
class ForwardReverseResult:
    """persona->instruction minus instruction->persona over matched configurations."""

    subset: str  # "all" | "mono" | "cross"
    forward_mean: float
    reverse_mean: float
    n_pairs: int
    diff: Estimate  # p_value: H0 diff = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "subset": self.subset,
            "forward_mean": json_float(self.forward_mean),
            "reverse_mean": json_float(self.reverse_mean),
            "n_pairs": self.n_pairs,
            **self.diff.to_dict(),
        }


def forward_reverse(
    forward: PairValues,
    reverse: PairValues,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, ForwardReverseResult]:
    """Forward (T1/T2) minus reverse (T3) retrieval, for "all", "mono" and "cross" subsets.

    ``forward[(a, b)]``: persona queries in a, instruction corpus in b. ``reverse[(q, c)]``:
    instruction queries in q, persona corpus in c. Forward (a, b) is matched with reverse
    (b, a), the same two languages per role; configurations present on one side only are
    skipped. Both mappings must be aligned by the same pair ids (same n). diff = mean over
    matched configurations of m_fwd - m_rev (NaN for a subset with no configuration).
    """
    n_f = check_pair_values(forward, "forward")
    n_r = check_pair_values(reverse, "reverse")
    if n_f != n_r:
        raise ValueError(
            f"forward arrays have {n_f} queries but reverse arrays have {n_r}; both must be "
            "aligned by the same pair ids"
        )
    matched = [k for k in _sorted_keys(forward) if (k[1], k[0]) in reverse]
    out: dict[str, ForwardReverseResult] = {}
    if not matched:
        for subset in ("all", "mono", "cross"):
            out[subset] = ForwardReverseResult(subset, float("nan"), float("nan"), 0,
                                               _NAN_ESTIMATE)
        return out
    matrix = np.concatenate(
        [_stack(forward, matched), _stack(reverse, [(b, a) for a, b in matched])], axis=1
    )
    obs, boot = _means(matrix, n_resamples, seed)
    k = len(matched)
    is_mono = np.array([a == b for a, b in matched])
    subsets = {"all": np.ones(k, dtype=bool), "mono": is_mono, "cross": ~is_mono}
    for subset, mask in subsets.items():
        if not mask.any():
            out[subset] = ForwardReverseResult(subset, float("nan"), float("nan"), 0,
                                               _NAN_ESTIMATE)
            continue
        fwd_obs, rev_obs = float(obs[:k][mask].mean()), float(obs[k:][mask].mean())
        boot_diff = boot[:, :k][:, mask].mean(axis=1) - boot[:, k:][:, mask].mean(axis=1)
        out[subset] = ForwardReverseResult(
            subset=subset,
            forward_mean=fwd_obs,
            reverse_mean=rev_obs,
            n_pairs=int(mask.sum()),
            diff=_estimate(fwd_obs - rev_obs, boot_diff, alpha, null=0.0),
        )
    return out


def crosslingual_report(
    forward: PairValues,
    reverse: PairValues | None = None,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """All analyses above on query-aligned arrays, as one JSON-ready dict (NaN -> None).

    ``forward``: T1 + T2 entries (persona -> instruction); ``reverse``: T3 entries
    (instruction -> persona) or None. Keys: "crosslingual_drop", "transfer_gaps" (by
    grouping), "asymmetry" (list) from ``forward`` when it is non-empty; and from ``reverse``
    when given and non-empty: "reverse_crosslingual_drop", "reverse_asymmetry" and, with
    both, "forward_reverse" (by subset). Estimates are flattened: point, lo, hi, p_value.
    """
    report: dict[str, Any] = {"n_resamples": n_resamples, "alpha": alpha, "seed": seed}
    if forward:
        report["n_queries"] = check_pair_values(forward, "forward")
        report["crosslingual_drop"] = crosslingual_drop(
            forward, n_resamples, alpha, seed).to_dict()
        report["transfer_gaps"] = {
            name: gap.to_dict()
            for name, gap in transfer_gaps(forward, n_resamples, alpha, seed).items()
        }
        report["asymmetry"] = [
            r.to_dict() for r in direction_asymmetry(forward, n_resamples, alpha, seed)
        ]
    if reverse:
        report["n_queries"] = check_pair_values(reverse, "reverse")
        report["reverse_crosslingual_drop"] = crosslingual_drop(
            reverse, n_resamples, alpha, seed).to_dict()
        report["reverse_asymmetry"] = [
            r.to_dict() for r in direction_asymmetry(reverse, n_resamples, alpha, seed)
        ]
        if forward:
            report["forward_reverse"] = {
                subset: r.to_dict()
                for subset, r in forward_reverse(
                    forward, reverse, n_resamples, alpha, seed).items()
            }
    return report


def align_by_ids(
    values: Mapping[str, PairValues], ids: Mapping[str, Mapping[PairKey, Sequence[str]]]
) -> tuple[dict[str, dict[PairKey, np.ndarray]], list[str]]:
    """Reorder every array onto the pair ids common to all of them.

    ``values[task][key]`` holds per-query values whose pair ids are ``ids[task][key]`` (same
    length, no duplicates). Returns (aligned values, common ids in sorted order): position i
    of every aligned array is common id i. Ids missing from some array are dropped from all.
    """
    common: set[str] | None = None
    for task, per_pair in values.items():
        for key, arr in per_pair.items():
            try:
                key_ids = list(ids[task][key])
            except KeyError:
                raise ValueError(f"no pair ids given for task {task!r}, pair {key}") from None
            if len(key_ids) != len(np.asarray(arr)):
                raise ValueError(
                    f"{task} {key}: {len(np.asarray(arr))} values but {len(key_ids)} pair ids"
                )
            if len(set(key_ids)) != len(key_ids):
                raise ValueError(f"{task} {key}: duplicate pair ids; each query must be unique")
            common = set(key_ids) if common is None else common & set(key_ids)
    order = sorted(common or ())
    aligned: dict[str, dict[PairKey, np.ndarray]] = {}
    for task, per_pair in values.items():
        aligned[task] = {}
        for key, arr in per_pair.items():
            position = {pid: i for i, pid in enumerate(ids[task][key])}
            take = np.array([position[pid] for pid in order], dtype=np.int64)
            aligned[task][key] = np.asarray(arr, dtype=np.float64)[take]
    return aligned, order


def crosslingual_analysis(
    values: Mapping[str, PairValues],
    ids: Mapping[str, Mapping[PairKey, Sequence[str]]] | None = None,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Cross-lingual analyses from per-task values, e.g. ``{"t1": {...}, "t2": {...}, "t3": ...}``.

    ``values[task]`` is a ``PairValues`` mapping for task "t1", "t2" or "t3" (missing or
    empty tasks are skipped). With ``ids`` (same nesting, the pair id of every value), arrays
    are first aligned on the ids common to all of them (:func:`align_by_ids`); without, they
    must already be aligned. Forward = t1 + t2, reverse = t3; returns
    :func:`crosslingual_report` plus "n_queries" (aligned queries used) and "n_dropped_ids"
    (ids present in some array but not all).
    """
    present = {task: dict(v) for task, v in values.items() if v}
    n_dropped = 0
    if ids is not None and present:
        all_ids = {pid for task, v in present.items() for key in v for pid in ids[task][key]}
        aligned, common = align_by_ids(present, ids)
        if not common:
            raise ValueError("the per-pair arrays share no pair id; nothing can be compared")
        n_dropped = len(all_ids) - len(common)
    else:
        aligned = {task: {k: np.asarray(a, dtype=np.float64) for k, a in v.items()}
                   for task, v in present.items()}
    forward = {**aligned.get("t1", {}), **aligned.get("t2", {})}
    reverse = aligned.get("t3", {})
    report = crosslingual_report(forward, reverse or None, n_resamples, alpha, seed)
    report["n_dropped_ids"] = n_dropped
    return report
