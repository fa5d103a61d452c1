"""The embedding store: content addressing, reuse, resume after a crash, concurrency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personalign.store import EmbeddingStore, namespace_key


class CountingEncoder:
    """Deterministic 4-d vectors from text length and characters; counts what it encodes."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on_call = fail_on_call

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.fail_on_call is not None and len(self.calls) + 1 == self.fail_on_call:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(list(texts))
        return np.array([[len(t), ord(t[0]), ord(t[-1]), t.count("a")] for t in texts],
                        dtype=np.float32)

    @property
    def encoded(self) -> list[str]:
        return [t for batch in self.calls for t in batch]


IDENT = {"model": "counting", "revision": "1"}
TEXTS = [f"text number {i} a" for i in range(10)]


def test_embeds_once_and_returns_in_order(tmp_path: Path) -> None:
    enc = CountingEncoder()
    store = EmbeddingStore(tmp_path)
    texts = [*TEXTS, TEXTS[0], TEXTS[3]]  # duplicates in one request
    out = store.embed(enc, texts, identity=IDENT, prompt="query: ", batch_size=3)
    assert sorted(enc.encoded) == sorted(TEXTS)  # each distinct text once
    np.testing.assert_array_equal(out, enc(texts))
    enc.calls.clear()
    again = EmbeddingStore(tmp_path).embed(enc, texts, identity=IDENT, prompt="query: ")
    assert enc.calls == []  # a fresh store on the same folder encodes nothing
    np.testing.assert_array_equal(again, out)


def test_prompt_and_identity_are_part_of_the_key(tmp_path: Path) -> None:
    enc = CountingEncoder()
    store = EmbeddingStore(tmp_path)
    store.embed(enc, TEXTS[:2], identity=IDENT, prompt="query: ")
    store.embed(enc, TEXTS[:2], identity=IDENT, prompt="passage: ")
    store.embed(enc, TEXTS[:2], identity={**IDENT, "revision": "2"}, prompt="query: ")
    assert len(enc.encoded) == 6
    assert namespace_key(IDENT, "a") != namespace_key(IDENT, "b")


def test_killed_run_resumes_without_redoing_finished_batches(tmp_path: Path) -> None:
    crashing = CountingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        EmbeddingStore(tmp_path).embed(crashing, TEXTS, identity=IDENT, prompt="", batch_size=2)
    done = set(crashing.encoded)
    assert len(done) == 4  # two finished batches persisted
    resumed = CountingEncoder()
    out = EmbeddingStore(tmp_path).embed(resumed, TEXTS, identity=IDENT, prompt="",
                                         batch_size=2)
    assert set(resumed.encoded) == set(TEXTS) - done
    np.testing.assert_array_equal(out, CountingEncoder()(TEXTS))
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing half-written left behind


def test_concurrent_reader_sees_new_shards_and_compaction_keeps_vectors(tmp_path: Path) -> None:
    import personalign.store as store_mod

    writer, reader = EmbeddingStore(tmp_path), EmbeddingStore(tmp_path)
    enc = CountingEncoder()
    reader.embed(enc, TEXTS[:1], identity=IDENT, prompt="")
    writer.embed(enc, TEXTS, identity=IDENT, prompt="", batch_size=1)
    enc.calls.clear()
    reader.embed(enc, TEXTS, identity=IDENT, prompt="")  # reloads, finds the writer's shards
    assert enc.calls == []
    old = store_mod._COMPACT_AT
    store_mod._COMPACT_AT = 2
    try:
        out = EmbeddingStore(tmp_path).embed(enc, TEXTS, identity=IDENT, prompt="")
    finally:
        store_mod._COMPACT_AT = old
    shards = list(tmp_path.rglob("*.keys.npy"))
    assert len(shards) == 1
    np.testing.assert_array_equal(out, CountingEncoder()(TEXTS))


def test_files_are_plain_npy_without_pickle(tmp_path: Path) -> None:
    EmbeddingStore(tmp_path).embed(CountingEncoder(), TEXTS[:3], identity=IDENT, prompt="")
    for path in tmp_path.rglob("*.npy"):
        arr = np.load(path, allow_pickle=False)
        assert arr.dtype in (np.float32, np.uint8)
