"""The encoder protocol every backend implements.

Dense encoders map texts to vectors; the scorer compares them by cosine (vectors are
L2-normalised by the caller unless the spec says the model's own similarity is a dot
product). Lexical baselines have no frozen embedding: their vectors depend on the corpus,
so they are fitted per corpus and never cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

Role = Literal["query", "document"]


class ModelUnavailable(RuntimeError):
    """The model's weights or backend cannot be had here; the message says why and how."""


@runtime_checkable
class DenseEncoder(Protocol):
    """A frozen text encoder.

    ``encode(texts, prompt)`` returns a float32 array of shape (len(texts), dim). ``prompt``
    is the exact instruction prefix for this call ("" for none); backends that take prompts
    natively (sentence-transformers ``prompt=``) pass it there, others prepend it.
    ``cache_identity()`` returns everything besides text and prompt that changes the output
    (model id, weights revision/hash, dtype, max length, pooling, ...): it enters the
    embedding-store key.
    """

    kind: Literal["dense"]
    name: str
    dim: int

    def encode(self, texts: Sequence[str], prompt: str = "") -> np.ndarray: ...

    def cache_identity(self) -> dict[str, Any]: ...


@runtime_checkable
class LexicalScorer(Protocol):
    """A weightless baseline: ``fit(corpus)`` then ``transform(texts, side)`` gives sparse
    matrices whose row dot products are the scores (BM25, TF-IDF cosine)."""

    kind: Literal["lexical"]
    name: str

    def fit(self, corpus: Sequence[str]) -> LexicalScorer: ...

    def transform(self, texts: Sequence[str], side: Role) -> sp.csr_matrix: ...
