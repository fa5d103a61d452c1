"""Machine translation of persona–instruction records, resumable.

Backends (all behind the ``Translator`` protocol, in ``personalign.build.translators``):
``HFSeq2SeqTranslator`` (NLLB-200, M2M-100 through transformers), ``CT2Translator`` (the
same models converted with ``convert_to_ct2``), ``IndicTrans2Translator`` and
``LLMTranslator`` (an OpenAI-compatible chat server).

``translate_dataset`` translates the text fields (persona, instruction and, when set, the
authored negative) of every record into every target language. The unit of work is one
(pair id, target language). Finished units are appended to a JSONL checkpoint, one batch
at a time (flush + fsync after each batch), so a killed run loses at most the batch in
flight; a restart reads the checkpoint and translates only what is missing. An append-only
log rather than temp-file-and-rename: rewriting a file of 600K records after every batch
would cost more than the translation.

Checkpoint format (UTF-8 JSONL):
- line 1, the header: ``{"format": "personalign.translate.checkpoint/1",
  "identity_hash": ..., "translator": <identity()>}``; a restart with a translator of a
  different identity hash is refused (mixing two models in one dataset is never wanted);
- then one line per unit: ``{"record": <Record.to_dict()>, "src_lang": ...,
  "src_sha256": ...}``, where src_sha256 = sha256 of the JSON list
  [source lang, persona, instruction, negative] of the source record; a restart whose
  source text differs for a unit already done is refused for that record.
A last line cut short by a crash is dropped (and cut from the file) on restart; a bad line
elsewhere is an error naming file and line. One process writes a checkpoint at a time
(a lock file ``<checkpoint>.lock`` enforces it): shards that run in parallel (Ray Data
batches) each take their own checkpoint path.

Lineage of a translated record: ``source`` = ``"mt:<translator name>@<identity hash>"``;
``extra["translation"]`` = {backend, model, identity_hash, time (UTC, ISO 8601, when its
batch finished), src_lang, src_source (the source record's ``source``)}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from personalign.build.synthesis.checkpoint import append_lines, parse_line
from personalign.build.translators import (
    CT2Translator,
    HFSeq2SeqTranslator,
    IndicTrans2Translator,
    LLMTranslator,
    TranslationError,
    TranslationRejected,
    Translator,
    TranslatorUnavailable,
    convert_to_ct2,
    identity_hash,
    load_indic_processor,
)
from personalign.data.errors import DatasetError
from personalign.data.schema import Record
from personalign.languages import resolve

__all__ = [
    "CHECKPOINT_FORMAT",
    "TEXT_FIELDS",
    "CT2Translator",
    "HFSeq2SeqTranslator",
    "IndicTrans2Translator",
    "LLMTranslator",
    "TranslationError",
    "TranslationRejected",
    "Translator",
    "TranslatorUnavailable",
    "convert_to_ct2",
    "identity_hash",
    "load_indic_processor",
    "read_checkpoint",
    "translate_dataset",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "personalign.translate.checkpoint/1"
# The fields of a record that are text to translate; domain and ids are copied.
TEXT_FIELDS: tuple[str, ...] = ("persona", "instruction", "negative")


def source_sha256(record: Record) -> str:
    """sha256 of the JSON list [lang, persona, instruction, negative] of a source record."""
    row = [record.lang, record.persona, record.instruction, record.negative]
    return hashlib.sha256(json.dumps(row, ensure_ascii=False).encode("utf-8")).hexdigest()


def read_checkpoint(
    path: str | Path, expected_hash: str | None = None
) -> tuple[dict[str, Any] | None, dict[tuple[str, str], tuple[Record, str, int]]]:
    """Read a checkpoint: (header or None for a missing/empty file, done units).

    Done units map (pair_id, target lang) to (record, src_sha256, line number). A last
    line without its newline (a write cut short) is cut from the file with a warning. Raises
    DatasetError for a bad line elsewhere, a missing header, a duplicate unit, or (with
    ``expected_hash``) a header written by another translator.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None, {}
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping an unfinished last line (%d bytes) left by an interrupted "
                    "run; its batch will be translated again", path, len(data) - keep)
        with path.open("r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        data = data[:keep]
        if keep == 0:
            return None, {}
    lines = data.decode("utf-8").split("\n")[:-1]
    header = parse_line(lines[0], path, 1)
    if header.get("format") != CHECKPOINT_FORMAT or "identity_hash" not in header:
        raise DatasetError(
            f"not a translation checkpoint (expected a header with format {CHECKPOINT_FORMAT})",
            path=path, line=1,
        )
    if expected_hash is not None and header["identity_hash"] != expected_hash:
        raise DatasetError(
            f"this checkpoint was written by translator {header['identity_hash']} "
            f"({header.get('translator', {}).get('model')}), not by the one given now "
            f"({expected_hash}); pass the same translator settings or use a new checkpoint path",
            path=path, line=1,
        )
    done: dict[tuple[str, str], tuple[Record, str, int]] = {}
    for number, line in enumerate(lines[1:], start=2):
        row = parse_line(line, path, number)
        try:
            record = Record(**row["record"])
            src_sha = str(row["src_sha256"])
        except (KeyError, TypeError) as err:
            raise DatasetError(f"malformed checkpoint entry ({err})", path=path,
                               line=number) from None
        key = (record.pair_id, record.lang)
        if key in done:
            raise DatasetError(
                f"unit ({record.pair_id}, {record.lang}) appears twice (first on line "
                f"{done[key][2]}); the file was written by two runs at once",
                path=path, line=number, record_id=record.pair_id,
            )
        done[key] = (record, src_sha, number)
    return header, done


def translate_dataset(
    records: Sequence[Record],
    translator: Translator,
    tgt_langs: Sequence[str],
    checkpoint_path: str | Path,
    *,
    batch_size: int = 32,
    on_reject: Literal["raise", "skip"] = "raise",
) -> list[Record]:
    """Translate ``records`` into every language of ``tgt_langs``, resumably.

    Args:
        records: source records (any mix of source languages; a pair id at most once).
        translator: any ``Translator``.
        tgt_langs: target language codes (or names/aliases ``personalign.languages``
            resolves); none may be the language of a record.
        checkpoint_path: JSONL checkpoint (created if missing; see the module docstring).
        batch_size: records per translator call and per checkpoint append; each record
            gives 2 or 3 texts (persona, instruction, negative if set).
        on_reject: "raise" stops at a batch the translator rejects (TranslationRejected);
            "skip" logs its pair ids and reason and goes on; skipped units are absent from
            the result and from the checkpoint, so a later run tries them again.

    Returns the translated records, ordered by input record and then by ``tgt_langs``,
    including those finished by earlier runs of the same checkpoint.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    targets = list(dict.fromkeys(resolve(t).code for t in tgt_langs))
    sources: dict[str, Record] = {}
    for r in records:
        if r.pair_id in sources:
            raise ValueError(
                f"pair id {r.pair_id!r} occurs more than once in the input "
                f"({sources[r.pair_id].lang} and {r.lang}); translate one source per pair"
            )
        if r.lang in targets:
            raise ValueError(f"record {r.pair_id!r} is already in target language {r.lang}")
        sources[r.pair_id] = r

    identity = translator.identity()
    id_hash = identity_hash(identity)
    path = Path(checkpoint_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        header, done = read_checkpoint(path, id_hash)
        if header is None:
            append_lines(path, [{"format": CHECKPOINT_FORMAT, "identity_hash": id_hash,
                            "translator": identity}])
        results: dict[tuple[str, str], Record] = {}
        for key, (record, src_sha, line) in done.items():
            src = sources.get(key[0])
            if src is None or key[1] not in targets:
                continue  # a unit of another shard or target list: kept, not returned
            if src_sha != source_sha256(src):
                raise DatasetError(
                    "the source text of this record changed since it was translated; remove "
                    "its line from the checkpoint (it will be translated again) or use a new "
                    "checkpoint path", path=path, line=line, record_id=key[0],
                )
            results[key] = record
        for tgt in targets:
            for src_lang in dict.fromkeys(r.lang for r in records):
                pending = [r for r in records if r.lang == src_lang
                           and (r.pair_id, tgt) not in results]
                for start in range(0, len(pending), batch_size):
                    batch = pending[start : start + batch_size]
                    try:
                        made = _translate_batch(batch, translator, src_lang, tgt, identity)
                    except TranslationRejected as err:
                        if on_reject == "raise":
                            raise
                        log.warning("skipping %d records into %s (%s): %s", len(batch), tgt,
                                    ", ".join(r.pair_id for r in batch), err.reason)
                        continue
                    append_lines(path, [
                        {"record": rec.to_dict(), "src_lang": src_lang,
                         "src_sha256": source_sha256(src)}
                        for rec, src in zip(made, batch, strict=True)
                    ])
                    for rec in made:
                        results[(rec.pair_id, tgt)] = rec
                    log.info("translated %d/%d records %s -> %s", start + len(batch),
                             len(pending), src_lang, tgt)
    return [results[(r.pair_id, tgt)] for r in records for tgt in targets
            if (r.pair_id, tgt) in results]


def _translate_batch(
    batch: list[Record], translator: Translator, src: str, tgt: str, identity: dict[str, Any]
) -> list[Record]:
    """Translate the text fields of ``batch`` in one translator call."""
    texts: list[str] = []
    slots: list[tuple[int, str]] = []
    for i, r in enumerate(batch):
        for name in TEXT_FIELDS:
            value = getattr(r, name)
            if value is not None:
                texts.append(value)
                slots.append((i, name))
    out = translator.translate(texts, src, tgt)
    if len(out) != len(texts):
        raise TranslationError(
            f"{translator.name} returned {len(out)} translations for {len(texts)} texts"
        )
    fields: list[dict[str, str]] = [{} for _ in batch]
    for (i, name), text in zip(slots, out, strict=True):
        fields[i][name] = text
    id_hash = identity_hash(identity)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    made: list[Record] = []
    for r, f in zip(batch, fields, strict=True):
        lineage = {
            "backend": identity.get("backend"),
            "model": identity.get("model"),
            "identity_hash": id_hash,
            "time": when,
            "src_lang": src,
            "src_source": r.source,
        }
        made.append(Record(
            pair_id=r.pair_id,
            lang=tgt,
            persona=f["persona"],
            instruction=f["instruction"],
            negative=f.get("negative"),
            domain=r.domain,
            source=f"mt:{translator.name}@{id_hash}",
            extra={"translation": lineage},
        ))
    return made
