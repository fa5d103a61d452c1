"""LLMTranslator against a real HTTP server on loopback that speaks the OpenAI
chat-completions API, with deterministic answers and injected faults
(the server lives in tests/build/chat_server.py)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personalign.build.translate import (
    LLMTranslator,
    TranslationError,
    TranslationRejected,
    translate_dataset,
)
from personalign.build.translators.llm import MalformedReply, parse_translations, sanitize_url
from personalign.data.schema import Record
from tests.build.chat_server import API_KEY, FakeChatServer, answer


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    srv = FakeChatServer()
    yield srv
    srv.close()


def make(srv: FakeChatServer, **kwargs: Any) -> tuple[LLMTranslator, list[float]]:
    """A translator for ``srv`` whose back-off waits are recorded instead of slept."""
    options: dict[str, Any] = {"base_url": srv.url, "api_key": API_KEY, "batch_size": 2,
                               "concurrency": 2, "timeout_s": 5.0, "base_delay_s": 0.5}
    options.update(kwargs)
    tr = LLMTranslator("tiny-chat", **options)
    waits: list[float] = []
    tr.sleep = waits.append
    return tr, waits


TEXTS = ["The teacher plans a lesson.", "A farmer", "", "sells mangoes", "in Pune"]


def test_translates_in_order_with_one_request_per_batch(server: FakeChatServer) -> None:
    tr, waits = make(server)
    out = tr.translate(TEXTS, "eng_Latn", "hin_Deva")
    assert out == ["[Hindi] .nossel a snalp rehcaet ehT", "[Hindi] remraf A", "",
                   "[Hindi] seognam slles", "[Hindi] enuP ni"]
    # 4 non-blank texts in batches of 2; the blank one is never sent.
    assert len(server.requests) == 2 and waits == []
    sent = sorted(json.loads(r["body"]["messages"][1]["content"])["texts"][0]
                  for r in server.requests)
    assert sent == ["The teacher plans a lesson.", "sells mangoes"]
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert req["body"]["model"] == "tiny-chat" and req["body"]["temperature"] == 0.0
    assert req["body"]["response_format"] == {"type": "json_object"}
    system = req["body"]["messages"][0]["content"]
    assert "from English into Hindi" in system and "Devanagari" in system


def test_environment_configuration(server: FakeChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONALIGN_LLM_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    tr = LLMTranslator("tiny-chat", json_mode=False, seed=None)
    assert tr.translate(["ab"], "eng_Latn", "tam_Taml") == ["[Tamil] ba"]
    body = server.requests[0]["body"]
    assert "response_format" not in body and "seed" not in body
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert tr.identity()["base_url"] == server.url


def test_retries_429_500_and_timeouts_with_exponential_backoff() -> None:
    srv = FakeChatServer(["429", "500", "timeout"], slow_s=1.0)
    try:
        tr, waits = make(srv, batch_size=8, timeout_s=0.3, base_delay_s=0.5)
        out = tr.translate(["ab", "cd"], "eng_Latn", "ben_Beng")
    finally:
        srv.close()
    assert out == ["[Bengali] ba", "[Bengali] dc"]
    assert len(srv.requests) == 4
    assert waits == [0.5, 1.0, 2.0]  # base * 2**k


def test_retry_after_and_delay_cap() -> None:
    srv = FakeChatServer(["429", "429", "429"], retry_after="7")
    try:
        tr, waits = make(srv, base_delay_s=1.0, max_delay_s=4.0)
        tr.translate(["ab"], "eng_Latn", "urd_Arab")
    finally:
        srv.close()
    # Retry-After 7 s is longer than 1, 2, 4 s but capped at max_delay_s = 4 s.
    assert waits == [4.0, 4.0, 4.0]


def test_gives_up_after_max_retries() -> None:
    srv = FakeChatServer(["500"] * 10)
    try:
        tr, waits = make(srv, max_retries=2)
        with pytest.raises(TranslationError, match="failed 3 times, last with HTTP 500"):
            tr.translate(["ab"], "eng_Latn", "hin_Deva")
    finally:
        srv.close()
    assert len(srv.requests) == 3 and waits == [0.5, 1.0]


def test_client_errors_are_not_retried_and_the_key_is_redacted() -> None:
    srv = FakeChatServer(["401"])
    try:
        tr, waits = make(srv)
        with pytest.raises(TranslationError) as err:
            tr.translate(["ab"], "eng_Latn", "hin_Deva")
    finally:
        srv.close()
    assert len(srv.requests) == 1 and waits == []
    assert "HTTP 401" in str(err.value) and "***" in str(err.value)
    assert API_KEY not in str(err.value)
    # The client's exception, which quotes the key, is not chained to ours either.
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_malformed_reply_is_repaired_once() -> None:
    srv = FakeChatServer(["malformed"])
    try:
        tr, _ = make(srv, batch_size=8)
        out = tr.translate(["ab", "cd"], "eng_Latn", "mar_Deva")
    finally:
        srv.close()
    assert out == ["[Marathi] ba", "[Marathi] dc"]
    assert len(srv.requests) == 2
    repair = srv.requests[1]["body"]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert repair[2]["content"].startswith("Sure! Here are the translations")
    assert "not a JSON document" in repair[3]["content"]
    assert "exactly 2 strings" in repair[3]["content"]


@pytest.mark.parametrize(("faults", "reason"), [
    (["malformed", "fenced"], "not a JSON document"),
    (["short", "short"], '"translations" has 1 items for 2 input texts'),
    (["length", "length"], "cut off by the token limit"),
])
def test_second_malformed_reply_is_rejected_with_the_reason(
    faults: list[str], reason: str
) -> None:
    srv = FakeChatServer(faults)
    try:
        tr, _ = make(srv, batch_size=8)
        with pytest.raises(TranslationRejected) as err:
            tr.translate(["ab", "cd"], "eng_Latn", "guj_Gujr")
    finally:
        srv.close()
    assert len(srv.requests) == 2
    assert reason in err.value.reason and reason in str(err.value)


def test_concurrency_is_bounded() -> None:
    srv = FakeChatServer(delay_s=0.05)
    try:
        tr, _ = make(srv, batch_size=1, concurrency=3)
        texts = [f"text {i}" for i in range(12)]
        out = tr.translate(texts, "eng_Latn", "kan_Knda")
    finally:
        srv.close()
    assert out == answer(texts, "Kannada")
    assert len(srv.requests) == 12
    assert 1 <= srv.max_in_flight <= 3


def test_parse_translations_is_strict() -> None:
    texts = ["a", "b"]
    assert parse_translations('{"translations": ["x", "y"]}', texts, "stop") == ["x", "y"]
    bad = {
        '["x", "y"]': "single key",
        '{"translations": ["x", "y"], "note": "hi"}': "single key",
        '{"translations": "x y"}': "must be a list",
        '{"translations": ["x", 2]}': "item 2 of",
        '{"translations": ["x", " "]}': "item 2 of \"translations\" is empty",
        '{"translations": ["x"]}': "1 items for 2 input texts",
        '```json\n{"translations": ["x", "y"]}\n```': "not a JSON document",
        "": "empty",
    }
    for content, reason in bad.items():
        with pytest.raises(MalformedReply, match=re.escape(reason)):
            parse_translations(content, texts, "stop")


def test_sanitize_url_drops_credentials() -> None:
    assert sanitize_url("http://user:pw@127.0.0.1:8000/v1?api_key=x#f") == "http://127.0.0.1:8000/v1"


def test_api_key_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    srv = FakeChatServer(["429", "500", "timeout", "malformed", "short", "short", "401"],
                         slow_s=0.6)
    seen: list[str] = []
    try:
        tr, _ = make(srv, batch_size=4, concurrency=1, timeout_s=0.3)
        seen += [repr(tr), json.dumps(tr.identity()), tr.name]
        records = [Record(f"p{i}", "eng_Latn", f"persona {i}", f"instruction {i}")
                   for i in range(2)]
        checkpoint = tmp_path / "ckpt.jsonl"
        # 429, 500, timeout, then malformed -> repair -> "short" -> rejected: skipped.
        assert translate_dataset(records, tr, ["hin_Deva"], checkpoint, batch_size=2,
                                 on_reject="skip") == []
        # "short" is answered by a repair, "401" ends the run.
        with pytest.raises(TranslationError) as err:
            translate_dataset(records, tr, ["hin_Deva"], checkpoint, batch_size=2)
        seen.append(str(err.value))
        done = translate_dataset(records, tr, ["hin_Deva"], checkpoint, batch_size=2)
        assert [r.persona for r in done] == ["[Hindi] 0 anosrep", "[Hindi] 1 anosrep"]
        seen += [json.dumps([r.to_dict() for r in done]), checkpoint.read_text("utf-8")]
    finally:
        srv.close()
    seen.append(caplog.text)
    assert all(r["headers"]["authorization"] == f"Bearer {API_KEY}" for r in srv.requests)
    assert "retry" in caplog.text and "malformed reply" in caplog.text
    for text in seen:
        assert API_KEY not in text
        assert "SECRET" not in text
