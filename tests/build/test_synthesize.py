"""Pair synthesis and persona generation against the loopback OpenAI-style server
(tests/build/chat_server.py): lineage, strict parsing and repair, rejections counted,
retries, resumption without loss or duplicates; persona seed files; the checkpoint."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from personalign.build.llm import (
    ChatReply,
    LLMError,
    MalformedReply,
    OpenAIChat,
    RateLimiter,
    SecretFilter,
    run_bounded,
)
from personalign.build.synthesis import (
    EXAMPLES,
    PersonaRequest,
    PersonaSeed,
    SynthesisSettings,
    generate_personas,
    identity_hash,
    instruction_template,
    parse_pair,
    parse_personas,
    persona_ids,
    read_persona_seeds,
    synthesize,
    unit_seed,
)
from personalign.build.synthesis.checkpoint import UnitCheckpoint, read_units
from personalign.build.synthesis.prompts import pick_examples
from personalign.data.errors import DatasetError
from tests.build.chat_server import (
    API_KEY,
    FakeChatServer,
    fake_instruction,
    pipeline_reply,
)

PERSONAS = [
    "A tea-garden supervisor in Jorhat who tracks rainfall and worker rosters.",
    "A college student in Madurai preparing for the civil services exam.",
    "A fisherwoman in Ratnagiri who sells her catch at the morning market.",
    "A retired army officer in Dehradun who volunteers at a library.",
    "A dentist in Ludhiana who wants to open a second clinic.",
]


def seeds(n: int = 5) -> list[PersonaSeed]:
    return [PersonaSeed(f"p{i}", PERSONAS[i % len(PERSONAS)] + (f" ({i})" if i >= 5 else ""),
                        domain="work" if i % 2 else "study", region="test")
            for i in range(n)]


def chat(srv: FakeChatServer, **kwargs: Any) -> tuple[OpenAIChat, list[float]]:
    options: dict[str, Any] = {"base_url": srv.url, "api_key": API_KEY, "timeout_s": 5.0,
                               "base_delay_s": 0.5}
    options.update(kwargs)
    c = OpenAIChat("tiny-chat", **options)
    waits: list[float] = []
    c.sleep = waits.append
    return c, waits


@pytest.fixture
def server() -> Any:
    srv = FakeChatServer(reply=pipeline_reply)
    yield srv
    srv.close()


def test_pairs_with_lineage(server: FakeChatServer, tmp_path: Path) -> None:
    c, _ = chat(server)
    settings = SynthesisSettings(shots=0, temperature=0.3, seed=7, concurrency=2)
    result = synthesize(seeds(3), c, tmp_path / "ck.jsonl", settings)
    assert [r.pair_id for r in result.records] == ["p0", "p1", "p2"]
    first = result.records[0]
    assert first.lang == "eng_Latn" and first.persona == PERSONAS[0]
    assert first.instruction == fake_instruction(PERSONAS[0]) and first.negative is None
    assert first.domain == "study" and first.extra["region"] == "test"
    assert first.source == "synth:0-shot:tiny-chat"
    lin = first.extra["lineage"]
    template = instruction_template(0, False)
    assert lin["template_id"] == "instruction/0-shot/v1" == template.id
    assert lin["template_sha256"] == template.sha256 and len(template.sha256) == 64
    assert lin["backend"] == "llm-openai" and lin["model"] == "tiny-chat"
    assert lin["shots"] == 0 and lin["temperature"] == 0.3 and lin["base_seed"] == 7
    assert lin["seed"] == unit_seed(7, "p0") and lin["time"].endswith("+00:00")
    assert lin["identity_hash"] == identity_hash(result.identity)
    # The request: per-unit seed, temperature, JSON mode, system + one user message.
    bodies = {json.loads(json.dumps(r["body"]))["messages"][-1]["content"]: r["body"]
              for r in server.requests}
    body = bodies["Persona: " + PERSONAS[0]]
    assert body["seed"] == unit_seed(7, "p0") and body["temperature"] == 0.3
    assert body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_two_shot_with_negatives(server: FakeChatServer, tmp_path: Path) -> None:
    c, _ = chat(server)
    settings = SynthesisSettings(shots=2, negatives=True, seed=3)
    result = synthesize(seeds(2), c, tmp_path / "ck.jsonl", settings)
    rec = result.records[1]
    assert rec.negative == fake_instruction(rec.persona, negative=True)
    assert rec.source == "synth:2-shot:tiny-chat"
    lin = rec.extra["lineage"]
    assert lin["template_id"] == "instruction+negative/2-shot/v1" and lin["negatives"]
    chosen = pick_examples(3, "p1")
    assert lin["examples"] == [e.id for e in chosen] and len(chosen) == 2
    body = next(r["body"] for r in server.requests
                if r["body"]["messages"][-1]["content"] == "Persona: " + rec.persona)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert body["messages"][1]["content"] == "Persona: " + chosen[0].persona
    shown = json.loads(body["messages"][2]["content"])
    assert shown == {"instruction": chosen[0].instruction, "negative": chosen[0].negative}


def test_templates_and_examples_are_fixed() -> None:
    ids = {instruction_template(s, n).id for s in (0, 2) for n in (False, True)}
    shas = {instruction_template(s, n).sha256 for s in (0, 2) for n in (False, True)}
    assert len(ids) == len(shas) == 4
    with pytest.raises(ValueError, match="0 or 2"):
        instruction_template(1, False)
    # Same seed and key: same examples; the choice depends on the key, not on call order.
    assert pick_examples(0, "a") == pick_examples(0, "a")
    picks = {tuple(e.id for e in pick_examples(0, f"k{i}")) for i in range(30)}
    assert len(picks) > 3 and all(len(p) == 2 for p in picks)
    assert len({e.id for e in EXAMPLES}) == len(EXAMPLES)


def test_parse_pair_is_strict() -> None:
    persona = "A potter in Khurja."
    good = ChatReply('{"instruction": "Price my   glazed pots for the fair."}', "stop")
    assert parse_pair(good, persona, False) == {"instruction": "Price my glazed pots for the fair."}
    bad = {
        '{"instruction": "Price my pots for the fair.", "x": 1}': "exactly the keys",
        '{"instruction": 5}': "must be a string",
        '{"instruction": "short"}': "shorter than 12",
        '{"instruction": "a potter in khurja."}': "repeats the persona",
        'Sure: {"instruction": "Price my pots for the fair."}': "not a JSON document",
        '{"instruction": "' + "x" * 401 + '"}': "longer than 400",
    }
    for content, reason in bad.items():
        with pytest.raises(MalformedReply, match=reason):
            parse_pair(ChatReply(content, "stop"), persona, False)
    with pytest.raises(MalformedReply, match="same text as the instruction"):
        parse_pair(ChatReply('{"instruction": "Price my pots now.", "negative": "price my '
                             'pots NOW."}', "stop"), persona, True)
    with pytest.raises(MalformedReply, match="cut off"):
        parse_pair(ChatReply('{"instruction": "Price my pots', "length"), persona, False)


def test_faults_are_retried_repaired_or_rejected(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    # One request at a time, so faults hit units in order: p0 sees 429, 500, then a
    # time-out, then succeeds; p1 malformed -> repaired; p2 malformed twice -> rejected.
    srv = FakeChatServer(["429", "500", "timeout", "ok", "malformed", "ok", "fenced",
                          "malformed"], slow_s=0.6, reply=pipeline_reply)
    try:
        c, waits = chat(srv, timeout_s=0.3)
        ck = tmp_path / "ck.jsonl"
        result = synthesize(seeds(4), c, ck, SynthesisSettings(concurrency=1))
    finally:
        srv.close()
    assert waits == [0.5, 1.0, 2.0]
    assert [r.pair_id for r in result.records] == ["p0", "p1", "p3"]
    assert [(x.seed.id, x.reason[:26]) for x in result.rejected] == [
        ("p2", "the reply is not a JSON do")]
    assert result.new_ok == 3 and result.new_rejected == 1
    assert "asking once for a repair" in caplog.text and "unit p2 rejected" in caplog.text
    # A restart asks for nothing (rejections are final) unless retry_rejected.
    srv2 = FakeChatServer(reply=pipeline_reply)
    try:
        c2, _ = chat(srv2)
        again = synthesize(seeds(4), c2, ck, SynthesisSettings(concurrency=1))
        assert srv2.requests == [] and len(again.rejected) == 1
        retried = synthesize(seeds(4), c2, ck, SynthesisSettings(concurrency=1,
                                                                 retry_rejected=True))
    finally:
        srv2.close()
    assert len(srv2.requests) == 1 and retried.rejected == []
    assert [r.pair_id for r in retried.records] == ["p0", "p1", "p2", "p3"]


def test_failure_mid_way_then_restart_loses_nothing(tmp_path: Path) -> None:
    # The 5th request is refused with 401 (not retried): the run stops, what finished stays.
    srv = FakeChatServer(["ok"] * 4 + ["401"], reply=pipeline_reply)
    ck = tmp_path / "ck.jsonl"
    try:
        c, _ = chat(srv)
        with pytest.raises(LLMError, match="HTTP 401") as err:
            synthesize(seeds(8), c, ck, SynthesisSettings(concurrency=1))
    finally:
        srv.close()
    assert API_KEY not in str(err.value)
    lines = ck.read_text("utf-8").splitlines()
    assert [json.loads(x)["key"] for x in lines[1:]] == ["p0", "p1", "p2", "p3"]
    srv2 = FakeChatServer(reply=pipeline_reply)
    try:
        c2, _ = chat(srv2)
        result = synthesize(seeds(8), c2, ck, SynthesisSettings(concurrency=3))
    finally:
        srv2.close()
    assert len(srv2.requests) == 4  # p4..p7 only
    keys = [json.loads(x)["key"] for x in ck.read_text("utf-8").splitlines()[1:]]
    assert sorted(keys) == [f"p{i}" for i in range(8)]
    assert [r.pair_id for r in result.records] == [f"p{i}" for i in range(8)]


def test_checkpoint_refuses_other_settings_and_changed_personas(server: FakeChatServer,
                                                                tmp_path: Path) -> None:
    c, _ = chat(server)
    ck = tmp_path / "ck.jsonl"
    synthesize(seeds(2), c, ck, SynthesisSettings(shots=0, concurrency=1))
    with pytest.raises(DatasetError, match="other settings") as err:
        synthesize(seeds(2), c, ck, SynthesisSettings(shots=2))
    assert err.value.line == 1
    changed = [seeds(2)[0], PersonaSeed("p1", "Someone else entirely, in Goa.")]
    with pytest.raises(DatasetError, match="persona of this id changed") as err:
        synthesize(changed, c, ck, SynthesisSettings(shots=0, concurrency=1))
    assert err.value.record_id == "p1" and err.value.line == 3


def test_torn_line_is_cut_and_redone(server: FakeChatServer, tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    c, _ = chat(server)
    ck = tmp_path / "ck.jsonl"
    synthesize(seeds(3), c, ck, SynthesisSettings(concurrency=1))
    data = ck.read_bytes()
    ck.write_bytes(data[:-40])  # the last unit's line cut mid-write
    before = len(server.requests)
    caplog.set_level(logging.WARNING)
    result = synthesize(seeds(3), c, ck, SynthesisSettings(concurrency=1))
    assert "unfinished last line" in caplog.text
    assert len(server.requests) == before + 1
    assert [r.pair_id for r in result.records] == ["p0", "p1", "p2"]
    lines = ck.read_text("utf-8").splitlines()
    assert len(lines) == 4 and all(json.loads(x) for x in lines)


def test_shards_are_merged_first_wins(tmp_path: Path) -> None:
    identity = {"model": "m"}
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    from personalign.build.synthesis import Unit

    with UnitCheckpoint(a, "synthesize", identity) as ck:
        ck.append([Unit("k1", "ok", "s", {"v": 1}), Unit("k2", "rejected", "s", None, "bad")])
    with UnitCheckpoint(b, "synthesize", identity) as ck:
        ck.append([Unit("k1", "ok", "s", {"v": 2}), Unit("k2", "ok", "s", {"v": 3})])
        with pytest.raises(ValueError, match="already finished"):
            ck.append([Unit("k2", "ok", "s", {"v": 4})])
    state = read_units([a, b], "synthesize", identity_hash(identity))
    assert state["k1"].output == {"v": 1} and state["k2"].output == {"v": 3}
    # Inside one file, a key finished twice is an error naming the line.
    a.write_text(a.read_text("utf-8") + json.dumps(
        {"key": "k1", "status": "ok", "input_sha256": "s", "output": {}, "reason": None})
        + "\n", "utf-8")
    with pytest.raises(DatasetError, match="already finished") as err:
        read_units([a], "synthesize")
    assert err.value.line == 4
    with pytest.raises(DatasetError, match="stage 'synthesize', not 'personas'"):
        read_units([b], "personas", identity_hash(identity))


def test_generate_personas(server: FakeChatServer, tmp_path: Path) -> None:
    c, _ = chat(server)
    requests = [PersonaRequest("fisheries", "Kerala", 3), PersonaRequest("dairy", "Punjab", 2)]
    out, rejected = generate_personas(requests, c, tmp_path / "p.jsonl", seed=1)
    assert rejected == [] and len(out) == 5 and len(server.requests) == 2
    assert [s.id for s in out[:3]] == persona_ids(requests[0])
    assert out[0].id.startswith("gen-fisheries-kerala-") and out[0].id.endswith("-001")
    assert out[0].domain == "fisheries" and out[4].region == "Punjab"
    assert "Person 1 of Kerala" in out[0].persona
    assert out[0].origin == "generated:persona/v1:tiny-chat"
    again, _ = generate_personas(requests, c, tmp_path / "p.jsonl", seed=1)
    assert again == out and len(server.requests) == 2
    with pytest.raises(MalformedReply, match="2 items, 3 were asked"):
        parse_personas(ChatReply('{"personas": ["a persona here", "another one here"]}',
                                 "stop"), 3)
    with pytest.raises(MalformedReply, match="personas 1 and 2 are the same"):
        parse_personas(ChatReply('{"personas": ["A persona here", "a  persona here"]}',
                                 "stop"), 2)


def test_read_persona_seeds(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("# personas\nA baker in Shillong.\n\n  A tailor   in Surat.  \n", "utf-8")
    got = read_persona_seeds(txt)
    assert [(s.id, s.persona) for s in got] == [("persona-000001", "A baker in Shillong."),
                                                ("persona-000002", "A tailor in Surat.")]
    assert got[1].origin == "file:p.txt:4"
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"id": "a", "persona": "A baker.", "domain": "food", "region": "NE"}\n'
                  '{"persona": "A tailor."}\n', "utf-8")
    got = read_persona_seeds(jl)
    assert [(s.id, s.domain, s.region) for s in got] == [("a", "food", "NE"),
                                                         ("persona-000002", None, None)]
    cases = {
        '{"persona": "x", "job": 1}\n': ("unknown field(s) 'job'", 1),
        '{"id": "a", "persona": "x"}\n{"id": "a", "persona": "y"}\n': ("already used", 2),
        '{"persona": ""}\n': ("missing or empty", 1),
        "not json\n": ("invalid JSON", 1),
    }
    for text, (message, line) in cases.items():
        jl.write_text(text, "utf-8")
        with pytest.raises(DatasetError, match=re.escape(message)) as err:
            read_persona_seeds(jl)
        assert err.value.line == line and str(jl) in str(err.value)
    csv = tmp_path / "p.csv"
    csv.write_text("persona\n", "utf-8")
    with pytest.raises(DatasetError, match=r"use a \.txt"):
        read_persona_seeds(csv)


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # one per 0.5 s
    for _ in range(3):
        limiter.acquire()
    assert slept == [0.5, 0.5]
    now[0] += 2.0  # idle time earns no burst: the next one starts at once, then spacing
    limiter.acquire()
    limiter.acquire()
    assert slept == [0.5, 0.5, 0.5]
    assert RateLimiter(None).acquire() == 0.0


def test_rate_limit_reaches_the_client(server: FakeChatServer, tmp_path: Path) -> None:
    c, waits = chat(server, requests_per_minute=600)  # 0.1 s apart
    c.limiter.clock = lambda: 0.0  # a frozen clock: each request waits for its own slot
    synthesize(seeds(3), c, tmp_path / "ck.jsonl", SynthesisSettings(concurrency=1))
    assert waits == pytest.approx([0.1, 0.2])


def test_run_bounded_keeps_order_and_raises_first() -> None:
    assert run_bounded(lambda x: x * 2, [3, 1, 2], 2) == [6, 2, 4]

    def boom(x: int) -> int:
        if x == 2:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError):
        run_bounded(boom, [1, 2, 3], 3)
    with pytest.raises(ValueError):
        run_bounded(boom, [1], 0)


def test_secret_filter_masks_the_key(monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    logger = logging.getLogger("personalign.test_secret")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(SecretFilter())
    logger.addHandler(handler)
    try:
        logger.warning("server said: bad key %s", API_KEY)
    finally:
        logger.removeHandler(handler)
    assert seen == ["server said: bad key ***"]
