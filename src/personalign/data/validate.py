"""Dataset checks with precise messages.

``validate_dataset`` checks records already in memory; ``validate_path`` loads a file,
folder or name with ``skip_bad_rows=True`` and reports the malformed rows the loader left
out together with every record-level issue, so one run lists all problems.

Checks (severity):
- unknown language code (error);
- missing or empty pair id, persona or instruction; blank negative or domain (error);
- negative identical to the gold instruction (error);
- duplicate ``(pair_id, lang)`` (error);
- script: ``share = personalign.languages.script_share(text, lang)``, the share of the
  text's letters that belong to the declared language's script. ``share < 0.5`` is an
  error (wrong language code, untranslated text, romanised text); ``0.5 <= share < 0.8``
  a warning (mixed script, e.g. English words kept in Latin script); a text with no
  letters at all a warning. Checked for persona, instruction and negative.
- alignment across languages (only with two or more languages): ids missing in some
  languages (warning: cross-lingual tasks use the ids shared by each language pair); two
  languages sharing no id (warning); a language sharing no id with any other (error).

What the script check cannot see: languages that share a script (hin/mar in Devanagari,
asm/ben in Bengali-Assamese script), Urdu versus other Perso-Arabic-script languages, and
romanised Indic text declared as English (eng_Latn). Native digits and the danda / Urdu
full stop are not letters and do not count; Latin acronyms in Indic text (e.g. "UPI") lower
the share a little, which is why the error threshold is 0.5 and not close to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from personalign.data.errors import DatasetError
from personalign.data.loaders import natural_id_key
from personalign.data.schema import Dataset, Record
from personalign.languages import BY_CODE, LANGUAGES, script_share

Severity = Literal["error", "warning"]

SCRIPT_ERROR_BELOW = 0.5
SCRIPT_WARNING_BELOW = 0.8
_EXAMPLES = 10  # ids listed in one alignment message


@dataclass(frozen=True)
class Issue:
    """One finding. ``code`` is a stable slug ("script-mismatch", "duplicate", ...)."""

    severity: Severity
    code: str
    message: str
    path: str | None = None
    line: int | None = None
    record_id: str | None = None
    lang: str | None = None

    def to_error(self) -> DatasetError:
        return DatasetError(self.message, path=self.path, line=self.line,
                            record_id=self.record_id)

    def __str__(self) -> str:
        return f"{self.severity}: {self.to_error()}"


def _script_names() -> dict[str, str]:
    """One representative language code per script (script tag -> code)."""
    out: dict[str, str] = {}
    for lang in LANGUAGES:
        out.setdefault(lang.script, lang.code)
    return out


_SCRIPT_REPRESENTATIVE = _script_names()


def dominant_script(text: str) -> str | None:
    """Script name (e.g. "Devanagari") holding most of the letters of ``text``; None if the
    text has no letters."""
    if not any(ch.isalpha() for ch in text):
        return None
    best = max(_SCRIPT_REPRESENTATIVE.values(), key=lambda code: script_share(text, code))
    if script_share(text, best) == 0.0:
        return "another script"
    return BY_CODE[best].script_name


def check_script(text: str, lang: str) -> tuple[Severity | None, str]:
    """``(severity or None, explanation)`` for the script check of one text."""
    declared = BY_CODE[lang]
    if not any(ch.isalpha() for ch in text):
        return "warning", "has no letters"
    share = script_share(text, lang)
    if share >= SCRIPT_WARNING_BELOW:
        return None, ""
    if share < SCRIPT_ERROR_BELOW:
        return "error", (
            f"only {share:.0%} of its letters are in {declared.script_name} script, expected "
            f"for {lang}; most are in {dominant_script(text)}: wrong language code, "
            "untranslated or romanised text?")
    return "warning", (
        f"{share:.0%} of its letters are in {declared.script_name} script (mixed script, "
        "e.g. words left in Latin script)")


def _location(ds: Dataset, r: Record, index: int) -> tuple[str | None, int | None, str]:
    path, line = ds.origin(r.lang, r.pair_id)
    suffix = "" if path is not None else f" (records[{index}], {r.lang})"
    return path, line, suffix


def _record_issues(ds: Dataset) -> list[Issue]:
    issues: list[Issue] = []
    seen: dict[tuple[str, str], int] = {}
    for index, r in enumerate(ds.records):
        path, line, where = _location(ds, r, index)
        pid = r.pair_id if r.pair_id else None

        def add(severity: Severity, code: str, message: str, lang: str | None = r.lang,
                path: str | None = path, line: int | None = line, pid: str | None = pid,
                where: str = where) -> None:
            issues.append(Issue(severity, code, message + where, path, line, pid, lang))

        if r.lang not in BY_CODE:
            add("error", "unknown-language",
                f"unknown language code {r.lang!r}; use a code of personalign.languages "
                f"such as hin_Deva")
            continue
        if not isinstance(r.pair_id, str) or not r.pair_id.strip():
            add("error", "empty-field", "pair_id is missing or empty")
        for name in ("persona", "instruction"):
            value = getattr(r, name)
            if not isinstance(value, str) or not value.strip():
                add("error", "empty-field", f"{name} is missing or empty")
        for name in ("negative", "domain"):
            value = getattr(r, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                add("error", "empty-field", f"{name} is present but empty; use null instead")
        if isinstance(r.negative, str) and r.negative.strip() == r.instruction.strip():
            add("error", "negative-is-gold", "negative is identical to the gold instruction")
        key = (r.lang, r.pair_id)
        if key in seen:
            first = ds.records[seen[key]]
            f_path, f_line, f_where = _location(ds, first, seen[key])
            first_at = f"{f_path}, line {f_line}" if f_path is not None else f_where.strip()
            add("error", "duplicate",
                f"duplicate pair id {r.pair_id!r} in {r.lang} (also at {first_at}); give "
                "every pair one id per language")
        else:
            seen[key] = index
        for name in ("persona", "instruction", "negative"):
            value = getattr(r, name)
            if not isinstance(value, str) or not value.strip():
                continue
            severity, why = check_script(value, r.lang)
            if severity is not None:
                code = "no-letters" if why == "has no letters" else "script-mismatch"
                add(severity, code, f"{name} {why}")
    return issues


def _alignment_issues(ds: Dataset) -> list[Issue]:
    ids: dict[str, set[str]] = {}
    for r in ds.records:
        if r.lang in BY_CODE:
            ids.setdefault(r.lang, set()).add(r.pair_id)
    langs = [code for code in BY_CODE if code in ids]
    if len(langs) < 2:
        return []
    issues: list[Issue] = []
    union = set().union(*ids.values())
    for lang in langs:
        others = [o for o in langs if o != lang]
        if not any(ids[lang] & ids[o] for o in others):
            issues.append(Issue(
                "error", "unaligned-language",
                f"{lang} shares no pair id with any other language ({', '.join(others)}); "
                "records of one pair must carry the same pair_id in every language",
                lang=lang))
            continue
        missing = sorted(union - ids[lang], key=natural_id_key)
        if missing:
            shown = ", ".join(missing[:_EXAMPLES]) + (" ..." if len(missing) > _EXAMPLES else "")
            issues.append(Issue(
                "warning", "missing-ids",
                f"{lang} lacks {len(missing)} of the {len(union)} pair ids found in other "
                f"languages ({shown}); cross-lingual tasks use the ids shared by each "
                "language pair", lang=lang))
    for i, a in enumerate(langs):
        for b in langs[i + 1:]:
            if not ids[a] & ids[b]:
                issues.append(Issue(
                    "warning", "unaligned-pair",
                    f"{a} and {b} share no pair id: no cross-lingual results for this pair",
                    lang=a))
    return issues


def validate_dataset(ds: Dataset, strict: bool = True) -> list[Issue]:
    """Run every check; return the issues (record checks in record order, then alignment).

    With ``strict`` the first error-severity issue is raised as DatasetError (warnings are
    never raised)."""
    issues = _record_issues(ds) + _alignment_issues(ds)
    if strict:
        for issue in issues:
            if issue.severity == "error":
                raise issue.to_error()
    return issues


def validate_path(
    spec: str | Path,
    *,
    languages: Sequence[str] | None = None,
    agreement: str = "all",
) -> tuple[Dataset | None, list[Issue]]:
    """Load ``spec`` (anything ``load_dataset`` accepts) skipping bad rows, and report every
    issue: the skipped rows (code "bad-row", error) first, then ``validate_dataset``'s.
    If the data cannot be loaded at all, returns ``(None, [that error])``."""
    from personalign.data.loaders import load_dataset

    try:
        ds = load_dataset(spec, skip_bad_rows=True,
                          languages=list(languages) if languages is not None else None,
                          agreement=agreement)
    except DatasetError as exc:
        return None, [Issue("error", "unreadable", exc.message, exc.path, exc.line,
                            exc.record_id)]
    issues = [
        Issue("error", "bad-row", entry["reason"], entry.get("file"), entry.get("line"),
              entry.get("record_id"))
        for entry in ds.meta.get("skipped", [])
    ]
    return ds, issues + validate_dataset(ds, strict=False)


def format_issues(issues: Sequence[Issue], limit: int = 50) -> str:
    """Plain-text report: a count line, then one line per issue (at most ``limit``)."""
    errors = sum(i.severity == "error" for i in issues)
    lines = [f"{errors} error(s), {len(issues) - errors} warning(s)"]
    lines += [str(issue) for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"... and {len(issues) - limit} more")
    return "\n".join(lines)
