"""Texts -> vectors for one model, shared by every task.

A *view* is how a text is presented to the model: its role (query or document) and the
retrieval direction (``p2i`` persona->instruction, ``i2p`` instruction->persona), which
together pick the prompt. Every distinct (text, prompt) is embedded once per model through
the :class:`~personalign.store.EmbeddingStore`; a persona used as a query in T1/T2, as a
document in T3 and as a feature in T4 is embedded once per distinct prompt (once in all
when the model uses no prompts).

Lexical baselines have no corpus-independent vectors; :class:`LexicalViews` fits them per
corpus on demand and caches nothing on disk.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from personalign.models.base import DenseEncoder, LexicalScorer
from personalign.scoring import l2_normalise
from personalign.store import EmbeddingStore

Direction = Literal["p2i", "i2p"]
Role = Literal["query", "document"]
PromptFn = Callable[[str, str], str]  # (role, direction) -> prompt text


@dataclass
class EvalModel:
    """A model as the evaluator sees it: a name, an encoder and its prompts."""

    name: str
    encoder: DenseEncoder | LexicalScorer
    prompt: PromptFn = field(default=lambda role, direction: "")
    batch_size: int = 32
    description: str = ""

    @property
    def lexical(self) -> bool:
        return getattr(self.encoder, "kind", "dense") == "lexical"


@dataclass(frozen=True)
class View:
    role: Role
    direction: Direction


class DenseViews:
    """Precomputes, then serves, L2-normalised embeddings of texts under views."""

    def __init__(self, model: EvalModel, store: EmbeddingStore) -> None:
        self.model = model
        self.store = store
        self._vectors: dict[str, dict[str, np.ndarray]] = {}  # prompt -> text -> vec

    def prompt_of(self, view: View) -> str:
        return self.model.prompt(view.role, view.direction)

    def prepare(
        self,
        requests: Sequence[tuple[View, Sequence[str]]],
        on_batch: Callable[[int], None] | None = None,
        on_plan: Callable[[int], None] | None = None,
    ) -> int:
        """Embed every (view, texts) request, grouped by prompt so that each distinct text
        is embedded once per prompt. Returns the number of distinct (prompt, text) items."""
        by_prompt: dict[str, dict[str, None]] = {}
        for view, texts in requests:
            bucket = by_prompt.setdefault(self.prompt_of(view), {})
            for t in texts:
                bucket[t] = None
        total = sum(len(b) for b in by_prompt.values())
        if on_plan is not None:
            on_plan(total)
        encoder = self.model.encoder
        assert isinstance(encoder, DenseEncoder)
        identity = encoder.cache_identity()
        for prompt, bucket in by_prompt.items():
            texts = list(bucket)

            def encode(batch: list[str], prompt: str = prompt) -> np.ndarray:
                return encoder.encode(batch, prompt=prompt)

            vecs = l2_normalise(
                self.store.embed(encode, texts, identity=identity, prompt=prompt,
                                 batch_size=self.model.batch_size, on_batch=on_batch)
            )
            self._vectors.setdefault(prompt, {}).update(zip(texts, vecs, strict=True))
        return total

    def get(self, view: View, texts: Sequence[str]) -> np.ndarray:
        table = self._vectors[self.prompt_of(view)]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([table[t] for t in texts])


class LexicalViews:
    """Fits the lexical scorer on a corpus and returns sparse query/corpus matrices.

    A fitted corpus is kept (keyed by its texts) so that the 2 x 13 pairs sharing a corpus
    language fit it once, not once per query language.
    """

    def __init__(self, model: EvalModel) -> None:
        self.model = model
        self._fitted: dict[int, tuple[tuple[str, ...], LexicalScorer, sp.csr_matrix]] = {}

    def pair(self, queries: Sequence[str], corpus: Sequence[str]) -> tuple[sp.csr_matrix,
                                                                          sp.csr_matrix]:
        scorer = self.model.encoder
        assert isinstance(scorer, LexicalScorer)
        key_texts = tuple(corpus)
        key = hash(key_texts)
        hit = self._fitted.get(key)
        if hit is None or hit[0] != key_texts:
            # fit() may fit in place: fit a copy so earlier fitted corpora stay valid.
            fitted = copy.deepcopy(scorer).fit(list(corpus))
            hit = (key_texts, fitted, sp.csr_matrix(fitted.transform(list(corpus), "document")))
            self._fitted[key] = hit
        return sp.csr_matrix(hit[1].transform(list(queries), "query")), hit[2]
