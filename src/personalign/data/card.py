"""Markdown dataset card: what is in a dataset, where it came from, how it splits.

Length statistics per language and field: characters = ``len(text)`` (Unicode code
points, so an Indic vowel sign counts as one), words = ``len(text.split())`` (whitespace
tokens). For each: mean, median and p95 (``numpy.percentile(values, 95)``, linear
interpolation). Split counts use ``grouped_splits`` (pairs grouped across languages)
unless an assignment is passed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from personalign.data.loaders import FULL_AGREEMENT
from personalign.data.schema import Dataset
from personalign.data.splits import SPLIT_NAMES, grouped_splits
from personalign.languages import BY_CODE

TEXT_FIELDS: tuple[str, ...] = ("persona", "instruction", "negative")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """``{"n", "chars_mean", "chars_median", "chars_p95", "words_mean", ...}`` of texts."""
    chars = np.array([len(t) for t in texts], dtype=float)
    words = np.array([len(t.split()) for t in texts], dtype=float)
    out: dict[str, float] = {"n": float(len(texts))}
    for name, values in (("chars", chars), ("words", words)):
        if len(values) == 0:
            out.update({f"{name}_mean": float("nan"), f"{name}_median": float("nan"),
                        f"{name}_p95": float("nan")})
            continue
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_median"] = float(np.median(values))
        out[f"{name}_p95"] = float(np.percentile(values, 95))
    return out


def _lang_label(code: str) -> str:
    lang = BY_CODE.get(code)
    return f"{code} ({lang.name})" if lang else code


def dataset_card(
    ds: Dataset,
    *,
    splits: dict[str, str] | None = None,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 42,
) -> str:
    """The Markdown card of ``ds``: summary (records, pairs, fingerprint), provenance and
    lineage, license, counts per language and per domain, length statistics, split counts,
    expert ratings (when records carry ``expert_1`` / ``expert_2``), skipped rows."""
    meta = ds.meta
    langs = ds.languages()
    unknown_langs = sorted({r.lang for r in ds.records} - set(langs))
    all_langs = langs + unknown_langs
    pair_ids = ds.pair_ids()
    out: list[str] = [f"# Dataset card: {ds.name}", ""]

    summary = [
        ("records", len(ds.records)),
        ("pairs (distinct pair ids)", len(pair_ids)),
        ("languages", len(all_langs)),
        ("authored negatives", sum(1 for r in ds.records if r.negative)),
        ("fingerprint (sha256 of texts)", f"`{ds.fingerprint()}`"),
    ]
    for key in ("format", "origin", "agreement", "limit"):
        if key in meta:
            summary.append((key, meta[key]))
    out += [_table(["item", "value"], summary), ""]

    out += ["## Provenance and license", ""]
    out.append(f"- Provenance: {meta.get('provenance', 'not recorded')}")
    out.append(f"- License: {meta.get('license', 'not recorded')}")
    sources = Counter(r.source or "(none)" for r in ds.records)
    out += ["", "Lineage (record `source`):", ""]
    out += [_table(["source", "records"], sorted(sources.items()))]
    out.append("")

    all_ids = set(pair_ids)
    out += ["## Records per language", ""]
    rows: list[list[object]] = []
    for code in all_langs:
        recs = [r for r in ds.records if r.lang == code]
        ids = {r.pair_id for r in recs}
        rows.append([_lang_label(code), len(recs), sum(1 for r in recs if r.negative),
                     len(all_ids - ids)])
    out += [_table(["language", "records", "with negative", "pair ids missing"], rows), ""]

    out += ["## Domains", ""]
    domains: dict[str, set[str]] = {}
    domain_records: Counter[str] = Counter()
    for r in ds.records:
        if r.domain:
            domains.setdefault(r.domain, set()).add(r.pair_id)
            domain_records[r.domain] += 1
    if domains:
        rows = [[d, len(domains[d]), domain_records[d]] for d in sorted(domains)]
        out += [_table(["domain", "pairs", "records"], rows)]
    else:
        out.append("No domain labels.")
    out.append("")

    out += ["## Text lengths", "",
            "Characters = Unicode code points; words = whitespace tokens; p95 = 95th "
            "percentile (linear interpolation).", ""]
    rows = []
    for code in all_langs:
        for name in TEXT_FIELDS:
            texts = [getattr(r, name) for r in ds.records
                     if r.lang == code and getattr(r, name)]
            if not texts:
                continue
            s = length_stats(texts)
            rows.append([code, name, int(s["n"]),
                         f"{s['chars_mean']:.1f}", f"{s['chars_median']:.1f}",
                         f"{s['chars_p95']:.1f}", f"{s['words_mean']:.1f}",
                         f"{s['words_median']:.1f}", f"{s['words_p95']:.1f}"])
    out += [_table(["language", "field", "n", "chars mean", "chars median", "chars p95",
                    "words mean", "words median", "words p95"], rows), ""]

    assignment = splits if splits is not None else grouped_splits(pair_ids, fractions, seed)
    how = ("given assignment" if splits is not None else
           f"grouped by pair id, fractions {tuple(fractions)}, seed {seed}")
    out += ["## Splits", "", f"Split: {how}.", ""]
    id_counts = Counter(assignment.get(pid, "(unassigned)") for pid in pair_ids)
    rec_counts = Counter(assignment.get(r.pair_id, "(unassigned)") for r in ds.records)
    names = list(SPLIT_NAMES) + sorted(set(id_counts) - set(SPLIT_NAMES))
    out += [_table(["split", "pairs", "records"],
                   [[n, id_counts.get(n, 0), rec_counts.get(n, 0)] for n in names]), ""]

    rated = [r for r in ds.records if "expert_1" in r.extra and "expert_2" in r.extra]
    if rated:
        out += ["## Expert ratings", "",
                f"Both experts '{FULL_AGREEMENT}' and raw agreement (expert_1 == expert_2) "
                "over the records loaded.", ""]
        rows = []
        for code in all_langs:
            recs = [r for r in rated if r.lang == code]
            if not recs:
                continue
            both = sum(r.extra["expert_1"] == r.extra["expert_2"] == FULL_AGREEMENT
                       for r in recs)
            same = sum(r.extra["expert_1"] == r.extra["expert_2"] for r in recs)
            rows.append([code, len(recs), both, f"{100.0 * same / len(recs):.1f}%"])
        out += [_table(["language", "rated", "both Completely Agree", "raw agreement"],
                       rows), ""]

    skipped = meta.get("skipped") or []
    out += ["## Skipped rows", ""]
    if skipped:
        rows = [[e.get("file"), e.get("line"), e.get("record_id"), e.get("reason")]
                for e in skipped]
        out += [_table(["file", "line", "record", "reason"], rows)]
    else:
        out.append("None.")
    out.append("")
    return "\n".join(out)
