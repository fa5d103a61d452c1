"""``personalign build check DATASET``: run the quality gate and write its report.

Mounted by ``personalign.build.cli`` as the typer sub-app ``check_app`` (a group whose
callback is the command, so ``personalign build check DATASET`` works without a
subcommand name). Writes into ``--out``: ``gate_report.json``, ``gate_report.md`` and
``rejected.jsonl`` (the failing records with their reasons), each atomically.

Exit codes: 0 every language's text pass rate >= ``--min-pass``; 1 some language below
it; 2 bad input (dataset, option, model unavailable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personalign.build.gate import (
    CHECKS,
    GateReport,
    run_gate,
    split_by_gate,
    write_rejected,
    write_report,
)
from personalign.console import console, err, fail
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset
from personalign.languages import BY_CODE, ENGLISH, parse_language_list

check_app = typer.Typer(
    help="Quality gate: language ID, script, repetition, untranslated text, length ratio "
         "and cross-lingual similarity to the English source.",
    add_completion=False,
    # A group whose callback is the command: no "COMMAND [ARGS]..." in the usage line, and
    # options may follow DATASET (click groups stop parsing options at the first argument).
    subcommand_metavar="",
    context_settings={"allow_interspersed_args": True},
)

REJECTED_NAME = "rejected.jsonl"


def _load(spec: str, skip_bad_rows: bool, languages: str | None) -> Dataset:
    from personalign.data.loaders import load_dataset

    codes = parse_language_list(languages)
    if codes is not None and ENGLISH not in codes:
        codes = [*codes, ENGLISH]  # the English source is what translations are checked against
    return load_dataset(spec, skip_bad_rows=skip_bad_rows, languages=codes)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.1f}%"


def _table(report: GateReport, min_pass: float) -> Table:
    table = Table(title=f"Quality gate: {report.dataset} (pass rates; per check: share of "
                        "texts passing)")
    table.add_column("language")
    for col in ("records", "records passing", "texts passing", *report.checks):
        table.add_column(col, justify="right")
    for lang, res in report.languages.items():
        rate = res.text_pass_rate
        style = "red" if rate is not None and rate < min_pass else ""
        cells = [_pct(res.checks[c].rate) for c in report.checks]
        table.add_row(f"{BY_CODE[lang].name} ({lang})", str(res.records), _pct(res.pass_rate),
                      f"[{style}]{_pct(rate)}[/]" if style else _pct(rate), *cells)
    return table


def _calibration_lines(report: GateReport) -> list[str]:
    lines: list[str] = []
    length = report.calibration.get("length-ratio", {}).get("languages", {})
    if length:
        parts = [f"{lang} [{b['low']:.2f}, {b['high']:.2f}]" for lang, b in length.items()
                 if b["low"] is not None]
        lines.append("length-ratio bounds (chars ratio to English): " + ", ".join(parts))
    sim = report.calibration.get("similarity", {}).get("languages", {})
    if sim:
        parts = [f"{lang} {c['threshold']:.3f} ({c['basis']})" for lang, c in sim.items()
                 if c["threshold"] is not None]
        uncal = [lang for lang, c in sim.items() if c["threshold"] is None]
        far = report.thresholds.get("similarity_far")
        lines.append(f"similarity thresholds (false-accept rate {far} on mismatched pairs): "
                     + ", ".join(parts))
        if uncal:
            lines.append("similarity not checked (too few texts to calibrate): "
                         + ", ".join(uncal))
    return lines


@check_app.callback(invoke_without_command=True)
def check_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset spec (name, folder or file), as "
                                                "for `personalign run`.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder for gate_report.json/.md and rejected.jsonl "
                            "(default: ./gate-<dataset name>).")] = None,
    no_embedding: Annotated[bool, typer.Option(
        "--no-embedding", help="Skip the cross-lingual similarity check (no model).")] = False,
    skip_bad_rows: Annotated[bool, typer.Option(
        help="Skip malformed dataset rows (listed in the report) instead of stopping.")
    ] = False,
    min_pass: Annotated[float, typer.Option(
        help="Exit with code 1 if any language's text pass rate is below this.")] = 0.98,
    languages: Annotated[str | None, typer.Option(
        help="Comma-separated languages to check (English, the source, is always "
             "loaded).")] = None,
    far: Annotated[float, typer.Option(
        help="False-accept rate on mismatched pairs that sets the similarity "
             "threshold.")] = 0.01,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Embedding cache folder (default: $PERSONALIGN_CACHE or "
             "~/.cache/personalign/embeddings).")] = None,
    threads: Annotated[int | None, typer.Option(
        help="CPU threads for the embedding model.")] = None,
    save_passed: Annotated[Path | None, typer.Option(
        help="Also save the records that passed as a dataset (.jsonl or .parquet).")
    ] = None,
) -> None:
    """Check every text of DATASET and write the gate report."""
    if not 0.0 <= min_pass <= 1.0:
        fail(f"--min-pass must lie in [0, 1], got {min_pass}")
    if save_passed is not None and save_passed.suffix.lower() not in (".jsonl", ".parquet"):
        fail(f"--save-passed must name a .jsonl or .parquet file, got {save_passed}")
    try:
        ds = _load(dataset, skip_bad_rows, languages)
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    if not ds.records:
        fail(f"{dataset}: no records to check")
    checks = [c for c in CHECKS if not (no_embedding and c == "similarity")]
    encoder = None
    store = None
    if not no_embedding:
        from personalign.models.base import DenseEncoder, ModelUnavailable
        from personalign.models.load import load_model
        from personalign.store import EmbeddingStore

        try:
            loaded = load_model("me5-small-nano", num_threads=threads)
        except ModelUnavailable as exc:
            fail(f"{exc}\n(or run with --no-embedding to skip the similarity check)")
        assert isinstance(loaded, DenseEncoder)
        encoder = loaded
        store = EmbeddingStore(cache_dir)
    try:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("embedding", total=None, visible=not no_embedding)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = run_gate(ds, encoder=encoder, store=store, checks=checks,
                              thresholds={"similarity_far": far}, progress=progress)
    except ValueError as exc:
        fail(str(exc))
    target = out if out is not None else Path(f"gate-{ds.name}")
    json_path, md_path = write_report(report, target)
    passed, rejected = split_by_gate(ds, report)
    rejected_path = write_rejected(target / REJECTED_NAME, rejected)
    console.print(_table(report, min_pass))
    for line in _calibration_lines(report):
        console.print(line, highlight=False)
    if report.source_missing():
        console.print(f"no {ENGLISH} records: the checks against the English source "
                      "(identity in untranslated, length-ratio, similarity) applied nowhere",
                      highlight=False)
    if ds.meta.get("skipped"):
        console.print(f"{len(ds.meta['skipped'])} malformed row(s) were left out by the "
                      "loader (listed in the report)", highlight=False)
    console.print(f"{len(rejected)} record(s) rejected, {len(report.failures)} failure(s). "
                  f"Wrote {json_path}, {md_path}, {rejected_path}", highlight=False)
    if save_passed is not None:
        from personalign.data.loaders import save_dataset

        console.print(f"Saved {len(passed.records)} passing record(s) to "
                      f"{save_dataset(passed, save_passed)}", highlight=False)
    below = report.below(min_pass, level="texts")  # the criterion is on texts
    if below:
        err.print(f"pass rate below {min_pass:.0%} in: {', '.join(below)}", highlight=False)
        raise typer.Exit(1)
