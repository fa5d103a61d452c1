"""The main job: dataset -> embeddings -> scores -> metrics, for every model and task.

Data flows one way. For each model, every text any selected task needs is embedded first
(once per distinct prompt, through the embedding store), then retrieval tasks are scored
with blocked matrix products and T4 is trained and evaluated on the same vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from personalign.analysis.crosslingual import crosslingual_analysis
from personalign.data.schema import Dataset
from personalign.data.splits import grouped_splits
from personalign.embeddings import DenseViews, EvalModel, LexicalViews, View
from personalign.metrics.retrieval import retrieval_metrics
from personalign.scoring import gold_ranks, paired_scores
from personalign.store import EmbeddingStore
from personalign.tasks.base import TaskName, retrieval_tasks
from personalign.tasks.classification import (
    HARD_CRITERION,
    T4Design,
    authored_win_rates,
    build_design,
    evaluate_t4,
    pair_features,
)

Table = dict[str, dict[str, tuple[str, str, str | None]]]  # lang -> pair_id -> texts


@dataclass
class RunConfig:
    tasks: list[TaskName]
    protocol: str = "corrected"  # "corrected" | "paper"
    seed: int = 42
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    retrieval_split: str = "all"  # "all" | "test"
    memory_mb: float = 64.0
    use_authored_negatives: bool = True


@dataclass
class Progress:
    """Callbacks the CLI binds to progress bars; all optional."""

    start: Callable[[str, int], None] = lambda label, total: None
    advance: Callable[[int], None] = lambda n: None
    log: Callable[[str], None] = lambda msg: None


@dataclass
class RunOutput:
    entries: list[dict[str, Any]] = field(default_factory=list)
    per_query: dict[str, list[Any]] = field(default_factory=dict)
    t4_predictions: dict[str, list[Any]] = field(default_factory=dict)
    t4_reliability: list[dict[str, Any]] = field(default_factory=list)
    analyses: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    store_stats: dict[str, int] = field(default_factory=dict)
    t4_negatives: dict[str, Any] = field(default_factory=dict)


def build_tables(ds: Dataset) -> Table:
    tables: Table = {}
    for r in ds.records:
        tables.setdefault(r.lang, {})[r.pair_id] = (r.persona, r.instruction, r.negative)
    return tables


def _text(row: tuple[str, str, str | None], field: str) -> str:
    return row[0] if field == "persona" else row[1]


def _extend(columns: dict[str, list[Any]], new: dict[str, Any]) -> None:
    n = max(len(v) for v in new.values() if isinstance(v, list))
    for key, values in new.items():
        columns.setdefault(key, []).extend(values if isinstance(values, list) else [values] * n)


def evaluate(
    ds: Dataset,
    models: list[EvalModel],
    config: RunConfig,
    store: EmbeddingStore,
    progress: Progress | None = None,
) -> RunOutput:
    """Evaluate every model on every selected task of ``ds``; see module docstring."""
    progress = progress or Progress()
    tables = build_tables(ds)
    languages = ds.languages()
    splits = grouped_splits(ds.pair_ids(), fractions=config.split_fractions, seed=config.seed)
    eval_ids = (
        set(splits) if config.retrieval_split == "all"
        else {p for p, s in splits.items() if s == config.retrieval_split}
    )
    rtasks = retrieval_tasks(languages, config.tasks)
    design: T4Design | None = None
    if "t4" in config.tasks:
        design = build_design(tables, splits, seed=config.seed,
                              use_authored=config.use_authored_negatives)
    out = RunOutput()
    if design is not None:
        out.t4_negatives = {"types": design.negative_types(), "hard_criterion": HARD_CRITERION,
                            "random": "uniform over other pairs of the same split and language",
                            "authored": "the dataset's authored incompatible instruction"}
    for model in models:
        t0 = time.perf_counter()
        encode_s = 0.0
        dense = None if model.lexical else DenseViews(model, store)
        lexical = LexicalViews(model) if model.lexical else None
        if dense is not None:
            requests = view_requests(tables, config.tasks, design)
            te = time.perf_counter()
            dense.prepare(requests, on_plan=partial(progress.start, f"embed {model.name}"),
                          on_batch=progress.advance)
            encode_s = time.perf_counter() - te
        progress.start(f"score {model.name}", len(rtasks) + (1 if design else 0))
        hits: dict[str, dict[tuple[str, str], np.ndarray]] = {"t1": {}, "t2": {}, "t3": {}}
        hit_ids: dict[str, dict[tuple[str, str], list[str]]] = {"t1": {}, "t2": {}, "t3": {}}
        for task in rtasks:
            q_table, c_table = tables[task.query_lang], tables[task.corpus_lang]
            ids = sorted(set(q_table) & set(c_table) & eval_ids)
            if not ids:
                progress.advance(1)
                continue
            q_texts = [_text(q_table[p], task.query_field) for p in ids]
            c_texts = [_text(c_table[p], task.corpus_field) for p in ids]
            if dense is not None:
                q = dense.get(View("query", task.direction), q_texts)
                c = dense.get(View("document", task.direction), c_texts)
                res = gold_ranks(q, c, np.arange(len(ids)), memory_mb=config.memory_mb)
            else:
                assert lexical is not None
                qs, cs = lexical.pair(q_texts, c_texts)
                res = gold_ranks(qs, cs, np.arange(len(ids)), memory_mb=config.memory_mb)
            metrics = retrieval_metrics(res.rank)
            metrics["ties"] = int(res.ties.sum())
            out.entries.append({
                "model": model.name, "task": task.task, "query_lang": task.query_lang,
                "corpus_lang": task.corpus_lang, "n": len(ids), "metrics": metrics,
            })
            _extend(out.per_query, {
                "model": model.name, "task": task.task, "query_lang": task.query_lang,
                "corpus_lang": task.corpus_lang, "pair_id": ids,
                "rank": res.rank.tolist(), "ties": res.ties.tolist(),
                "gold_score": res.gold_score.astype(float).tolist(),
                "top1_pair_id": [ids[i] for i in res.top1],
            })
            hits[task.task][(task.query_lang, task.corpus_lang)] = (res.rank <= 1).astype(float)
            hit_ids[task.task][(task.query_lang, task.corpus_lang)] = ids
            progress.advance(1)
        if design is not None:
            feats, zero_shot = _t4_inputs(design, model, dense, paper=config.protocol == "paper")
            outcome = evaluate_t4(design, feats, zero_shot, model=model.name,
                                  protocol=config.protocol, seed=config.seed,
                                  progress=progress.log)
            out.entries.extend(outcome.entries)
            wins = authored_win_rates(design, zero_shot)
            if wins:
                out.analyses.setdefault(model.name, {})["authored_negative_win_rate"] = wins
            _extend(out.t4_predictions, outcome.predictions)
            out.t4_reliability.extend(outcome.reliability)
            progress.advance(1)
        out.analyses.setdefault(model.name, {}).update(
            crosslingual_analysis(hits, hit_ids, seed=config.seed))
        out.timings[model.name] = {"encode_s": encode_s, "total_s": time.perf_counter() - t0}
    out.store_stats = dict(store.stats)
    return out


def view_requests(
    tables: Table, tasks: list[TaskName], design: T4Design | None
) -> list[tuple[View, list[str]]]:
    """Every (view, texts) pair the selected tasks will ask for."""
    req: list[tuple[View, list[str]]] = []
    for table in tables.values():
        personas = [t[0] for t in table.values()]
        instructions = [t[1] for t in table.values()]
        if {"t1", "t2"} & set(tasks):
            req += [(View("query", "p2i"), personas), (View("document", "p2i"), instructions)]
        if "t3" in tasks:
            req += [(View("query", "i2p"), instructions), (View("document", "i2p"), personas)]
    if design is not None:
        req += [(View("query", "p2i"), design.persona), (View("document", "p2i"),
                                                          design.candidate)]
    return req


def _t4_inputs(
    design: T4Design, model: EvalModel, dense: DenseViews | None, *, paper: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Features and zero-shot scores per design row (persona as query, candidate as doc)."""
    if dense is not None:
        u = dense.get(View("query", "p2i"), design.persona)
        v = dense.get(View("document", "p2i"), design.candidate)
        return pair_features(u, v, paper=paper), paired_scores(u, v)
    # Lexical: fit per language on that language's candidate instructions; the one feature
    # is the lexical score itself.
    scores = np.zeros(len(design), dtype=np.float32)
    langs = np.array(design.lang, dtype=object)
    for lang in sorted(set(design.lang)):
        rows = np.flatnonzero(langs == lang)
        fitted = model.encoder.fit(sorted({design.candidate[i] for i in rows}))  # type: ignore[union-attr]
        qs = fitted.transform([design.persona[i] for i in rows], "query")
        cs = fitted.transform([design.candidate[i] for i in rows], "document")
        scores[rows] = paired_scores(qs, cs)
    return scores[:, None].astype(np.float32), scores
