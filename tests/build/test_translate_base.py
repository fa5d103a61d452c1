"""Shared translator plumbing: length-sorted batching, identity hashes, language codes,
folder fingerprints, and loading from a hub id when the hub cannot be reached."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from huggingface_hub import constants

from personalign.build.translators import base
from personalign.build.translators.base import (
    TranslationError,
    TranslatorUnavailable,
    check_pair,
    folder_fingerprint,
    identity_hash,
    iso639_1,
    load_pretrained,
    translate_sorted,
)
from personalign.languages import ALL_CODES


def test_translate_sorted_batches_by_length_and_restores_order() -> None:
    texts = ["aa", "b", "cccc", "  ", "dd", "eee"]
    seen: list[list[str]] = []

    def upper(batch: list[str]) -> list[str]:
        seen.append(list(batch))
        return [t.upper() for t in batch]

    out = translate_sorted(texts, 2, upper)
    # Longest first, ties in input order ("aa" before "dd"); the blank text is not sent.
    assert seen == [["cccc", "eee"], ["aa", "dd"], ["b"]]
    assert out == ["AA", "B", "CCCC", "", "DD", "EEE"]


def test_translate_sorted_rejects_wrong_output_count() -> None:
    with pytest.raises(TranslationError, match="returned 1 translations for a batch of 2"):
        translate_sorted(["a", "b"], 2, lambda batch: batch[:1])
    with pytest.raises(ValueError, match="batch_size"):
        translate_sorted(["a"], 0, lambda batch: batch)


def test_identity_hash_ignores_versions_and_key_order() -> None:
    a = {"backend": "x", "model": "m", "num_beams": 4, "versions": {"torch": "1"}}
    b = {"num_beams": 4, "model": "m", "backend": "x", "versions": {"torch": "2"}}
    c = {"backend": "x", "model": "m", "num_beams": 5}
    assert identity_hash(a) == identity_hash(b)
    assert identity_hash(a) != identity_hash(c)
    assert len(identity_hash(a)) == 16


def test_iso639_1_for_every_language_and_check_pair() -> None:
    codes = {code: iso639_1(code) for code in ALL_CODES}
    assert codes["hin_Deva"] == "hi" and codes["ory_Orya"] == "or" and codes["eng_Latn"] == "en"
    assert all(len(c) == 2 for c in codes.values())
    assert len(set(codes.values())) == len(ALL_CODES)
    assert check_pair("English", "hi") == ("eng_Latn", "hin_Deva")
    with pytest.raises(ValueError, match="same"):
        check_pair("hin_Deva", "Hindi")
    with pytest.raises(ValueError, match="unknown language"):
        check_pair("eng_Latn", "xx_Yyyy")


def test_folder_fingerprint_sees_content_of_small_files_and_size_of_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "SMALL_FILE_BYTES", 8)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.bin").write_bytes(b"0123456789")
    first = folder_fingerprint(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"9876543210")  # same size, large: not seen
    assert folder_fingerprint(tmp_path) == first
    (tmp_path / "model.bin").write_bytes(b"98765432100")  # size changed
    second = folder_fingerprint(tmp_path)
    assert second != first
    (tmp_path / "config.json").write_text("[]")  # small file content changed
    assert folder_fingerprint(tmp_path) != second


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hub_down(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the Hugging Face endpoint at a closed loopback port."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return endpoint


def test_hub_reachable_probe(hub_down: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not base.hub_reachable()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert base.hub_reachable()
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert not base.hub_reachable()


def test_load_pretrained_branches(
    tmp_path: Path, hub_down: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, object]]] = []

    def loader(name: str, **kwargs: object) -> str:
        calls.append((name, kwargs))
        if kwargs.get("local_files_only"):
            raise OSError("not in cache")
        return "loaded"

    assert load_pretrained(loader, str(tmp_path), "model", dtype="x") == "loaded"
    assert calls[-1] == (str(tmp_path), {"dtype": "x"})
    with pytest.raises(TranslatorUnavailable, match="does not exist"):
        load_pretrained(loader, str(tmp_path / "missing"), "model")
    with pytest.raises(TranslatorUnavailable) as err:
        load_pretrained(loader, "org/model", "translation model")
    assert calls[-1] == ("org/model", {"local_files_only": True})
    assert "hf download org/model --local-dir" in str(err.value)
    monkeypatch.setattr(base, "hub_reachable", lambda: True)
    assert load_pretrained(loader, "org/model", "model") == "loaded"
    assert calls[-1] == ("org/model", {})


def test_real_loaders_fail_with_one_line_when_hub_is_unreachable(hub_down: str) -> None:
    from personalign.build.translate import CT2Translator, HFSeq2SeqTranslator

    hub_id = "personalign-test/no-such-translation-model"
    for make in (HFSeq2SeqTranslator, CT2Translator):
        with pytest.raises(TranslatorUnavailable) as err:
            make(hub_id)
        message = str(err.value)
        assert "\n" not in message
        assert hub_id in message and "cannot be reached" in message
        assert f"hf download {hub_id} --local-dir <folder>" in message
        assert err.value.__cause__ is None
