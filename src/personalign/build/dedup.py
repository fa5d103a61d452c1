"""Exact and near-duplicate detection for synthesized personas and instructions.

Definitions:

- normalised text: NFKC, case-folded, every run of characters that are not letters,
  marks or digits replaced by one space, trimmed;
- exact duplicates: records whose normalised texts (of one field) are equal;
- shingles: the set of character 3-grams of the normalised text (the text itself when
  shorter than 3 characters);
- similarity: Jaccard J(A, B) = |A ∩ B| / |A ∪ B| of the shingle sets;
- near duplicates: connected components of the graph joining two texts with
  J >= ``threshold`` (default 0.8) that hold at least two different normalised texts.

Candidate pairs come from MinHash + LSH: signature_i(A) = min over shingles x of
(a_i * h(x) + b_i) mod p, with p = 2^31 - 1, h = crc32 mod p, (a_i, b_i) drawn from a
seeded generator; the 128 values are cut into 32 bands of 4 and two texts are candidates
when any band matches exactly. A pair with Jaccard s becomes a candidate with probability
1 - (1 - s^4)^32 (s = 0.8: > 0.9999; s = 0.5: 0.87); every candidate is then checked with
the exact Jaccard, so the result holds no false positives, and misses a pair above the
threshold only with the small probability above. Seeds fix the outcome.
"""

from __future__ import annotations

import json
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.data.schema import Record

FIELDS: tuple[str, ...] = ("persona", "instruction")
PRIME = (1 << 31) - 1
EXCERPT_CHARS = 160
DedupMode = Literal["report", "drop-exact", "drop-near"]
DEDUP_MODES: tuple[str, ...] = ("report", "drop-exact", "drop-near")

def normalize(text: str) -> str:
    """NFKC, case-folded, non-letter/mark/digit runs as one space, trimmed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Marks (category M) are kept: Indic vowel signs and viramas are part of words.
    kept = "".join(ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " "
                   for ch in folded)
    return " ".join(kept.split())


def shingles(text: str, k: int = 3) -> frozenset[str]:
    """Character k-grams of the normalised text (the text itself when shorter than k)."""
    norm = normalize(text)
    if len(norm) < k:
        return frozenset([norm])
    return frozenset(norm[i : i + k] for i in range(len(norm) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|A ∩ B| / |A ∪ B| (1.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def minhash_signatures(sets: Sequence[frozenset[str]], num_perm: int = 128,
                       seed: int = 0) -> np.ndarray:
    """(len(sets), num_perm) uint64 MinHash signatures (see the module docstring)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, size=num_perm, dtype=np.uint64)
    out = np.empty((len(sets), num_perm), dtype=np.uint64)
    for i, s in enumerate(sets):
        x = np.fromiter((zlib.crc32(g.encode("utf-8")) % PRIME for g in s), dtype=np.uint64,
                        count=len(s))
        # a < 2^31 and x < 2^31: a * x < 2^62 cannot overflow uint64.
        out[i] = ((np.outer(x, a) + b) % PRIME).min(axis=0)
    return out


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


@dataclass
class Cluster:
    """Records whose texts of one field are duplicates. ``ids`` in input order (the first
    is the one kept when dropping); ``min_similarity``: the smallest Jaccard of the pairs
    that joined the cluster (1.0 for exact clusters)."""

    field: str
    kind: Literal["exact", "near"]
    ids: list[str]
    texts: list[str]
    min_similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind, "size": len(self.ids),
                "ids": self.ids, "min_similarity": round(self.min_similarity, 4),
                "texts": [_excerpt(t) for t in self.texts]}


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 3] + "..."


