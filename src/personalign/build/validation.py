"""Human-validation sheets: export a stratified sample for two raters, read it back, and
compute inter-rater agreement per language.

Sample. The same ``n`` pair ids go to every language, so the sheets are parallel like the
published ones. Eligible pairs are those present in every exported language. Pairs are
stratified by ``domain`` (by ``source`` when no eligible record has a domain; a single
stratum when neither is set; a missing value is its own stratum ""). Stratum sizes are
proportional with the largest-remainder rule: k_s = floor(n N_s / N), and the
n - sum_s k_s pairs left go one each to the strata with the largest remainders
n N_s / N - k_s (ties: stratum name). Within a stratum, pairs are ranked by
sha256("<seed>:<pair id>") and the first k_s are taken; sheet rows follow the same key
(a seeded shuffle that stops raters seeing one domain in a block). The key does not depend
on numpy or Python versions, so a seed always gives the same sample.

Sheet. ``<out_dir>/<lang code>.csv``, UTF-8 with a byte-order mark (so spreadsheet
programs show Indic scripts), columns SHEET_COLUMNS; rater_1, rater_2 and comment are left
empty. Raters fill rater_1 / rater_2 with "Completely Agree", "Partially Agree" or
"Do Not Agree" (or the codes 2 / 1 / 0). ``manifest.json`` records the dataset
fingerprint, n, seed, strata and pair ids. Every file is written to a temporary name and
renamed into place.
"""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from personalign.build.agreement import (
    LABELS,
    language_of_file,
    rating_sheets,
    read_ratings,
    sheet_agreement,
)
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset, Record
from personalign.languages import ALL_CODES, ENGLISH, resolve
from personalign.results import atomic_write, write_json

SHEET_COLUMNS: tuple[str, ...] = (
    "pair_id", "domain", "english_persona", "english_instruction", "persona", "instruction",
    "rater_1", "rater_2", "comment",
)

Ratings = list[tuple[str, str | None, str | None]]


def _key(seed: int, pair_id: str) -> str:
    return hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()


