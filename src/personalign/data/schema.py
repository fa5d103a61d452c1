"""The record schema shared by every loader, task and builder.

One row = one persona–instruction pair in one language. Rows of the same pair in different
languages share ``pair_id``; that is what aligns languages for cross-lingual retrieval and
what grouped splits group by.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    pair_id: str
    lang: str  # a code from personalign.languages, e.g. "hin_Deva"
    persona: str
    instruction: str
    negative: str | None = None  # authored hard-negative instruction (incompatible)
    domain: str | None = None
    source: str | None = None  # lineage: how the text was made (e.g. "nirdesha:2-shot")
    # Free-form extras a loader keeps (expert ratings, validation flags, ...); JSON-able.
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_FIELDS: tuple[str, ...] = (
    "pair_id", "lang", "persona", "instruction", "negative", "domain", "source", "extra",
)


@dataclass
class Dataset:
    """A named collection of records plus metadata.

    ``meta`` is JSON-able and saved with the dataset. Keys the loaders fill in:
    ``provenance`` (how the texts were made), ``license``, ``origin`` (where the data first
    came from: hub id, folder), ``path`` (the file or folder this object was read from),
    ``format``, ``skipped`` (rows left out under ``skip_bad_rows``: a list of
    ``{"file", "line", "record_id", "reason"}``), plus format-specific keys.

    ``origins`` maps ``(lang, pair_id)`` to the ``(file, line)`` the record was read from,
    for error messages; it is not saved and not part of the fingerprint, and ``subset``
    shares it (read-only) rather than copying it.
    """

    name: str
    records: list[Record]
    meta: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, str], tuple[str, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def origin(self, lang: str, pair_id: str) -> tuple[str | None, int | None]:
        """``(file, line)`` the record was read from, or ``(None, None)`` if unknown."""
        found = self.origins.get((lang, pair_id))
        return (found[0], found[1]) if found is not None else (None, None)

    def languages(self) -> list[str]:
        from personalign.languages import ALL_CODES

        present = {r.lang for r in self.records}
        return [code for code in ALL_CODES if code in present]

    def by_language(self, lang: str) -> list[Record]:
        """Records of one language, sorted by pair id (a stable, aligned order)."""
        return sorted((r for r in self.records if r.lang == lang), key=lambda r: r.pair_id)

    def pair_ids(self) -> list[str]:
        return sorted({r.pair_id for r in self.records})

    def has_negatives(self) -> bool:
        return any(r.negative for r in self.records)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.lang] = out.get(r.lang, 0) + 1
        return {lang: out[lang] for lang in self.languages()}

    def fingerprint(self) -> str:
        """sha256 over the canonical JSON of the records sorted by (lang, pair_id); extras
        are excluded so that re-loading the same texts always gives the same fingerprint."""
        h = hashlib.sha256()
        for r in sorted(self.records, key=lambda r: (r.lang, r.pair_id)):
            row = [r.pair_id, r.lang, r.persona, r.instruction, r.negative, r.domain]
            h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    def subset(
        self,
        languages: Sequence[str] | None = None,
        pair_ids: Iterable[str] | None = None,
        name: str | None = None,
    ) -> Dataset:
        keep_langs = set(languages) if languages is not None else None
        keep_ids = set(pair_ids) if pair_ids is not None else None
        records = [
            r for r in self.records
            if (keep_langs is None or r.lang in keep_langs)
            and (keep_ids is None or r.pair_id in keep_ids)
        ]
        return Dataset(name or self.name, records, dict(self.meta), self.origins)
