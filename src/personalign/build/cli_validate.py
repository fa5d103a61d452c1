"""``personalign build validate``: export rating sheets and compute inter-rater agreement.

Mounted by the top-level CLI as a typer sub-app (``validate_app``). Exit codes: 0 success,
2 bad input (dataset, sheet, option).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from personalign.build.agreement import PUBLISHED_COLUMNS, compare_to_published
from personalign.build.validation import export_sheets, select_pairs, validation_report
from personalign.console import console, fail
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset
from personalign.languages import parse_language_list
from personalign.results import atomic_write, write_json

validate_app = typer.Typer(
    help="Human validation: export stratified rating sheets, compute inter-rater agreement.",
    no_args_is_help=True,
    add_completion=False,
)

PUBLISHED_TABLE = "agreement_metrics_results.csv"


def _load(spec: str, skip_bad_rows: bool) -> Dataset:
    """Load a dataset spec with the project loader (imported here: the CLI stays usable for
    ``agreement`` without it)."""
    try:
        from personalign.data.loaders import load_dataset
    except ImportError as exc:
        raise DatasetError(f"the dataset loader is not available ({exc})") from None
    return load_dataset(spec, skip_bad_rows=skip_bad_rows)


@validate_app.command("export")
def export_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset spec (name, folder or file), as "
                                                "for `personalign run`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the sheets.")],
    n: Annotated[int, typer.Option(help="Pairs per sheet (the same pairs in every "
                                        "language).")] = 150,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 42,
    languages: Annotated[str | None, typer.Option(
        help="Comma-separated languages (codes or names); default: every non-English "
             "language of the dataset.")] = None,
    skip_bad_rows: Annotated[bool, typer.Option(
        help="Skip malformed dataset rows (listed) instead of stopping.")] = False,
) -> None:
    """Write one parallel rating sheet per language (stratified by domain, or by source)."""
    try:
        langs = parse_language_list(languages)
    except ValueError as exc:
        fail(str(exc))
    try:
        ds = _load(dataset, skip_bad_rows)
        sample = select_pairs(ds, n=n, seed=seed, languages=langs)
        paths = export_sheets(ds, out, n=n, seed=seed, languages=langs)
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    by = sample["stratify_by"] or "nothing (neither domain nor source is set)"
    table = Table(title=f"{n} pairs of {ds.name}, stratified by {by}, seed {seed}")
    for col in ("stratum", "pairs in all languages", "sampled"):
        table.add_column(col, justify="left" if col == "stratum" else "right")
    for name, info in sample["strata"].items():
        table.add_row(name or "(none)", str(info["population"]), str(info["sample"]))
    console.print(table)
    console.print(f"wrote {len(paths)} sheets and manifest.json to {out}", highlight=False)


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


def _ci(row: dict[str, Any], key: str) -> str:
    return (f"{_fmt(row[key])}\n[{_fmt(row[key + '_boot_lower'], 2)}, "
            f"{_fmt(row[key + '_boot_upper'], 2)}]")


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A report row with nested values flattened for CSV: dicts as ``key.sub`` columns, the
    table as JSON."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        elif isinstance(value, list):
            out[key] = json.dumps(value)
        else:
            out[key] = value
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    flat = [flat_row(r) for r in rows]
    columns: list[str] = []
    for r in flat:
        columns += [c for c in r if c not in columns]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)


@validate_app.command("agreement")
def agreement_cmd(
    folder: Annotated[Path, typer.Argument(
        help="Folder of filled sheets (pair_id, rater_1, rater_2) or of published sheets "
             "(id, expert_1, expert_2); one CSV per language, named after it.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the full report: .json or .csv.")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples (items).")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Per-language agreement (kappa, weighted kappa, Krippendorff's alpha, Gwet's AC1) with
    bootstrap CIs; compares with agreement_metrics_results.csv when the folder has it."""
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        fail(f"--out {out}: use a .json or .csv file name")
    try:
        rows = validation_report(folder, n_boot=n_boot, seed=seed)
        published = folder / PUBLISHED_TABLE
        comparison = compare_to_published(rows, published) if published.is_file() else None
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    table = Table(title=f"inter-rater agreement (95% bootstrap CI, {n_boot} resamples, "
                        f"seed {seed})")
    for col in ("language", "n", "agree %", "kappa", "kappa quad.", "alpha nominal",
                "alpha ordinal", "AC1", "both CA %"):
        table.add_column(col, justify="left" if col == "language" else "right", no_wrap=True)
    for r in rows:
        n_text = str(r["n_items"]) + (f" (+{r['n_incomplete']})" if r["n_incomplete"] else "")
        table.add_row(r["name"], n_text, _fmt(r["agreement_percentage"], 1),
                      _ci(r, "cohen_kappa"), _ci(r, "kappa_quadratic"),
                      _ci(r, "krippendorff_alpha"), _ci(r, "krippendorff_alpha_ordinal"),
                      _ci(r, "gwet_ac1"), _fmt(100 * r["both_completely_agree"], 1))
    console.print(table)
    if any(r["n_incomplete"] for r in rows):
        console.print("n (+k): k rows lack a rating and are left out.", highlight=False)
    if not all(r["parallel"] for r in rows):
        console.print("[yellow]note:[/] the sheets do not all hold the same pair ids.")
    if comparison is not None:
        worst = {col: max(d["abs_diff"] for d in comparison if d["column"] == col)
                 for col in PUBLISHED_COLUMNS}
        console.print(f"vs {PUBLISHED_TABLE} (published AC1 = rater-1-margin variant), max "
                      "abs diff: " + ", ".join(f"{c} {v:.1e}" for c, v in worst.items()),
                      highlight=False)
    if out is not None:
        if out.suffix.lower() == ".json":
            write_json(out, {"n_boot": n_boot, "seed": seed, "folder": str(folder),
                             "rows": rows, "published_comparison": comparison})
        else:
            atomic_write(out, lambda tmp: _write_csv(tmp, rows))
        console.print(f"wrote {out}", highlight=False)
