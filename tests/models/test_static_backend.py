"""Optional static-64 backend: works when installed, clear error when not."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from personalign.models.base import ModelUnavailable
from personalign.models.static_backend import StaticEncoder


def test_clear_error_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "static_model", None)  # import now raises ImportError
    with pytest.raises(ModelUnavailable, match=r"pip install tokenlearn-static-model==0\.1\.1"):
        StaticEncoder()


def test_encodes_64d_unit_vectors() -> None:
    pytest.importorskip("static_model")
    enc = StaticEncoder(batch_size=2)
    vecs = enc.encode(["hello world", "हिंदी भाषा", "தமிழ்"])
    assert vecs.shape == (3, 64) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(enc.encode(["hello world"], prompt="query: "), vecs[:1])
    assert enc.cache_identity() == StaticEncoder().cache_identity()
