"""translate_dataset: lineage, resumable JSONL checkpoint (crash mid-way, restart: no loss,
no duplicate), refusals with file/line/record, and one end-to-end run on a tiny NLLB."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from personalign.build.translate import (
    CHECKPOINT_FORMAT,
    HFSeq2SeqTranslator,
    TranslationRejected,
    identity_hash,
    read_checkpoint,
    translate_dataset,
)
from personalign.data.errors import DatasetError
from personalign.data.schema import Record
from tests.build.translate_fixtures import tiny_model


class TagTranslator:
    """Deterministic translator: "<tgt>:<text>"; counts calls and can fail on call k."""

    def __init__(self, fail_on_call: int | None = None, reject: str | None = None,
                 model: str = "tag-v1") -> None:
        self.name = f"tag:{model}"
        self.model = model
        self.calls: list[tuple[list[str], str, str]] = []
        self.fail_on_call = fail_on_call
        self.reject = reject

    def identity(self) -> dict[str, Any]:
        return {"backend": "tag", "model": self.model, "versions": {"tag": "1"}}

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        self.calls.append((list(texts), src, tgt))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("simulated crash")
        if self.reject is not None and any(self.reject in t for t in texts):
            raise TranslationRejected("rejected batch", "made-up reason")
        return [f"{tgt}:{t}" for t in texts]


def records(n: int = 7) -> list[Record]:
    return [
        Record(f"p{i}", "eng_Latn", f"persona {i}", f"instruction {i}",
               negative=f"negative {i}" if i % 3 == 0 else None,
               domain="food" if i % 2 else "travel", source="synth:0-shot",
               extra={"seed": i})
        for i in range(n)
    ]


TARGETS = ["hin_Deva", "tam_Taml"]


def units(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text("utf-8").splitlines()
    return [(json.loads(x)["record"]["pair_id"], json.loads(x)["record"]["lang"])
            for x in lines[1:]]


def test_translates_every_field_and_records_lineage(tmp_path: Path) -> None:
    tr = TagTranslator()
    out = translate_dataset(records(4), tr, TARGETS, tmp_path / "c.jsonl", batch_size=3)
    assert [(r.pair_id, r.lang) for r in out] == [
        (f"p{i}", t) for i in range(4) for t in TARGETS]
    first = out[0]
    assert first.persona == "hin_Deva:persona 0" and first.instruction == "hin_Deva:instruction 0"
    assert first.negative == "hin_Deva:negative 0" and out[2].negative is None
    assert first.domain == "travel" and out[2].domain == "food"
    h = identity_hash(tr.identity())
    assert first.source == f"mt:tag:tag-v1@{h}"
    lineage = first.extra["translation"]
    assert lineage["backend"] == "tag" and lineage["model"] == "tag-v1"
    assert lineage["identity_hash"] == h and lineage["src_lang"] == "eng_Latn"
    assert lineage["src_source"] == "synth:0-shot" and lineage["time"].endswith("+00:00")
    assert "seed" not in first.extra  # per-language extras are not carried over
    # One translator call per (batch of <= 3 records, target); 2 or 3 texts per record.
    assert [len(c[0]) for c in tr.calls] == [3 + 2 + 2, 3, 3 + 2 + 2, 3]  # p0, p3: negatives
    header = json.loads((tmp_path / "c.jsonl").read_text("utf-8").splitlines()[0])
    assert header == {"format": CHECKPOINT_FORMAT, "identity_hash": h,
                      "translator": tr.identity()}


def test_crash_mid_way_then_restart_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    ckpt = tmp_path / "c.jsonl"
    recs = records(7)
    crashing = TagTranslator(fail_on_call=4)  # batches of 2 records: 4 per target
    with pytest.raises(RuntimeError, match="simulated crash"):
        translate_dataset(recs, crashing, TARGETS, ckpt, batch_size=2)
    saved = units(ckpt)
    assert saved == [(f"p{i}", "hin_Deva") for i in range(6)]  # 3 finished batches
    _, done = read_checkpoint(ckpt)
    assert set(done) == set(saved)

    restarted = TagTranslator()
    out = translate_dataset(recs, restarted, TARGETS, ckpt, batch_size=2)
    # Only the missing units were translated: p6 into Hindi, everything into Tamil.
    sent = [t for texts, _, _ in restarted.calls for t in texts]
    assert sum(t.startswith("persona") for t in sent) == 1 + 7
    assert [c[2] for c in restarted.calls] == ["hin_Deva"] + ["tam_Taml"] * 4
    after = units(ckpt)
    assert len(after) == len(set(after)) == 14
    clean = translate_dataset(recs, TagTranslator(), TARGETS, tmp_path / "clean.jsonl",
                              batch_size=2)
    assert [_texts(r) for r in out] == [_texts(r) for r in clean]

    # A third run has nothing left to do and returns the same records.
    idle = TagTranslator()
    assert translate_dataset(recs, idle, TARGETS, ckpt, batch_size=5) == out
    assert idle.calls == []


def _texts(r: Record) -> tuple[str, str, str, str | None, str | None]:
    return (r.pair_id, r.lang, r.persona, r.instruction, r.negative)


def test_torn_last_line_is_dropped_and_redone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = tmp_path / "c.jsonl"
    translate_dataset(records(3), TagTranslator(), ["hin_Deva"], ckpt, batch_size=1)
    lines = ckpt.read_bytes().splitlines(keepends=True)
    ckpt.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # p2's line cut mid-write
    caplog.set_level(logging.WARNING)
    tr = TagTranslator()
    out = translate_dataset(records(3), tr, ["hin_Deva"], ckpt, batch_size=1)
    assert "unfinished last line" in caplog.text
    assert [t for texts, _, _ in tr.calls for t in texts] == ["persona 2", "instruction 2"]
    assert units(ckpt) == [("p0", "hin_Deva"), ("p1", "hin_Deva"), ("p2", "hin_Deva")]
    assert [r.persona for r in out] == ["hin_Deva:persona 0", "hin_Deva:persona 1",
                                        "hin_Deva:persona 2"]


def test_damaged_line_in_the_middle_is_an_error_with_its_line(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    translate_dataset(records(3), TagTranslator(), ["hin_Deva"], ckpt, batch_size=1)
    lines = ckpt.read_text("utf-8").splitlines(keepends=True)
    lines[2] = '{"record": oops\n'
    ckpt.write_text("".join(lines), "utf-8")
    with pytest.raises(DatasetError) as err:
        translate_dataset(records(3), TagTranslator(), ["hin_Deva"], ckpt)
    assert err.value.line == 3 and "invalid JSON" in str(err.value)
    assert str(ckpt) in str(err.value)


def test_duplicate_unit_in_checkpoint_is_an_error(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    translate_dataset(records(2), TagTranslator(), ["hin_Deva"], ckpt, batch_size=1)
    lines = ckpt.read_text("utf-8").splitlines(keepends=True)
    ckpt.write_text("".join([*lines, lines[1]]), "utf-8")
    with pytest.raises(DatasetError, match="appears twice") as err:
        translate_dataset(records(2), TagTranslator(), ["hin_Deva"], ckpt)
    assert err.value.line == 4 and err.value.record_id == "p0"


def test_restart_with_another_translator_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    translate_dataset(records(2), TagTranslator(), ["hin_Deva"], ckpt)
    with pytest.raises(DatasetError, match="written by translator") as err:
        translate_dataset(records(2), TagTranslator(model="tag-v2"), ["hin_Deva"], ckpt)
    assert err.value.line == 1


def test_changed_source_text_is_refused_for_that_record(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    recs = records(3)
    translate_dataset(recs, TagTranslator(), ["hin_Deva"], ckpt, batch_size=1)
    edited = [*recs[:1], Record("p1", "eng_Latn", "persona 1 (edited)", "instruction 1",
                                source="synth:0-shot"), recs[2]]
    with pytest.raises(DatasetError, match="source text of this record changed") as err:
        translate_dataset(edited, TagTranslator(), ["hin_Deva"], ckpt)
    assert err.value.record_id == "p1" and err.value.line == 3


def test_bad_inputs(tmp_path: Path) -> None:
    recs = records(2)
    with pytest.raises(ValueError, match="more than once"):
        translate_dataset([*recs, recs[0]], TagTranslator(), ["hin_Deva"], tmp_path / "a")
    with pytest.raises(ValueError, match="already in target language eng_Latn"):
        translate_dataset(recs, TagTranslator(), ["eng_Latn"], tmp_path / "b")
    with pytest.raises(ValueError, match="unknown language"):
        translate_dataset(recs, TagTranslator(), ["xx"], tmp_path / "c")
    with pytest.raises(ValueError, match="batch_size"):
        translate_dataset(recs, TagTranslator(), ["hin_Deva"], tmp_path / "d", batch_size=0)


def test_rejected_batches_are_skipped_then_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = tmp_path / "c.jsonl"
    recs = records(4)
    with pytest.raises(TranslationRejected):
        translate_dataset(recs, TagTranslator(reject="persona 2"), ["hin_Deva"], ckpt,
                          batch_size=1)
    caplog.set_level(logging.WARNING)
    out = translate_dataset(recs, TagTranslator(reject="persona 2"), ["hin_Deva"], ckpt,
                            batch_size=1, on_reject="skip")
    assert [r.pair_id for r in out] == ["p0", "p1", "p3"]
    assert "p2" in caplog.text and "made-up reason" in caplog.text
    tr = TagTranslator()
    out = translate_dataset(recs, tr, ["hin_Deva"], ckpt, batch_size=1)
    assert [r.pair_id for r in out] == ["p0", "p1", "p2", "p3"] and len(tr.calls) == 1


def test_mixed_source_languages_and_other_shards_units(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.jsonl"
    recs = [Record("a", "eng_Latn", "pa", "ia"), Record("b", "hin_Deva", "pb", "ib")]
    tr = TagTranslator()
    out = translate_dataset(recs, tr, ["tam_Taml"], ckpt)
    assert [(c[1], c[2]) for c in tr.calls] == [("eng_Latn", "tam_Taml"),
                                                ("hin_Deva", "tam_Taml")]
    assert [r.extra["translation"]["src_lang"] for r in out] == ["eng_Latn", "hin_Deva"]
    # Units of records not asked for now stay in the file but are not returned.
    assert [r.pair_id for r in translate_dataset(recs[1:], tr, ["tam_Taml"], ckpt)] == ["b"]


def test_end_to_end_with_a_tiny_nllb_and_a_crash(tmp_path: Path) -> None:
    nllb = HFSeq2SeqTranslator(tiny_model("nllb"), num_beams=1, max_new_tokens=8,
                               batch_size=4, device="cpu")
    recs = [Record(f"p{i}", "eng_Latn", f"A teacher in Pune plans lesson {i}.",
                   f"Write a recipe for {i} people.", negative="Sell the bridge." if i == 2
                   else None) for i in range(5)]

    class CrashAfterOne:
        name = nllb.name

        def __init__(self) -> None:
            self.calls = 0

        def identity(self) -> dict[str, Any]:
            return nllb.identity()

        def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt  # a kill between two batches
            return nllb.translate(texts, src, tgt)

    ckpt = tmp_path / "nllb.jsonl"
    with pytest.raises(KeyboardInterrupt):
        translate_dataset(recs, CrashAfterOne(), ["hin_Deva"], ckpt, batch_size=2)
    assert units(ckpt) == [("p0", "hin_Deva"), ("p1", "hin_Deva")]
    resumed = translate_dataset(recs, nllb, ["hin_Deva"], ckpt, batch_size=2)
    straight = translate_dataset(recs, nllb, ["hin_Deva"], tmp_path / "straight.jsonl",
                                 batch_size=2)
    assert [_texts(r) for r in resumed] == [_texts(r) for r in straight]
    assert len(units(ckpt)) == 5 and resumed[2].negative and resumed[0].negative is None
    assert resumed[0].source == f"mt:{nllb.name}@{identity_hash(nllb.identity())}"
