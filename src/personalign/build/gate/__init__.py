"""The automatic quality gate of the construction pipeline (synthesis -> translation ->
gate -> human validation).

::

    from personalign.build.gate import run_gate, split_by_gate, write_report, write_rejected

    report = run_gate(ds)                       # all checks; mE5-small from the registry
    report = attach_reviews(report, load_reviews("review.json"))  # optional: verdicts
    write_report(report, "out/")                # gate_report.json + gate_report.md
    passed, rejected = split_by_gate(ds, report)
    write_rejected("out/rejected.jsonl", rejected)

Modules: ``text`` (empty, script, repetition, untranslated), ``lid`` (heliport + pycld2),
``calibrate`` (length bounds, similarity margins and thresholds), ``core`` (running and
splitting), ``report`` (results, JSON, Markdown, reviews), ``settings`` (check names,
thresholds).
"""

from personalign.build.gate.core import (
    SIMILARITY_MODEL,
    SIMILARITY_PROMPT,
    RejectedRecord,
    run_gate,
    split_by_gate,
    write_rejected,
)
from personalign.build.gate.report import (
    CheckCount,
    Failure,
    GateReport,
    LanguageResult,
    Review,
    attach_reviews,
    load_report,
    load_reviews,
    write_report,
)
from personalign.build.gate.settings import (
    CHECKS,
    SIMILARITY_SCORES,
    SOURCE_CHECKS,
    TEXT_FIELDS,
    GateThresholds,
)

__all__ = [
    "CHECKS",
    "SIMILARITY_MODEL",
    "SIMILARITY_PROMPT",
    "SIMILARITY_SCORES",
    "SOURCE_CHECKS",
    "TEXT_FIELDS",
    "CheckCount",
    "Failure",
    "GateReport",
    "GateThresholds",
    "LanguageResult",
    "RejectedRecord",
    "Review",
    "attach_reviews",
    "load_report",
    "load_reviews",
    "run_gate",
    "split_by_gate",
    "write_rejected",
    "write_report",
]
