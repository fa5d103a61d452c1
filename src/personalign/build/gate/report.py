"""The gate's report: per-language pass rates, calibration, failures; JSON and Markdown.

``report.to_dict()`` is the JSON document (format ``personalign.gate.report/1``);
``GateReport.from_dict`` reads it back, so a pipeline stage can split a dataset with a
report written earlier. ``write_report`` writes ``gate_report.json`` and
``gate_report.md`` atomically (temporary file + ``os.replace``).

Rates: a check's pass rate in a language = texts that passed it / texts it applied to
(persona, instruction and negative are separate texts; checks that need the English source
do not apply to English texts or to texts without a source). A record passes when every
one of its texts passes every check that applied; the language's pass rate is the share
of its records that pass.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from personalign.build.gate.settings import CHECKS, SOURCE_CHECKS
from personalign.languages import ALL_CODES, BY_CODE, ENGLISH

REPORT_FORMAT = "personalign.gate.report/1"
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
        return self.records_passed / self.records if self.records else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang, "records": self.records, "records_passed": self.records_passed,
            "pass_rate": self.pass_rate, "texts": self.texts, "texts_passed": self.texts_passed,
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

    def pass_rates(self) -> dict[str, float | None]:
        return {lang: res.pass_rate for lang, res in self.languages.items()}

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

    def below(self, min_pass: float) -> list[str]:
        """Languages whose record pass rate is under ``min_pass``."""
        return [lang for lang, rate in self.pass_rates().items()
                if rate is not None and rate < min_pass]

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
        )

    def to_markdown(self, max_failures: int | None = None) -> str:
        """The report as Markdown; ``max_failures`` caps the failures listed per language
        (None: all of them)."""
        return _markdown(self, max_failures)


def load_report(path: str | Path) -> GateReport:
    return GateReport.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temporary file in the target folder, fsync, give it the
    usual permissions (0666 minus the umask: mkstemp's 0600 would hide a report from the
    people it is for), then ``os.replace`` it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


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
                 max_markdown_failures: int | None = None) -> tuple[Path, Path]:
    """Write ``gate_report.json`` and ``gate_report.md`` into ``out_dir`` (created if
    needed), each atomically. Returns both paths."""
    out = Path(out_dir)
    doc = json.dumps(_finite(report.to_dict()), indent=1, ensure_ascii=False, allow_nan=False)
    json_path = atomic_write_text(out / JSON_NAME, doc + "\n")
    md_path = atomic_write_text(out / MARKDOWN_NAME, report.to_markdown(max_markdown_failures))
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


def _markdown(report: GateReport, max_failures: int | None) -> str:
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
    lines.append(f"- records failing: {len(report.failed_keys())}; failures: "
                 f"{len(report.failures)}")
    if report.skipped_rows:
        lines.append(f"- rows the loader left out (not checked): {len(report.skipped_rows)}")
        for row in report.skipped_rows:
            lines.append(f"  - {row.get('file')}, line {row.get('line')} (record "
                         f"{row.get('record_id')}): {row.get('reason')}")
    lines.append("")

    langs = _ordered(report.languages)
    lines += ["## Pass rates", "",
              "Record pass rate (all texts of the record pass every check that applies) and, "
              "per check, the share of texts that pass it (– : not applicable).", ""]
    header = ["language", "records", "passed", "pass rate", *report.checks]
    rows = []
    for lang in langs:
        res = report.languages[lang]
        rows.append([_name(lang), res.records, res.records_passed, _pct(res.pass_rate),
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
        lines += ["## Similarity threshold", "", sim["method"], "",
                  f"Model: `{sim.get('model')}`, prompt {sim.get('prompt')!r}.", ""]
        rows = []
        for lang in _ordered(sim["languages"]):
            c = sim["languages"][lang]
            mq, nq = c.get("matched_quantiles", {}), c.get("null_quantiles", {})
            rows.append([
                _name(lang), _num(c["threshold"]), c["basis"], c["null_n"],
                _pct(c["null_accept_rate"]), c["matched_n"], _pct(c["matched_reject_rate"]),
                _num(c["auroc"]),
                " / ".join(_num(mq.get(k)) for k in ("q01", "q05", "q50")),
                " / ".join(_num(nq.get(k)) for k in ("q50", "q95", "q99")),
            ])
        lines += [*_table(["language", "threshold", "basis", "null pairs", "null accepted",
                           "matched", "matched rejected", "AUROC", "matched q01/q05/q50",
                           "null q50/q95/q99"], rows), ""]

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
        rows = [[f.pair_id, f.field, f.check, f.reason, f.text] for f in shown]
        lines += _table(["pair id", "field", "check", "why", "text"], rows)
        if len(shown) < len(fails):
            lines.append(f"\n... and {len(fails) - len(shown)} more (see {JSON_NAME})")
        lines.append("")
    return "\n".join(lines)
