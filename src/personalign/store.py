"""Content-addressed, resumable embedding store.

Layout under ``root``::

    <root>/<namespace>/identity.json          model identity + prompt (what the key hashes)
    <root>/<namespace>/<shard>.vec.npy        float32 (n, d) vectors
    <root>/<namespace>/<shard>.keys.npy       uint8 (n, 32): sha256 of each text (UTF-8)

``namespace = sha256(json(model cache identity, prompt, store format))``; within a
namespace a vector is found by the sha256 of its text, so the full key is
model id + revision + settings + prompt + text hash. Each encoded batch becomes one shard,
written atomically (temp files, then ``os.replace``; the keys file is renamed last and marks
the shard complete), so a killed run loses at most the batch in flight and readers never
see half a shard. Shards are immutable, which makes concurrent readers safe; concurrent
writers may duplicate a vector, never corrupt one. No pickle anywhere: plain ``.npy`` files
loaded with ``allow_pickle=False`` (and memory-mapped).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from personalign.atomic import atomic_write, atomic_write_text

STORE_FORMAT = 1
_COMPACT_AT = 64  # merge a namespace's shards once it holds more than this many


def default_cache_dir() -> Path:
    env = os.environ.get("PERSONALIGN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "personalign" / "embeddings"


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def namespace_key(identity: dict[str, Any], prompt: str) -> str:
    payload = json.dumps(
        {"identity": identity, "prompt": prompt, "format": STORE_FORMAT},
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, save)


class _Namespace:
    """The shards of one (model identity, prompt)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index: dict[bytes, tuple[int, int]] = {}
        self.shards: list[np.ndarray] = []
        self.shard_names: list[str] = []
        self.reload()

    def reload(self) -> None:
        self.index.clear()
        self.shards.clear()
        self.shard_names.clear()
        if not self.path.is_dir():
            return
        for keys_path in sorted(self.path.glob("*.keys.npy")):
            stem = keys_path.name[: -len(".keys.npy")]
            vec_path = self.path / f"{stem}.vec.npy"
            try:
                keys = np.load(keys_path, allow_pickle=False)
                vecs = np.load(vec_path, allow_pickle=False, mmap_mode="r")
            except (FileNotFoundError, ValueError):
                # Removed by a concurrent compaction, or never finished: skip it.
                continue
            if len(keys) != len(vecs):
                continue
            shard_no = len(self.shards)
            self.shards.append(vecs)
            self.shard_names.append(stem)
            for row, key in enumerate(keys):
                self.index.setdefault(key.tobytes(), (shard_no, row))

    def write(self, keys: list[bytes], vecs: np.ndarray) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        _atomic_save_npy(self.path / f"{stem}.vec.npy", np.ascontiguousarray(vecs, np.float32))
        _atomic_save_npy(self.path / f"{stem}.keys.npy", key_arr)  # last: marks completion
        shard_no = len(self.shards)
        self.shards.append(np.load(self.path / f"{stem}.vec.npy", mmap_mode="r"))
        self.shard_names.append(stem)
        for row, key in enumerate(keys):
            self.index.setdefault(key, (shard_no, row))

    def gather(self, keys: Sequence[bytes]) -> np.ndarray:
        locs = [self.index[k] for k in keys]
        dim = self.shards[locs[0][0]].shape[1] if locs else 0
        out = np.empty((len(keys), dim), dtype=np.float32)
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for i, (shard, row) in enumerate(locs):
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            dst = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
            src = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
            out[dst] = self.shards[shard][src]
        return out

    def compact(self) -> None:
        """Merge all shards into one (atomic), then delete the merged ones."""
        if len(self.shards) <= 1:
            return
        keys = list(self.index)
        vecs = self.gather(keys)
        old = list(self.shard_names)
        self.write(keys, vecs)
        for stem in old:
            (self.path / f"{stem}.keys.npy").unlink(missing_ok=True)
            (self.path / f"{stem}.vec.npy").unlink(missing_ok=True)
        self.reload()


class EmbeddingStore:
    """Get embeddings for texts, computing only those never computed before.

    ``stats`` counts, per call of :meth:`embed`, texts requested, unique texts, texts
    served from disk and texts sent to the encoder.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._open: dict[str, _Namespace] = {}
        self.stats = {"requested": 0, "unique": 0, "cached": 0, "encoded": 0}

    def _namespace(self, identity: dict[str, Any], prompt: str) -> _Namespace:
        key = namespace_key(identity, prompt)
        ns = self._open.get(key)
        if ns is None:
            path = self.root / key
            ns = _Namespace(path)
            if not (path / "identity.json").exists():
                doc = json.dumps({"identity": identity, "prompt": prompt,
                                  "format": STORE_FORMAT}, indent=1, default=str)
                atomic_write_text(path / "identity.json", doc)
            self._open[key] = ns
        return ns

    def embed(
        self,
        encode: Callable[[list[str]], np.ndarray],
        texts: Sequence[str],
        *,
        identity: dict[str, Any],
        prompt: str,
        batch_size: int = 32,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Return float32 embeddings (len(texts), d) in the order of ``texts``.

        ``encode(batch)`` must embed a list of raw texts with ``prompt`` already bound.
        Missing texts are encoded in batches of ``batch_size`` (sorted by length, which
        keeps padding low) and each batch is persisted before the next starts.
        ``on_batch(n)`` is called with the number of texts just made available.
        """
        ns = self._namespace(identity, prompt)
        keys = [text_hash(t) for t in texts]
        unique: dict[bytes, str] = {}
        for k, t in zip(keys, texts, strict=True):
            unique.setdefault(k, t)
        missing = [k for k in unique if k not in ns.index]
        if missing:
            ns.reload()  # another process may have written them meanwhile
            missing = [k for k in unique if k not in ns.index]
        self.stats["requested"] += len(texts)
        self.stats["unique"] += len(unique)
        self.stats["cached"] += len(unique) - len(missing)
        if on_batch is not None and len(unique) > len(missing):
            on_batch(len(unique) - len(missing))
        missing.sort(key=lambda k: len(unique[k]))
        for start in range(0, len(missing), batch_size):
            batch_keys = missing[start : start + batch_size]
            batch_texts = [unique[k] for k in batch_keys]
            vecs = np.asarray(encode(batch_texts), dtype=np.float32)
            if vecs.ndim != 2 or len(vecs) != len(batch_texts):
                raise ValueError(
                    f"encoder returned shape {vecs.shape} for {len(batch_texts)} texts"
                )
            ns.write(batch_keys, vecs)
            self.stats["encoded"] += len(batch_texts)
            if on_batch is not None:
                on_batch(len(batch_texts))
        if len(ns.shards) > _COMPACT_AT:
            ns.compact()
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return ns.gather(keys)