def allocate(population: dict[str, int], n: int) -> dict[str, int]:
    """Largest-remainder proportional allocation of ``n`` items over strata.

    k_s = floor(n N_s / N), then one more for each of the n - sum k_s strata with the
    largest remainders (n N_s mod N; ties broken by stratum name). Requires 0 <= n <= N;
    then k_s <= N_s and sum k_s = n. Example: sizes {a: 5, b: 3, c: 2}, n = 5: exact
    (2.5, 1.5, 1.0), floors (2, 1, 1), the one left goes to a (tie with b, a first):
    {a: 3, b: 1, c: 1}.
    """
    total = sum(population.values())
    if not 0 <= n <= total:
        raise ValueError(f"cannot draw {n} of {total} items")
    if total == 0:
        return {s: 0 for s in population}
    # Integer arithmetic throughout: no float rounding in floors or remainders.
    sizes = {s: n * size // total for s, size in population.items()}
    left = n - sum(sizes.values())
    order = sorted(population, key=lambda s: (-(n * population[s] % total), s))
    for s in order[:left]:
        sizes[s] += 1
    return sizes


def _select_languages(ds: Dataset, languages: Sequence[str] | None) -> list[str]:
    present = ds.languages()
    if not present:
        raise DatasetError(f"dataset {ds.name!r} has no records; nothing to export")
    if languages is None:
        indic = [code for code in present if code != ENGLISH]
        return indic or [ENGLISH]
    wanted: list[str] = []
    for name in languages:
        code = resolve(name).code
        if code not in wanted:
            wanted.append(code)
    missing = [code for code in wanted if code not in present]
    if missing:
        raise DatasetError(
            f"dataset {ds.name!r} has no records in {', '.join(missing)}; it has "
            f"{', '.join(present)}"
        )
    return [code for code in ALL_CODES if code in wanted]


def _index(ds: Dataset, languages: Iterable[str]) -> dict[str, dict[str, Record]]:
    keep = set(languages)
    index: dict[str, dict[str, Record]] = {code: {} for code in keep}
    for rec in ds.records:
        if rec.lang not in keep:
            continue
        if rec.pair_id in index[rec.lang]:
            raise DatasetError(
                f"dataset {ds.name!r} holds two {rec.lang} records for this pair id; a "
                "validation sheet needs one row per pair", record_id=rec.pair_id,
            )
        index[rec.lang][rec.pair_id] = rec
    return index


def select_pairs(
    ds: Dataset, n: int = 150, seed: int = 42, languages: Sequence[str] | None = None
) -> dict[str, Any]:
    """The stratified sample behind ``export_sheets`` (see the module docstring).

    Returns {languages, pair_ids (in sheet order), stratify_by ("domain" | "source" |
    None), strata {name: {population, sample}}, eligible (#pairs in every language)}.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    langs = _select_languages(ds, languages)
    index = _index(ds, [*langs, ENGLISH])
    eligible = set(index[langs[0]])
    for code in langs[1:]:
        eligible &= set(index[code])
    if n > len(eligible):
        raise DatasetError(
            f"asked for n={n} pairs but only {len(eligible)} pair ids of dataset "
            f"{ds.name!r} are present in every exported language ({', '.join(langs)}); "
            f"pass a smaller n or fewer languages"
        )
    # The stratum of a pair: the first value found in English, then the exported languages.
    look_in = [ENGLISH, *langs] if ENGLISH not in langs else langs

    def first(pair_id: str, attr: str) -> str | None:
        for code in look_in:
            rec = index[code].get(pair_id)
            value = getattr(rec, attr) if rec is not None else None
            if value:
                return str(value)
        return None

    stratify_by: str | None = None
    for attr in ("domain", "source"):
        if any(first(pid, attr) for pid in eligible):
            stratify_by = attr
            break
    members: dict[str, list[str]] = {}
    for pid in eligible:
        stratum = (first(pid, stratify_by) or "") if stratify_by else ""
        members.setdefault(stratum, []).append(pid)
    quota = allocate({s: len(m) for s, m in members.items()}, n)
    chosen: list[str] = []
    for stratum, pids in members.items():
        chosen += sorted(pids, key=lambda pid: (_key(seed, pid), pid))[: quota[stratum]]
    chosen.sort(key=lambda pid: (_key(seed, pid), pid))
    return {
        "languages": langs,
        "pair_ids": chosen,
        "stratify_by": stratify_by,
        "strata": {s: {"population": len(members[s]), "sample": quota[s]}
                   for s in sorted(members)},
        "eligible": len(eligible),
    }


def export_sheets(
    ds: Dataset,
    out_dir: Path,
    n: int = 150,
    seed: int = 42,
    languages: Sequence[str] | None = None,
) -> list[Path]:
    """Write one parallel rating sheet per language plus ``manifest.json`` to ``out_dir``.

    ``languages``: codes or names; None means every non-English language of ``ds`` (English
    alone when it is the only one). English texts fill english_persona /
    english_instruction when ``ds`` has them (empty otherwise). Returns the sheet paths in
    language-table order.
    """
    sample = select_pairs(ds, n=n, seed=seed, languages=languages)
    index = _index(ds, [*sample["languages"], ENGLISH])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for code in sample["languages"]:
        rows: list[list[str]] = []
        for pid in sample["pair_ids"]:
            rec = index[code][pid]
            eng = index[ENGLISH].get(pid)
            domain = rec.domain or (eng.domain if eng is not None else None) or ""
            rows.append([
                pid, domain,
                eng.persona if eng is not None else "",
                eng.instruction if eng is not None else "",
                rec.persona, rec.instruction, "", "", "",
            ])
        path = out_dir / f"{code}.csv"
        atomic_write(path, functools.partial(_write_csv, rows=rows))
        paths.append(path)
    write_json(out_dir / "manifest.json", {
        "dataset": ds.name,
        "fingerprint": ds.fingerprint(),
        "n": n,
        "seed": seed,
        "rating_scale": {label: code for code, label in enumerate(LABELS)},
        "stratify_by": sample["stratify_by"],
        "strata": sample["strata"],
        "eligible_pairs": sample["eligible"],
        "languages": sample["languages"],
        "files": [p.name for p in paths],
        "pair_ids": sample["pair_ids"],
    })
    return paths


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    # utf-8-sig: the byte-order mark makes spreadsheet programs read the file as UTF-8.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SHEET_COLUMNS)
        writer.writerows(rows)


def import_sheets(paths: Iterable[Path | str]) -> dict[str, Ratings]:
    """Read filled sheets: {language code: [(pair id, rating 1, rating 2), ...]} in file
    order, ratings as canonical labels or None for an empty cell. The language comes from
    the file name. Also reads the published format (id, expert_1, expert_2).

    Raises DatasetError naming the file and row for an unknown rating, a missing or
    duplicate pair id, a file that is not a sheet, or two sheets for one language.
    """
    out: dict[str, Ratings] = {}
    files: dict[str, Path] = {}
    for item in paths:
        path = Path(item)
        lang = language_of_file(path)
        if lang in out:
            raise DatasetError(f"{files[lang].name} and {path.name} are both sheets for "
                               f"{lang}; keep one", path=path)
        out[lang] = read_ratings(path)
        files[lang] = path
    return out


def validation_report(
    folder: Path, *, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per-language agreement of the filled sheets in ``folder`` (every CSV with rating
    columns; other files are ignored), in language-table order.

    Each row: language, name, file, n_rows, parallel (True when every sheet in the folder
    holds the same set of pair ids), then the keys of ``agreement_report``. Rows with a
    missing rating are left out of the statistics and counted in n_incomplete.
    """
    sheets = rating_sheets(Path(folder))
    ratings = import_sheets(path for _, path in sheets)
    id_sets = {frozenset(pid for pid, _, _ in rows) for rows in ratings.values()}
    parallel = len(id_sets) == 1
    report: list[dict[str, Any]] = []
    for lang, path in sheets:
        rows = ratings[lang]
        stats = sheet_agreement(path, rows, n_boot=n_boot, seed=seed)
        report.append({"language": lang, "name": resolve(lang).name, "file": path.name,
                       "n_rows": len(rows), "parallel": parallel, **stats})
    return report
