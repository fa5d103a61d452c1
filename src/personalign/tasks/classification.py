"""T4: persona–instruction compatibility as binary classification on frozen embeddings.

Design (built once per dataset, identical for every model):
- positives: every gold (persona_i, instruction_i) pair;
- negatives per persona i, drawn inside i's own split and language so that no text crosses
  splits: one *random* instruction of another pair, one *hard* instruction
  (``argmax_{j != i} tfidf_char_cos(instruction_i, instruction_j)``: model-independent, so
  every model sees the same negatives), and the *authored* hard negative when the dataset
  has one;
- splits grouped by pair id across all languages (train / calib / test, default 70/10/20,
  seed 42): a pair in test in any language is in no training split in any language.

Model (per evaluated encoder): features ``[u, v, |u - v|, u * v, cos(u, v)]`` for dense
encoders (u = persona, v = instruction, both L2-normalised), the single lexical score for
lexical baselines; StandardScaler + LogisticRegression (scikit-learn, fixed seed), trained
once on the training rows of all languages together and evaluated per language and on
"all". Calibrators are fitted on the calibration split only.

``paper`` protocol (reproducing aryashah2k/PI-Indic-Align src/runner.py, T4 branch): rows
split 70/10/20 at random stratified by label (personas leak across splits), features
``[|u - v|, u * v]``, calibrators fitted on the evaluated rows' own labels, and the
reference's ECE variant reported as ``ece_paper``. Its negatives (RapidFuzz
token_set_ratio >= 70, up to 10 per persona) are not reproduced: both protocols use the
design above, so that only the split, features and calibration differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from personalign.analysis.calibration import CALIBRATORS
from personalign.data.splits import paper_splits, split_per_row
from personalign.metrics.classification import (
    classification_metrics,
    ece_paper,
    ranking_metrics,
    reliability,
)
from personalign.scoring import block_rows

NEG_TYPES = ("random", "hard", "authored")
HARD_CRITERION = "tfidf-char(2-4, char_wb) cosine between gold and candidate instructions"


@dataclass
class T4Design:
    """One row per (persona, candidate instruction) example."""

    lang: list[str] = field(default_factory=list)
    pair_id: list[str] = field(default_factory=list)  # the persona's pair
    source_id: list[str] = field(default_factory=list)  # pair whose instruction is used
    kind: list[str] = field(default_factory=list)  # "positive" | "random" | "hard" | "authored"
    split: list[str] = field(default_factory=list)
    persona: list[str] = field(default_factory=list)
    candidate: list[str] = field(default_factory=list)

    @property
    def label(self) -> np.ndarray:
        return np.array([k == "positive" for k in self.kind], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, lang: str, pid: str, sid: str, kind: str, split: str, persona: str,
            candidate: str) -> None:
        self.lang.append(lang)
        self.pair_id.append(pid)
        self.source_id.append(sid)
        self.kind.append(kind)
        self.split.append(split)
        self.persona.append(persona)
        self.candidate.append(candidate)

    def negative_types(self) -> list[str]:
        present = set(self.kind)
        return [k for k in NEG_TYPES if k in present]


def _hard_neighbours(texts: Sequence[str]) -> np.ndarray:
    """Index of the most similar other text (char n-gram TF-IDF cosine); -1 if alone."""
    n = len(texts)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    x = vec.fit_transform(texts).tocsr()
    xt = x.T.tocsr()
    out = np.empty(n, dtype=np.int64)
    step = block_rows(n, 64.0)  # bounded memory: never the full n x n similarity matrix
    for start in range(0, n, step):
        stop = min(n, start + step)
        sims = np.asarray((x[start:stop] @ xt).todense())
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        out[start:stop] = sims.argmax(axis=1)
    return out


def build_design(
    tables: dict[str, dict[str, tuple[str, str, str | None]]],
    splits: dict[str, str],
    *,
    seed: int = 42,
    use_authored: bool = True,
) -> T4Design:
    """``tables[lang][pair_id] = (persona, instruction, authored_negative_or_None)``."""
    design = T4Design()
    for li, lang in enumerate(sorted(tables)):
        table = tables[lang]
        rng = np.random.default_rng([seed, li])
        by_split: dict[str, list[str]] = {}
        for pid in sorted(table):
            by_split.setdefault(splits[pid], []).append(pid)
        for split_name, ids in sorted(by_split.items()):
            instr = [table[p][1] for p in ids]
            hard = _hard_neighbours(instr)
            for i, pid in enumerate(ids):
                persona, instruction, negative = table[pid]
                design.add(lang, pid, pid, "positive", split_name, persona, instruction)
                if len(ids) < 2:
                    continue
                h = int(hard[i])
                choices = [j for j in range(len(ids)) if j != i and j != h]
                if choices:
                    r = int(choices[rng.integers(len(choices))])
                    design.add(lang, pid, ids[r], "random", split_name, persona, instr[r])
                design.add(lang, pid, ids[h], "hard", split_name, persona, instr[h])
                if use_authored and negative:
                    design.add(lang, pid, pid, "authored", split_name, persona, negative)
    return design


def pair_features(u: np.ndarray, v: np.ndarray, *, paper: bool = False) -> np.ndarray:
    """[u, v, |u - v|, u * v, cos(u, v)] for L2-normalised rows u, v; with ``paper`` the
    reference implementation's [|u - v|, u * v] (its src/classification.py build_features)."""
    if paper:
        return np.hstack([np.abs(u - v), u * v]).astype(np.float32)
    cos = np.einsum("ij,ij->i", u, v)[:, None]
    return np.hstack([u, v, np.abs(u - v), u * v, cos]).astype(np.float32)


