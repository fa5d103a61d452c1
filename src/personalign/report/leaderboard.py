"""Leaderboard: one row per model, macro averages per task.

Columns (all macro averages: the mean over languages or ordered language pairs, each
weighted equally whatever its size):
- ``t1_r1``, ``t1_mrr10``: T1 Recall@1 and MRR@10 over languages;
- ``t2_r1``, ``t2_mrr10``: T2 over ordered pairs a != b;
- ``t3_mono_r1`` / ``t3_cross_r1``: T3 over a == b / a != b;
- ``xl_drop``: cross-lingual drop 1 - t2_r1 / t1_r1, with its bootstrap CI when known;
- ``t4_auroc``, ``t4_ece``, ``t4_ece_cal``: classifier on "all" languages (test split),
  ECE before and after the best calibrator on the calibration split (by its test ECE is not
  used to choose: isotonic is reported, as fitted on the calibration split);
- ``t4_zs_auroc``: zero-shot cosine AUROC;
- ``score``: mean of t1_r1, t2_r1 and t3 R@1 over all pairs — the sort key.
"""

from __future__ import annotations

import math
from typing import Any

COLUMNS = ["rank", "model", "score", "t1_r1", "t1_mrr10", "t2_r1", "t2_mrr10", "t3_mono_r1",
           "t3_cross_r1", "xl_drop", "xl_drop_ci", "t4_auroc", "t4_ece", "t4_ece_cal",
           "t4_zs_auroc"]
CALIBRATOR_SHOWN = "isotonic"


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def leaderboard_rows(
    entries: list[dict[str, Any]], analyses: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    analyses = analyses or {}
    models = list(dict.fromkeys(e["model"] for e in entries))
    rows: list[dict[str, Any]] = []
    for model in models:
        mine = [e for e in entries if e["model"] == model]

        def pick(task: str, metric: str, cross: bool | None = None,
                 mine: list[dict[str, Any]] = mine) -> float:
            vals = [e["metrics"].get(metric) for e in mine if e["task"] == task and (
                cross is None or (e["query_lang"] != e["corpus_lang"]) == cross)]
            return _mean([v for v in vals if isinstance(v, (int, float))])

        t4 = next((e for e in mine if e["task"] == "t4" and e["query_lang"] == "all"), None)
        t1, t2 = pick("t1", "recall@1"), pick("t2", "recall@1")
        drop = 1 - t2 / t1 if t1 and not math.isnan(t1) and not math.isnan(t2) else math.nan
        ci = analyses.get(model, {}).get("crosslingual_drop", {})
        lo, hi = ci.get("lo"), ci.get("hi")
        row = {
            "model": model,
            "t1_r1": t1, "t1_mrr10": pick("t1", "mrr@10"),
            "t2_r1": t2, "t2_mrr10": pick("t2", "mrr@10"),
            "t3_mono_r1": pick("t3", "recall@1", cross=False),
            "t3_cross_r1": pick("t3", "recall@1", cross=True),
            "xl_drop": drop,
            "xl_drop_ci": f"[{lo:.3f}, {hi:.3f}]" if isinstance(lo, float) and isinstance(
                hi, float) and not (math.isnan(lo) or math.isnan(hi)) else "",
            "t4_auroc": t4["metrics"]["auroc"] if t4 else math.nan,
            "t4_ece": t4["metrics"]["ece"] if t4 else math.nan,
            "t4_ece_cal": (t4["metrics"].get("calibrated", {}).get(CALIBRATOR_SHOWN, {})
                           .get("ece", math.nan) if t4 else math.nan),
            "t4_zs_auroc": t4["metrics"]["zero_shot"]["auroc"] if t4 else math.nan,
        }
        row["score"] = _mean([t1, t2, pick("t3", "recall@1")])
        rows.append(row)
    rows.sort(key=lambda r: -r["score"] if not math.isnan(r["score"]) else math.inf)
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]], title: str = "") -> str:
    lines = [f"## {title}", ""] if title else []
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        cells = [fmt(row.get(c, "")).replace("|", "\\|") for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[row.get(c, "") for c in COLUMNS] for row in rows]
