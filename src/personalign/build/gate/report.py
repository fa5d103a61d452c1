"""The gate's report: per-language pass rates, calibration, failures; JSON and Markdown.

``report.to_dict()`` is the JSON document (format ``personalign.gate.report/1``);
``GateReport.from_dict`` reads it back, so a pipeline stage can split a dataset with a
report written earlier. ``write_report`` writes ``gate_report.json`` and
``gate_report.md`` atomically (temporary file + ``os.replace``).

Rates, per language (persona, instruction and negative are separate texts; checks that
need the English source do not apply to English texts or to texts without a source):

- a check's pass rate = texts that passed it / texts it applied to;
- text pass rate = texts that passed every check that applied / texts;
- record pass rate (``pass_rate``, as in earlier reports) = records all of whose texts
  passed every check that applied / records.

Reviews (``attach_reviews``, ``load_reviews``): people who read the flagged texts record,
per failure (language, pair id, field, check), the verdict "faithful" (the text is a
faithful translation; the flag is a false alarm; the text stays) with a note; "fixed"
records a text that was flagged, corrected and now passes (what was wrong). The report
lists both, so no flagged text is dropped or waved through silently. Reviews never change
a pass rate: the rates are the gate's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from personalign.atomic import atomic_write_text
from personalign.build.gate.settings import CHECKS, SOURCE_CHECKS
from personalign.languages import ALL_CODES, BY_CODE, ENGLISH

REPORT_FORMAT = "personalign.gate.report/1"
REVIEW_FORMAT = "personalign.gate.review/1"
VERDICTS = ("faithful", "fixed")
JSON_NAME = "gate_report.json"
MARKDOWN_NAME = "gate_report.md"


@dataclass(frozen=True)
class Failure:
    """One text failing one check."""

    lang: str
    pair_id: str
    field: str  # "persona" | "instruction" | "negative"
    check: str
    reason: str
    value: float | None = None  # the measured quantity (share, ratio, cosine, count)
    text: str = ""  # the start of the text, for reading the report
    file: str | None = None  # where the record was read from, when known
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckCount:
    applicable: int = 0
    passed: int = 0

    @property
    def rate(self) -> float | None:
        return self.passed / self.applicable if self.applicable else None


@dataclass(frozen=True)
class Review:
    """A person's verdict on one flagged text (module docstring). ``text``: the start of
    the text as the report shows it (``Failure.text``) when it was reviewed, so a review
    of a text that has changed since does not silently apply to the new one."""

    lang: str
    pair_id: str
    field: str
    check: str
    verdict: str  # "faithful" | "fixed"
    note: str
    text: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.lang, self.pair_id, self.field, self.check)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LanguageResult:
    """Counts for one language. ``lid`` counts texts by who decided their language
    ("heliport", "heliport+pycld2" for short texts, "pycld2", "undetermined") and how many
    decisions agree with the declared language ("agree")."""

    lang: str
    records: int = 0
    records_passed: int = 0
    texts: int = 0
    texts_passed: int = 0
    checks: dict[str, CheckCount] = field(default_factory=dict)
    lid: dict[str, int] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float | None:
        """Record pass rate."""
        return self.records_passed / self.records if self.records else None

    @property
    def text_pass_rate(self) -> float | None:
        return self.texts_passed / self.texts if self.texts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang, "records": self.records, "records_passed": self.records_passed,
            "pass_rate": self.pass_rate, "record_pass_rate": self.pass_rate,
            "texts": self.texts, "texts_passed": self.texts_passed,
            "text_pass_rate": self.text_pass_rate,
            "checks": {name: {"applicable": c.applicable, "passed": c.passed, "rate": c.rate}
                       for name, c in self.checks.items()},
            "lid": dict(self.lid),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LanguageResult:
        return cls(doc["lang"], doc["records"], doc["records_passed"], doc["texts"],
                   doc["texts_passed"],
                   {name: CheckCount(c["applicable"], c["passed"])
                    for name, c in doc["checks"].items()}, dict(doc["lid"]))


@dataclass
class GateReport:
    dataset: str
    fingerprint: str  # Dataset.fingerprint() of the dataset that was checked
    checks: tuple[str, ...]  # the checks that ran
    thresholds: dict[str, Any]  # GateThresholds.to_dict()
    calibration: dict[str, Any]  # learned bounds and thresholds, with their basis
    languages: dict[str, LanguageResult]
    failures: list[Failure]
    skipped_rows: list[dict[str, Any]] = field(default_factory=list)  # left out by the loader
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    reviews: list[Review] = field(default_factory=list)  # see attach_reviews

    def pass_rates(self, level: str = "records") -> dict[str, float | None]:
        """Per language, the record pass rate (``level="records"``) or the text pass rate
        (``level="texts"``)."""
        if level not in ("records", "texts"):
            raise ValueError(f"level must be 'records' or 'texts', got {level!r}")
        return {lang: res.pass_rate if level == "records" else res.text_pass_rate
                for lang, res in self.languages.items()}

    def failed_keys(self) -> set[tuple[str, str]]:
        """``(lang, pair_id)`` of every record with at least one failure."""
        return {(f.lang, f.pair_id) for f in self.failures}

    def failures_by_record(self) -> dict[tuple[str, str], list[Failure]]:
        out: dict[tuple[str, str], list[Failure]] = {}
        for f in self.failures:
            out.setdefault((f.lang, f.pair_id), []).append(f)
        return out

    def source_missing(self) -> bool:
        """True when checks against the English source were asked for but the dataset has
        no English records (the hub release has none), so those checks applied nowhere."""
        return ENGLISH not in self.languages and any(c in SOURCE_CHECKS for c in self.checks)

    def below(self, min_pass: float, level: str = "records") -> list[str]:
        """Languages whose record (or, with ``level="texts"``, text) pass rate is under
        ``min_pass``."""
        return [lang for lang, rate in self.pass_rates(level).items()
                if rate is not None and rate < min_pass]

    def review_of(self, failure: Failure) -> Review | None:
        key = (failure.lang, failure.pair_id, failure.field, failure.check)
        return next((r for r in self.reviews if r.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "checks": list(self.checks),
            "thresholds": self.thresholds,
            "calibration": self.calibration,
            "languages": {lang: res.to_dict() for lang, res in self.languages.items()},
            "failures": [f.to_dict() for f in self.failures],
            "skipped_rows": self.skipped_rows,
            "environment": self.environment,
            "reviews": [r.to_dict() for r in self.reviews],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GateReport:
        if doc.get("format") != REPORT_FORMAT:
            raise ValueError(f"not a gate report (format {doc.get('format')!r}, expected "
                             f"{REPORT_FORMAT!r})")
        return cls(
            dataset=doc["dataset"], fingerprint=doc["fingerprint"],
            checks=tuple(doc["checks"]), thresholds=doc["thresholds"],
            calibration=doc["calibration"],
            languages={lang: LanguageResult.from_dict(res)
                       for lang, res in doc["languages"].items()},
            failures=[Failure(**f) for f in doc["failures"]],
            skipped_rows=doc.get("skipped_rows", []), environment=doc.get("environment", {}),
            created=doc.get("created", ""),
            reviews=[Review(**r) for r in doc.get("reviews", [])],
        )

    def to_markdown(self, max_failures: int | None = None) -> str:
        """The report as Markdown; ``max_failures`` caps the failures listed per language
        (None: all of them)."""
        return _markdown(self, max_failures, JSON_NAME)


def load_report(path: str | Path) -> GateReport:
    return GateReport.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def load_reviews(path: str | Path) -> list[Review]:
    """Reviews from a JSON file ``{"format": "personalign.gate.review/1", "reviews":
    [{"lang", "pair_id", "field", "check", "verdict", "note", "text"}, ...]}``.
    ValueError naming the file and the entry for anything malformed."""
    where = Path(path)
    doc = json.loads(where.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != REVIEW_FORMAT:
        raise ValueError(f"{where}: not a gate review file (expected \"format\": "
                         f"{REVIEW_FORMAT!r})")
    known = {"lang", "pair_id", "field", "check", "verdict", "note", "text"}
    out: list[Review] = []
    for n, entry in enumerate(doc.get("reviews", [])):
        missing = sorted(known - {"text"} - set(entry))
        unknown = sorted(set(entry) - known)
        if missing or unknown:
            raise ValueError(f"{where}: reviews[{n}] has missing keys {missing} or unknown "
                             f"keys {unknown}")
        out.append(Review(**entry))
    return out


def attach_reviews(report: GateReport, reviews: Iterable[Review]) -> GateReport:
    """``report`` with ``reviews`` attached, after checking each against it: a "faithful"
    review must name a failure of the report whose text still starts as reviewed; a
    "fixed" review must name no failure (the corrected text passes). ValueError listing
    every review that does not fit, and duplicates."""
    failures = {(f.lang, f.pair_id, f.field, f.check): f for f in report.failures}
    problems: list[str] = []
    seen: set[tuple[str, str, str, str]] = set()
    kept: list[Review] = []
    for r in reviews:
        name = f"{r.lang} {r.pair_id} {r.field} {r.check}"
        if r.key in seen:
            problems.append(f"{name}: reviewed twice")
            continue
        seen.add(r.key)
        if r.verdict not in VERDICTS:
            problems.append(f"{name}: verdict {r.verdict!r} is not one of {VERDICTS}")
        elif not r.note.strip():
            problems.append(f"{name}: the review has no note (say why)")
        elif r.verdict == "faithful" and r.key not in failures:
            problems.append(f"{name}: judged faithful, but the gate does not flag it (remove "
                            "the review, or mark it 'fixed' if the text was corrected)")
        elif r.verdict == "faithful" and r.text and r.text != failures[r.key].text:
            problems.append(f"{name}: the text changed since it was reviewed; review it "
                            "again")
        elif r.verdict == "fixed" and r.key in failures:
            problems.append(f"{name}: marked fixed, but the gate still flags it "
                            f"({failures[r.key].reason})")
        kept.append(r)
    if problems:
        raise ValueError("reviews that do not fit this gate report:\n  " +
                         "\n  ".join(problems))
    return dataclasses.replace(report, reviews=kept)



def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def write_report(report: GateReport, out_dir: str | Path,
                 max_markdown_failures: int | None = None, *, json_name: str = JSON_NAME,
                 markdown_name: str = MARKDOWN_NAME) -> tuple[Path, Path]:
    """Write ``gate_report.json`` and ``gate_report.md`` (or ``json_name`` and
    ``markdown_name``) into ``out_dir`` (created if needed), each atomically. Returns both
    paths."""
    out = Path(out_dir)
    doc = json.dumps(_finite(report.to_dict()), indent=1, ensure_ascii=False, allow_nan=False)
    json_path = atomic_write_text(out / json_name, doc + "\n")
    md_path = atomic_write_text(out / markdown_name,
                                _markdown(report, max_markdown_failures, json_name))
    return json_path, md_path


# --------------------------------------------------------------------------------------
# Markdown


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.1f}%"


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _name(lang: str) -> str:
    language = BY_CODE.get(lang)
    return f"{language.name} ({lang})" if language is not None else lang


def _ordered(langs: Iterable[str]) -> list[str]:
    present = set(langs)
    return [c for c in ALL_CODES if c in present] + sorted(present - set(ALL_CODES))


def _texts_failing(report: GateReport) -> int:
    return len({(f.lang, f.pair_id, f.field) for f in report.failures})


def _markdown(report: GateReport, max_failures: int | None, json_name: str) -> str:
    lines = [f"# Quality gate: {report.dataset}", ""]
    lines.append(f"- dataset fingerprint: `{report.fingerprint}`")
    if report.created:
        lines.append(f"- created: {report.created}")
    lines.append(f"- checks run: {', '.join(report.checks)}")
    not_run = [c for c in CHECKS if c not in report.checks]
    if not_run:
        lines.append(f"- checks not run: {', '.join(not_run)}")
    if report.source_missing():
        lines.append(f"- no {ENGLISH} records: the checks against the English source "
                     "(identity in untranslated, length-ratio, similarity) applied nowhere")
    lines.append(f"- texts failing: {_texts_failing(report)}; records failing: "
                 f"{len(report.failed_keys())}; failures: {len(report.failures)}")
    if report.reviews:
        faithful = sum(r.verdict == "faithful" for r in report.reviews)
        fixed = sum(r.verdict == "fixed" for r in report.reviews)
        unreviewed = sum(report.review_of(f) is None for f in report.failures)
        lines.append(f"- reviewed by reading against the English: {faithful} failure(s) "
                     f"judged faithful (false alarms, texts kept), {fixed} text(s) fixed; "
                     f"failures not reviewed: {unreviewed}")
    if report.skipped_rows:
        lines.append(f"- rows the loader left out (not checked): {len(report.skipped_rows)}")
        for row in report.skipped_rows:
            lines.append(f"  - {row.get('file')}, line {row.get('line')} (record "
                         f"{row.get('record_id')}): {row.get('reason')}")
    lines.append("")

    langs = _ordered(report.languages)
    lines += ["## Pass rates", "",
              "Text pass rate: texts (persona, instruction, negative) that pass every check "
              "that applies to them. Record pass rate: records all of whose texts pass. Per "
              "check: the share of texts that pass it (– : not applicable).", ""]
    header = ["language", "texts", "passed", "text pass rate", "records", "passed",
              "record pass rate", *report.checks]
    rows = []
    for lang in langs:
        res = report.languages[lang]
        rows.append([_name(lang), res.texts, res.texts_passed, _pct(res.text_pass_rate),
                     res.records, res.records_passed, _pct(res.pass_rate),
                     *(_pct(res.checks[c].rate if c in res.checks else None)
                       for c in report.checks)])
    lines += [*_table(header, rows), ""]

    if "language-id" in report.checks:
        short = report.thresholds.get("lid_min_letters")
        confirm = report.thresholds.get("lid_confirm_letters")
        lines += ["## Language identification", "",
                  "heliport decides when confident; pycld2 when heliport is unsure; texts "
                  f"shorter than {confirm} letters only when both agree (heliport+pycld2), "
                  f"texts shorter than {short} letters are not judged (undetermined); "
                  "'agree' = the decided language is the declared one.", ""]
        rows = []
        for lang in langs:
            lid = report.languages[lang].lid
            decided = sum(lid.get(k, 0) for k in ("heliport", "heliport+pycld2", "pycld2"))
            rows.append([_name(lang), report.languages[lang].checks["language-id"].applicable,
                         lid.get("heliport", 0), lid.get("heliport+pycld2", 0),
                         lid.get("pycld2", 0), lid.get("undetermined", 0), lid.get("agree", 0),
                         _pct(lid.get("agree", 0) / decided if decided else None)])
        lines += [*_table(["language", "texts", "heliport", "heliport+pycld2 (short)",
                           "pycld2 (fallback)", "undetermined", "agree", "agreement"], rows),
                  ""]

    length = report.calibration.get("length-ratio")
    if length:
        lines += ["## Length-ratio bounds", "", length["method"], ""]
        rows = [[_name(lang), b["n"], _num(b["median_ratio"]), _num(b["sigma"]),
                 _num(b["low"]), _num(b["high"]), b["basis"]]
                for lang, b in ((lg, length["languages"][lg])
                                for lg in _ordered(length["languages"]))]
        lines += [*_table(["language", "texts", "median ratio", "sigma (log)", "low", "high",
                           "basis"], rows), ""]

    sim = report.calibration.get("similarity")
    if sim:
        lines += _similarity_markdown(sim)

    lines += _reviews_markdown(report)

    lines += ["## Failures", ""]
    if not report.failures:
        lines += ["None.", ""]
    by_lang: dict[str, list[Failure]] = {}
    for f in report.failures:
        by_lang.setdefault(f.lang, []).append(f)
    for lang in _ordered(by_lang):
        fails = by_lang[lang]
        n_records = len({f.pair_id for f in fails})
        lines += [f"### {_name(lang)}: {len(fails)} failure(s) in {n_records} record(s)", ""]
        shown = fails if max_failures is None else fails[:max_failures]
        rows = []
        for f in shown:
            review = report.review_of(f)
            rows.append([f.pair_id, f.field, f.check, f.reason, f.text,
                         "not reviewed" if review is None else f"judged {review.verdict}"])
        lines += _table(["pair id", "field", "check", "why", "text", "review"], rows)
        if len(shown) < len(fails):
            lines.append(f"\n... and {len(fails) - len(shown)} more (see {json_name})")
        lines.append("")
    return "\n".join(lines)


def _similarity_markdown(sim: dict[str, Any]) -> list[str]:
    score = sim.get("score", "cosine")
    lines = ["## Cross-lingual similarity", "", sim["method"], "",
             f"Model: `{sim.get('model')}`, prompt {sim.get('prompt')!r}. Identity score: "
             f"{score}.", ""]
    langs = _ordered(sim["languages"])
    rows = []
    for lang in langs:
        c = sim["languages"][lang]
        cos = c.get("cosine") or {}
        adequacy = c.get("adequacy") or {}
        rule = c.get("rule") or {}
        k_used = c.get("k_used") or {}
        rows.append([
            _name(lang), ", ".join(sorted({str(k) for k in k_used.values()})) or "–",
            _num(c["threshold"]), c["basis"], _num(cos.get("threshold")),
            _num(adequacy.get("bound")), rule.get("texts_checked", "–"),
            rule.get("rejected_identity", "–"), rule.get("rejected_adequacy_only", "–"),
            _pct(rule.get("matched_reject_rate")), c["null_n"],
            _pct(rule.get("null_accept_rate")),
        ])
    lines += ["The rule, per language: identity threshold (on the "
              f"{score}), cosine threshold and outlier bound (adequacy), texts rejected by "
              "each part, and the share of mismatched pairs the whole rule lets through.", ""]
    lines += [*_table(["language", "k", f"{score} threshold", "basis", "cosine threshold",
                       "outlier bound", "texts checked", "rejected: identity",
                       "rejected: adequacy only", "matched rejected", "null pairs",
                       "null accepted"], rows), ""]
    rows = []
    for lang in langs:
        c = sim["languages"][lang]
        cos = c.get("cosine") or {}
        rule = c.get("rule") or {}
        mq, nq = c.get("matched_quantiles", {}), c.get("null_quantiles", {})
        cmq, cnq = cos.get("matched_quantiles", {}), cos.get("null_quantiles", {})
        rows.append([
            _name(lang),
            " / ".join(_num(mq.get(k)) for k in ("q01", "q05", "q50")),
            " / ".join(_num(nq.get(k)) for k in ("q50", "q95", "q99")),
            _num(c.get("auroc"), 4),
            " / ".join(_num(cmq.get(k)) for k in ("q01", "q05", "q50")),
            " / ".join(_num(cnq.get(k)) for k in ("q50", "q95", "q99")),
            _num(cos.get("auroc"), 4), _pct(cos.get("matched_reject_rate")),
            _pct(rule.get("adequacy_alone_null_accept_rate")),
        ])
    lines += ["Distributions (matched: each text with its own source; null: mismatched "
              "pairs) and, for comparison, two single-part rules the gate does not apply: "
              "the raw cosine alone (its share of matched texts rejected) and "
              "the adequacy part alone (its share of mismatched pairs let through).", ""]
    lines += [*_table(["language", f"{score} matched q01/q05/q50", f"{score} null "
                       "q50/q95/q99", f"{score} AUROC", "cosine matched q01/q05/q50",
                       "cosine null q50/q95/q99", "cosine AUROC",
                       "cosine alone: matched rejected",
                       "adequacy alone: null accepted"], rows), ""]
    return lines


def _review_order(r: Review) -> tuple[int, str, str, int]:
    lang = ALL_CODES.index(r.lang) if r.lang in ALL_CODES else len(ALL_CODES)
    fields = ("persona", "instruction", "negative")
    return (lang, r.pair_id, r.field, fields.index(r.field) if r.field in fields else 3)


def _reviews_markdown(report: GateReport) -> list[str]:
    if not report.reviews:
        return []
    lines = ["## Review of flagged texts", "",
             "Each flagged text was read against its English source. 'Judged faithful': "
             "the translation is faithful and the flag is a false alarm; the text is kept "
             "as it is and still counts as failing in the rates above. 'Fixed': the text "
             "was flagged, found wrong and corrected; the corrected text passes.", ""]
    faithful = [r for r in report.reviews if r.verdict == "faithful"]
    fixed = [r for r in report.reviews if r.verdict == "fixed"]
    failures = {(f.lang, f.pair_id, f.field, f.check): f for f in report.failures}
    for title, group in (("Judged faithful (flag reviewed, text kept)", faithful),
                         ("Fixed after review", fixed)):
        lines += [f"### {title}: {len(group)}", ""]
        if not group:
            lines += ["None.", ""]
            continue
        rows = []
        for r in sorted(group, key=_review_order):
            f = failures.get(r.key)
            rows.append([_name(r.lang), r.pair_id, r.field, r.check,
                         _num(f.value) if f is not None else "–", r.note])
        lines += [*_table(["language", "pair id", "field", "check", "value now", "note"],
                          rows), ""]
    return lines
