"""Write everything a run produced into its output folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from personalign.data.schema import Dataset
from personalign.embeddings import EvalModel
from personalign.report.leaderboard import COLUMNS, leaderboard_rows, to_csv_rows, to_markdown
from personalign.results import (
    SCHEMA_VERSION,
    dataset_summary,
    environment,
    write_csv,
    write_json,
    write_parquet,
)
from personalign.runner import RunConfig, RunOutput


def results_document(
    ds: Dataset, output: RunOutput, *, config: RunConfig, models: list[EvalModel],
    device: str, elapsed_s: float | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "protocol": config.protocol,
        "dataset": dataset_summary(ds),
        "environment": environment(device, config.seed),
        "config": asdict(config),
        "models": [{"name": m.name, "description": m.description,
                    "prompts": {f"{role}/{d}": m.prompt(role, d)
                                for role in ("query", "document") for d in ("p2i", "i2p")}}
                   for m in models],
        "t4_negatives": output.t4_negatives,
        "results": [dict(e, protocol=config.protocol) for e in output.entries],
        "analyses": output.analyses,
        "timings": {"models": output.timings, "total_s": elapsed_s},
        "store": output.store_stats,
    }


def write_run(
    out: Path, ds: Dataset, output: RunOutput, *, config: RunConfig, models: list[EvalModel],
    device: str, elapsed_s: float | None = None,
) -> list[Path]:
    """results.json, per_query.parquet, t4_predictions.parquet, t4_reliability.parquet,
    leaderboard.md and leaderboard.csv under ``out``; returns the paths written."""
    out = Path(out)
    written: list[Path] = []
    doc = results_document(ds, output, config=config, models=models, device=device,
                           elapsed_s=elapsed_s)
    if output.per_query:
        write_parquet(out / "per_query.parquet", output.per_query)
        written.append(out / "per_query.parquet")
    if output.t4_predictions:
        write_parquet(out / "t4_predictions.parquet", output.t4_predictions)
        written.append(out / "t4_predictions.parquet")
    if output.t4_reliability:
        write_parquet(out / "t4_reliability.parquet", output.t4_reliability)
        written.append(out / "t4_reliability.parquet")
    rows = leaderboard_rows(output.entries, output.analyses)
    title = f"personalign leaderboard: {ds.name} ({config.protocol} protocol)"
    md = to_markdown(rows, title)
    write_csv(out / "leaderboard.csv", COLUMNS, to_csv_rows(rows))
    (out / "leaderboard.md").parent.mkdir(parents=True, exist_ok=True)
    from personalign.results import atomic_write

    atomic_write(out / "leaderboard.md", lambda p: p.write_text(md, encoding="utf-8"))
    written += [out / "leaderboard.md", out / "leaderboard.csv"]
    write_json(out / "results.json", doc)  # last: its presence marks a finished run
    written.insert(0, out / "results.json")
    return written
