"""Static 64-d embeddings from the optional package tokenlearn-static-model==0.1.1.

A Model2Vec-style model (a multilingual Unigram tokenizer, token vectors quantised to a
10k vocabulary, 64-d int8, mean of token vectors, L2-normalised) run by a Rust extension:
``static_model.get_embeddings(texts)``. Optional because the package states no licence.
A prompt is prepended to the text. Texts with no known token give a zero vector.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.models.base import ModelUnavailable
from personalign.models.st_backend import folder_fingerprint

INSTALL_HINT = ("pip install tokenlearn-static-model==0.1.1 (optional extra personalign[static]; "
                "the package states no licence)")


class StaticEncoder:
    """Dense encoder over tokenlearn-static-model (64-d float32)."""

    kind: Literal["dense"] = "dense"

    def __init__(self, *, name: str = "static-64", batch_size: int = 1024) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        try:
            from static_model import get_embeddings
        except ImportError as exc:
            raise ModelUnavailable(
                f"tokenlearn-static-model is not installed ({exc}); {INSTALL_HINT}") from exc
        found = importlib.util.find_spec("static_model")
        assert found is not None and found.origin is not None
        self._folder = Path(found.origin).resolve().parent / "model"
        self._embed = get_embeddings
        self.name = name
        self.batch_size = batch_size
        self.dim: int = 64
        self._version = importlib.metadata.version("tokenlearn-static-model")

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray:
        """float32 (len(texts), 64); rows L2-normalised (all-zero for texts with no token)."""
        items = [prompt + t for t in texts]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            out[start:start + len(batch)] = np.asarray(self._embed(batch), dtype=np.float32)
        return out

    def cache_identity(self) -> dict[str, Any]:
        return {
            "backend": "static",
            "model": f"tokenlearn-static-model=={self._version}",
            "files_fingerprint": folder_fingerprint(self._folder),
            "max_tokens": 512,
        }