def find_duplicates(
    ids: Sequence[str],
    texts: Sequence[str],
    *,
    field_name: str = "text",
    threshold: float = 0.8,
    bands: int = 32,
    rows: int = 4,
    seed: int = 0,
) -> list[Cluster]:
    """Exact and near-duplicate clusters among ``texts`` (module docstring), exact ones
    first, each group ordered by its first member's input position."""
    if len(ids) != len(texts):
        raise ValueError("ids and texts must have the same length")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    # Exact groups: one representative (the first) per normalised text.
    by_norm: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        by_norm.setdefault(normalize(t), []).append(i)
    reps = [members[0] for members in by_norm.values()]
    clusters = [Cluster(field_name, "exact", [ids[i] for i in m], [texts[i] for i in m], 1.0)
                for m in by_norm.values() if len(m) > 1]
    # Near: LSH over the representatives, verified with the exact Jaccard.
    sets = [shingles(texts[i]) for i in reps]
    uf = _UnionFind(len(reps))
    weakest: dict[tuple[int, int], float] = {}
    if len(reps) > 1:
        sig = minhash_signatures(sets, bands * rows, seed)
        checked: set[tuple[int, int]] = set()
        for band in range(bands):
            buckets: dict[bytes, list[int]] = {}
            part = sig[:, band * rows : (band + 1) * rows]
            for j in range(len(reps)):
                buckets.setdefault(part[j].tobytes(), []).append(j)
            for members in buckets.values():
                for x in range(len(members)):
                    for y in range(x + 1, len(members)):
                        pair = (members[x], members[y])
                        if pair in checked:
                            continue
                        checked.add(pair)
                        sim = jaccard(sets[pair[0]], sets[pair[1]])
                        if sim >= threshold:
                            weakest[pair] = sim
                            uf.union(*pair)
    groups: dict[int, list[int]] = {}
    for j in range(len(reps)):
        groups.setdefault(uf.find(j), []).append(j)
    for members in groups.values():
        if len(members) < 2:
            continue
        inside = set(members)
        sims = [s for (x, y), s in weakest.items() if x in inside and y in inside]
        rows_in = sorted(i for j in members for i in by_norm[normalize(texts[reps[j]])])
        clusters.append(Cluster(field_name, "near", [ids[i] for i in rows_in],
                                [texts[i] for i in rows_in], min(sims)))
    order = {pid: k for k, pid in enumerate(ids)}
    clusters.sort(key=lambda c: (c.kind != "exact", order[c.ids[0]]))
    return clusters


@dataclass
class DedupReport:
    """Duplicate clusters of a set of records, per field, and what was dropped."""

    threshold: float
    fields: tuple[str, ...]
    records: int
    clusters: list[Cluster] = field(default_factory=list)
    mode: str = "report"
    dropped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per field: exact/near clusters and the records in them beyond the first."""
        out: dict[str, dict[str, int]] = {}
        for f in self.fields:
            mine = [c for c in self.clusters if c.field == f]
            out[f] = {
                "exact_clusters": sum(c.kind == "exact" for c in mine),
                "exact_extra_records": sum(len(c.ids) - 1 for c in mine if c.kind == "exact"),
                "near_clusters": sum(c.kind == "near" for c in mine),
                "near_records": sum(len(c.ids) for c in mine if c.kind == "near"),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": ("exact: equal normalised text (NFKC, case-folded, punctuation as "
                       "space); near: Jaccard of character 3-gram sets >= threshold, "
                       "candidates by MinHash-LSH (32 bands x 4 rows), every pair verified "
                       "exactly; clusters = connected components"),
            "threshold": self.threshold, "fields": list(self.fields), "records": self.records,
            "mode": self.mode, "counts": self.counts(), "dropped": self.dropped,
            "clusters": [c.to_dict() for c in self.clusters],
        }


def dedup_records(
    records: Sequence[Record],
    *,
    fields: Sequence[str] = FIELDS,
    threshold: float = 0.8,
    mode: DedupMode = "report",
    seed: int = 0,
) -> tuple[list[Record], DedupReport]:
    """Find duplicate personas/instructions among ``records`` (one language, one record per
    pair id) and, by ``mode``, keep all ("report"), drop every record but the first of each
    exact cluster ("drop-exact"), or of each exact or near cluster ("drop-near").

    Returns (kept records in input order, report).
    """
    if mode not in DEDUP_MODES:
        raise ValueError(f"unknown dedup mode {mode!r}; use one of {', '.join(DEDUP_MODES)}")
    ids = [r.pair_id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("dedup_records needs one record per pair id (one language)")
    report = DedupReport(threshold, tuple(fields), len(records), mode=mode)
    for name in fields:
        texts = [getattr(r, name) or "" for r in records]
        report.clusters += find_duplicates(ids, texts, field_name=name, threshold=threshold,
                                           seed=seed)
    drop: set[str] = set()
    if mode != "report":
        for c in report.clusters:
            if c.kind == "exact" or mode == "drop-near":
                drop.update(c.ids[1:])
    report.dropped = [pid for pid in ids if pid in drop]
    return [r for r in records if r.pair_id not in drop], report


def write_dedup_report(report: DedupReport, path: str | Path) -> Path:
    """Write the report as JSON (atomically)."""
    from personalign.results import atomic_write

    path = Path(path)
    text = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return path