@dataclass
class T4Outcome:
    entries: list[dict[str, Any]]  # result entries (one per language + "all")
    predictions: dict[str, list[Any]]  # per-row columns for Parquet
    reliability: list[dict[str, Any]]  # per-bin rows for reliability diagrams


def _metrics_block(y: np.ndarray, p: np.ndarray, paper: bool) -> dict[str, float]:
    m = classification_metrics(y, p)
    if paper:
        m["ece_paper"] = ece_paper(y, p)
    return m


def evaluate_t4(
    design: T4Design,
    features: np.ndarray,
    zero_shot: np.ndarray,
    *,
    model: str,
    protocol: str = "corrected",
    seed: int = 42,
    calibrators: Sequence[str] = ("temperature", "histogram", "isotonic", "platt"),
    progress: Callable[[str], None] | None = None,
) -> T4Outcome:
    """Train, calibrate and evaluate the compatibility classifier for one model.

    ``features``: (rows, f) per design row; ``zero_shot``: raw similarity per row (cosine for
    dense encoders), evaluated without training.
    """
    y = design.label
    paper = protocol == "paper"
    if paper:
        # The reference splits rows (not pairs), stratified by label, and fits its calibrator
        # on the very rows it evaluates (src/runner.py, evaluate_classifier on X_test).
        split = split_per_row(paper_splits(y, seed=seed), len(design))
        fit_cal = split == "test"
    else:
        split = np.array(design.split, dtype=object)
        fit_cal = split == "calib"
    train = split == "train"
    test = split == "test"
    if train.sum() == 0 or len(set(y[train])) < 2:
        raise ValueError("T4 needs positive and negative training rows; dataset too small")
    clf = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0, random_state=seed),
    )
    clf.fit(features[train], y[train])
    p_raw = clf.predict_proba(features)[:, 1]
    probs: dict[str, np.ndarray] = {"none": p_raw}
    for name in calibrators:
        cal_rows = fit_cal & np.isfinite(p_raw)
        if cal_rows.sum() == 0 or len(set(y[cal_rows])) < 2:
            continue
        cal = CALIBRATORS[name]().fit(p_raw[cal_rows], y[cal_rows])
        probs[name] = np.asarray(cal.predict(p_raw), dtype=np.float64)
    langs = np.array(design.lang, dtype=object)
    kinds = np.array(design.kind, dtype=object)
    entries: list[dict[str, Any]] = []
    rel_rows: list[dict[str, Any]] = []
    groups = [*sorted(set(design.lang)), "all"]
    for group in groups:
        mask = test & ((langs == group) if group != "all" else True)
        if mask.sum() == 0 or len(set(y[mask])) < 2:
            continue
        metrics: dict[str, Any] = _metrics_block(y[mask], p_raw[mask], paper)
        metrics["calibrated"] = {
            name: _metrics_block(y[mask], p[mask], paper)
            for name, p in probs.items() if name != "none"
        }
        metrics["zero_shot"] = ranking_metrics(y[mask], zero_shot[mask])
        by_neg: dict[str, dict[str, float]] = {}
        for neg in design.negative_types():
            sub = mask & ((kinds == "positive") | (kinds == neg))
            if len(set(y[sub])) < 2:
                continue
            by_neg[neg] = {
                "auroc": classification_metrics(y[sub], p_raw[sub])["auroc"],
                "zero_shot_auroc": ranking_metrics(y[sub], zero_shot[sub])["auroc"],
                "n_negatives": int((sub & (y == 0)).sum()),
            }
        metrics["by_negative"] = by_neg
        entries.append({
            "model": model, "task": "t4", "query_lang": group, "corpus_lang": group,
            "n": int(mask.sum()), "n_positive": int(y[mask].sum()),
            "negatives": design.negative_types(), "metrics": metrics,
        })
        for name, p in probs.items():
            for strategy in ("uniform", "quantile"):
                for row in reliability(y[mask], p[mask], 15, strategy=strategy):
                    rel_rows.append({"model": model, "lang": group, "calibration": name,
                                     "strategy": strategy, **row})
    predictions: dict[str, list[Any]] = {
        "model": [model] * len(design), "lang": design.lang, "pair_id": design.pair_id,
        "source_id": design.source_id, "kind": design.kind, "split": list(split),
        "label": y.tolist(), "zero_shot": zero_shot.astype(float).tolist(),
    }
    for name, p in probs.items():
        predictions[f"p_{name}"] = p.astype(float).tolist()
    if progress is not None:
        progress(f"t4 {model}: trained on {int(train.sum())} rows, tested {int(test.sum())}")
    return T4Outcome(entries, predictions, rel_rows)


def authored_win_rates(design: T4Design, zero_shot: np.ndarray) -> dict[str, dict[str, float]]:
    """Per language (and "all"): the share of personas whose gold instruction scores strictly
    above their authored hard negative under the raw similarity, ties counting one half.
    Uses every split (no training involved). Empty when the dataset has no authored
    negatives."""
    gold: dict[tuple[str, str], float] = {}
    neg: dict[tuple[str, str], float] = {}
    for i, kind in enumerate(design.kind):
        key = (design.lang[i], design.pair_id[i])
        if kind == "positive":
            gold[key] = float(zero_shot[i])
        elif kind == "authored":
            neg[key] = float(zero_shot[i])
    wins: dict[str, list[float]] = {}
    for key, s_neg in neg.items():
        s_gold = gold[key]
        w = 1.0 if s_gold > s_neg else 0.5 if s_gold == s_neg else 0.0
        wins.setdefault(key[0], []).append(w)
        wins.setdefault("all", []).append(w)
    return {lang: {"win_rate": float(np.mean(v)), "n": len(v)} for lang, v in wins.items()}
