"""The pipeline end to end, offline: synthesis and LLM translation against the loopback
OpenAI-style server (injected 429/500/time-outs/malformed replies), the quality gate
without embeddings, validation sheets; a SIGKILL in the middle and a restart lose and
duplicate nothing; the API key reaches no file and no log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from personalign.build.dedup import dedup_records, find_duplicates, jaccard, normalize, shingles
from personalign.build.pipeline import (
    PipelineConfig,
    TranslatorSpec,
    config_from_dict,
    load_config,
    run_pipeline,
)
from personalign.cli import app
from personalign.data.loaders import load_dataset
from personalign.data.schema import Record
from tests.build.chat_server import API_KEY, FakeChatServer, pipeline_reply

ROLES = ("tea-garden supervisor", "college student", "fisherwoman", "retired army officer",
         "dentist", "bus conductor", "handloom weaver", "software tester",
         "primary school teacher", "dairy farmer")
PLACES = ("Jorhat", "Madurai", "Ratnagiri")
DETAILS = (
    "tracks rainfall every morning", "is preparing for a state exam", "sells at dawn",
    "volunteers at a library", "wants to open a second clinic", "knows every stop by heart",
    "dyes yarn with indigo", "writes bug reports at night", "teaches forty children",
    "milks twelve buffaloes", "collects old coins", "sings in a temple choir",
    "mends nets on Sundays", "grows roses on the terrace", "plays carrom with neighbours",
    "saves for a motorcycle", "exports saris to Dubai", "learns Japanese online",
    "coaches the school kabaddi team", "sells ghee to a cooperative", "cares for an old mother",
    "bakes cakes for weddings", "repairs radios as a hobby", "runs a small YouTube channel",
    "keeps bees behind the house", "paints murals for festivals", "studies the stock market",
    "drives a tractor for hire", "writes letters for villagers", "trains for a marathon",
)
TARGETS = ["hin_Deva", "tam_Taml", "ben_Beng"]


def persona_file(folder: Path, n: int = 30) -> Path:
    rows = []
    for i in range(n):
        role = ROLES[i % len(ROLES)]
        rows.append({"id": f"s{i:02d}", "persona": f"A {role} in {PLACES[i % 3]} who "
                     f"{DETAILS[i]}.", "domain": role.split()[-1]})
    path = folder / "personas.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def config_toml(folder: Path, url: str, work: Path, *, engine: str = "local",
                n_validation: int = 10) -> Path:
    seeds = persona_file(folder)
    client = (f'base_url = "{url}"\ntimeout_s = 0.5\nmax_retries = 8\n'
              "base_delay_s = 0.01\nmax_delay_s = 0.05\n")
    text = f"""
[pipeline]
work_dir = "{work}"
name = "e2e"
engine = "{engine}"

[llm]
backend = "openai"
model = "tiny-chat"
{client}
[personas]
seeds = "{seeds.name}"

[synthesize]
shots = 2
negatives = true
temperature = 0.5
seed = 11
concurrency = 4

[dedup]
mode = "drop-exact"

[translate]
to = {json.dumps(TARGETS)}
backend = "llm"
model = "tiny-chat"
batch_size = 4

[translate.options]
concurrency = 2
batch_size = 8
{client}
[gate]
embedding = false

[validation]
n = {n_validation}
seed = 3

[ray]
num_cpus = 2
max_actors = 1
batch_size = 8
"""
    path = folder / "pipeline.toml"
    path.write_text(text, "utf-8")
    return path


def run_cli(config: Path, log: Path, env_key: str = API_KEY) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENAI_API_KEY": env_key}
    env.pop("PERSONALIGN_LLM_BASE_URL", None)
    env.pop("OPENAI_BASE_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; from personalign.cli import app; "
             "app(sys.argv[1:], prog_name='personalign')", "build", "run", "--config",
             str(config), "-v"], stdout=out, stderr=subprocess.STDOUT, env=env)


def texts(r: Record) -> tuple[Any, ...]:
    """What must not differ between two runs (the translator's identity hash in ``source``
    includes the server URL, which differs between test servers)."""
    return (r.pair_id, r.lang, r.persona, r.instruction, r.negative, r.domain,
            (r.source or "").partition("@")[0])


def checkpoint_keys(path: Path, key: str) -> list[Any]:
    lines = path.read_text("utf-8").splitlines()[1:] if path.exists() else []
    if key == "unit":
        return [json.loads(x)["key"] for x in lines]
    return [(json.loads(x)["record"]["pair_id"], json.loads(x)["record"]["lang"])
            for x in lines]


def all_text(folder: Path) -> str:
    return "\n".join(p.read_text("utf-8", errors="replace") for p in folder.rglob("*")
                     if p.is_file())


def test_end_to_end_with_faults_and_a_sigkill_in_the_middle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Request order (one fault per request, in arrival order): synthesis sees a 429, a
    # 500, a time-out and a malformed reply (repaired): 30 units + 4 extra requests = 34.
    faults = ["ok", "429", "ok", "500", "timeout", "ok", "malformed"] + ["ok"] * 27
    faults += ["ok", "ok", "429", "ok", "ok", "500"] + ["ok"] * 20 + ["timeout", "ok", "429"]
    proc: dict[str, subprocess.Popen[bytes]] = {}
    killed = threading.Event()
    kill_at = 48  # a request in the middle of the translations

    def on_request(count: int, body: dict[str, Any]) -> None:
        if count == kill_at and "first" in proc and not killed.is_set():
            proc["first"].send_signal(signal.SIGKILL)
            proc["first"].wait()
            killed.set()

    srv = FakeChatServer(faults, slow_s=1.0, reply=pipeline_reply, on_request=on_request)
    work = tmp_path / "work"
    log = tmp_path / "cli.log"
    try:
        config = config_toml(tmp_path, srv.url, work)
        proc["first"] = run_cli(config, log)
        proc["first"].wait(timeout=300)
        assert killed.is_set() and proc["first"].returncode == -signal.SIGKILL
        synth_keys = checkpoint_keys(work / "synthesize" / "checkpoint.jsonl", "unit")
        done_before = checkpoint_keys(work / "translate" / "checkpoint.jsonl", "record")
        assert sorted(synth_keys) == [f"s{i:02d}" for i in range(30)]
        assert 0 < len(done_before) < 90  # killed mid-translation
        assert not (work / "report.json").exists()

        second = run_cli(config, log)
        assert second.wait(timeout=300) == 0, log.read_text("utf-8")[-3000:]
    finally:
        srv.close()

    # Nothing lost, nothing duplicated, nothing done twice.
    done_after = checkpoint_keys(work / "translate" / "checkpoint.jsonl", "record")
    assert len(done_after) == len(set(done_after)) == 90
    assert done_after[: len(done_before)] == done_before
    assert checkpoint_keys(work / "synthesize" / "checkpoint.jsonl", "unit") == synth_keys
    ds = load_dataset(work / "translate" / "dataset.jsonl")
    assert Counter(r.lang for r in ds.records) == {"eng_Latn": 30, **dict.fromkeys(TARGETS, 30)}
    assert len({(r.pair_id, r.lang) for r in ds.records}) == 120

    # The same as a clean in-process run against a server without faults.
    clean_srv = FakeChatServer(reply=pipeline_reply)
    try:
        clean_dir = tmp_path / "clean"
        clean_dir.mkdir()
        clean_cfg = load_config(config_toml(clean_dir, clean_srv.url, clean_dir / "work"))
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        run_pipeline(clean_cfg)
    finally:
        clean_srv.close()
    clean = load_dataset(clean_dir / "work" / "translate" / "dataset.jsonl")
    assert sorted(map(texts, ds.records)) == sorted(map(texts, clean.records))

    # Lineage, gate, validation sheets, report.
    english = [r for r in ds.records if r.lang == "eng_Latn"]
    lineage = english[0].extra["lineage"]
    assert english[0].source == "synth:2-shot:tiny-chat" and lineage["shots"] == 2
    assert lineage["template_id"] == "instruction+negative/2-shot/v1"
    assert all(r.negative for r in english)
    hindi = next(r for r in ds.records if r.lang == "hin_Deva")
    assert hindi.extra["translation"]["src_source"] == "synth:2-shot:tiny-chat"
    report = json.loads((work / "report.json").read_text("utf-8"))
    gate = report["stages"]["gate"]
    assert gate["passed"] + gate["rejected"] == 120 and "similarity" not in gate["checks"]
    assert (work / "gate" / "gate_report.json").exists()
    validation = report["stages"]["validation"]
    assert validation["n"] == 10 and validation["files"] == [f"{c}.csv" for c in
                                                            ("ben_Beng", "hin_Deva", "tam_Taml")]
    sheet = (work / "validation" / "hin_Deva.csv").read_text("utf-8-sig").splitlines()
    assert len(sheet) == 11 and sheet[0].startswith("pair_id,domain,english_persona")
    assert report["stages"]["synthesize"]["records"] == 30
    assert report["stages"]["translate"]["missing"] == 0

    # The key reached no file, no log line, no output.
    assert API_KEY not in all_text(work)
    assert API_KEY not in log.read_text("utf-8")
    assert "retry" in (work / "pipeline.log").read_text("utf-8")


class CrashingTranslator:
    """Wraps a translator; raises KeyboardInterrupt (a kill) on call ``crash_on``."""

    def __init__(self, inner: Any, crash_on: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.crash_on = crash_on

    def identity(self) -> dict[str, Any]:
        return dict(self.inner.identity())

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        self.calls += 1
        if self.calls == self.crash_on:
            raise KeyboardInterrupt
        return list(self.inner.translate(texts, src, tgt))


def test_in_process_interrupt_then_resume(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from personalign.build.pipeline import make_translator

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    srv = FakeChatServer(reply=pipeline_reply)
    try:
        cfg = load_config(config_toml(tmp_path, srv.url, tmp_path / "work"))
        cfg.validation.n = 5
        inner = make_translator(cfg.translator_spec())
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(cfg, translator=CrashingTranslator(inner, crash_on=5))
        partial = checkpoint_keys(tmp_path / "work" / "translate" / "checkpoint.jsonl",
                                  "record")
        assert len(partial) == 16  # 4 finished batches of 4 records
        requests_before = len(srv.requests)
        report = run_pipeline(cfg)
    finally:
        srv.close()
    # Synthesis was not asked again; translation only for the missing 74 units.
    translation_requests = [r for r in srv.requests[requests_before:]
                            if "translator" in r["body"]["messages"][0]["content"]]
    assert len(translation_requests) == len(srv.requests) - requests_before
    after = checkpoint_keys(tmp_path / "work" / "translate" / "checkpoint.jsonl", "record")
    assert len(after) == len(set(after)) == 90 and after[:16] == partial
    assert report["stages"]["translate"]["units_this_run"] == 74
    assert report["stages"]["synthesize"]["units_this_run"] == 0


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    base = {"pipeline": {"work_dir": "w"}, "personas": {"seeds": "p.jsonl"},
            "translate": {"to": ["hin"]}}
    cfg = config_from_dict(base, tmp_path)
    assert cfg.work_dir == tmp_path / "w" and cfg.personas.seeds == tmp_path / "p.jsonl"
    assert cfg.targets() == ["hin_Deva"] and cfg.engine == "local"
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "extra": {}}, "unknown section(s) extra"),
        ({**base, "synthesize": {"shots": 1}}, "shots must be 0 or 2"),
        ({**base, "synthesize": {"shot": 2}}, "[synthesize]: unknown key(s) shot"),
        ({**base, "llm": {"api_key": "x"}}, "do not put the API key"),
        ({**base, "llm": {"timeout": 3}}, "unknown option(s) timeout"),
        ({**base, "translate": {"to": []}}, "name at least one target"),
        ({**base, "translate": {"to": ["eng"]}}, "English is the source"),
        ({**base, "translate": {"to": ["hin"], "backend": "bing"}}, "unknown translation "
                                                                    "backend 'bing'"),
        ({**base, "personas": {}}, "give a seed file"),
        ({**base, "pipeline": {"engine": "spark"}}, "engine must be one of local, ray"),
        ({**base, "dedup": {"mode": "drop"}}, "dedup.mode must be one of"),
    ]
    for doc, message in cases:
        with pytest.raises(ValueError) as err:
            config_from_dict(doc, tmp_path, "x.toml")
        assert message in str(err.value) and str(err.value).startswith("x.toml")
    with pytest.raises(ValueError, match="unknown option"):
        TranslatorSpec.make("nllb", "folder", num_beam=4)
    assert isinstance(cfg, PipelineConfig)


def test_cli_synthesize_and_translate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    srv = FakeChatServer(reply=pipeline_reply)
    runner = CliRunner()
    try:
        seeds = persona_file(tmp_path, 6)
        out = tmp_path / "english.jsonl"
        res = runner.invoke(app, ["build", "synthesize", "--seeds", str(seeds), "--out",
                                  str(out), "--model", "tiny-chat", "--base-url", srv.url,
                                  "--shots", "2", "--negatives"])
        assert res.exit_code == 0, res.output
        english = load_dataset(out)
        assert len(english.records) == 6 and english.records[0].negative
        assert json.loads((tmp_path / "english.dedup.json").read_text())["records"] == 6
        assert (tmp_path / "english.rejected.jsonl").read_text() == ""
        monkeypatch.setenv("PERSONALIGN_LLM_BASE_URL", srv.url)
        translated = tmp_path / "translated.jsonl"
        res = runner.invoke(app, ["build", "translate", str(out), "--to", "hin,tam",
                                  "--backend", "llm", "--model", "tiny-chat", "--out",
                                  str(translated), "--option", "concurrency=2"])
        assert res.exit_code == 0, res.output
        ds = load_dataset(translated)
        assert Counter(r.lang for r in ds.records) == {"eng_Latn": 6, "hin_Deva": 6,
                                                        "tam_Taml": 6}
        n = len(srv.requests)
        res = runner.invoke(app, ["build", "translate", str(out), "--to", "hin,tam",
                                  "--model", "tiny-chat", "--out", str(translated)])
        assert res.exit_code == 0 and len(srv.requests) == n  # resumed: nothing to do
        res = runner.invoke(app, ["build", "translate", str(out), "--to", "hin",
                                  "--model", "tiny-chat", "--out", str(translated),
                                  "--option", "numbeams=2"])
        assert res.exit_code == 2 and "unknown option(s) numbeams" in res.output
    finally:
        srv.close()


def test_cli_generated_personas_and_run_without_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    srv = FakeChatServer(reply=pipeline_reply)
    monkeypatch.setenv("PERSONALIGN_LLM_BASE_URL", srv.url)
    runner = CliRunner()
    try:
        out = tmp_path / "gen.jsonl"
        res = runner.invoke(app, ["build", "synthesize", "--domains", "fisheries,dairy",
                                  "--regions", "Kerala", "--per-pair", "3", "--out", str(out),
                                  "--model", "tiny-chat", "--dedup", "report"])
        assert res.exit_code == 0, res.output
        ds = load_dataset(out)
        assert len(ds.records) == 6 and {r.domain for r in ds.records} == {"fisheries", "dairy"}
        assert ds.records[0].extra["lineage"]["persona_origin"] == \
            "generated:persona/v1:tiny-chat"
        seeds = persona_file(tmp_path, 12)
        work = tmp_path / "w"
        res = runner.invoke(app, ["build", "run", "--seeds", str(seeds), "--to", "tam",
                                  "--model", "tiny-chat", "--no-embedding", "--work",
                                  str(work)])
    finally:
        srv.close()
    # The translation model is the default (gpt-4o-mini) on the same server.
    assert res.exit_code == 0, res.output
    report = json.loads((work / "report.json").read_text("utf-8"))
    assert report["stages"]["translate"]["records"] == 12
    assert report["stages"]["validation"]["files"] == ["tam_Taml.csv"]
    assert any(r["body"]["model"] == "gpt-4o-mini" for r in srv.requests)


def test_refused_key_is_redacted_and_exit_code_3(tmp_path: Path) -> None:
    srv = FakeChatServer(["401"] * 3, reply=pipeline_reply)
    work = tmp_path / "work"
    log = tmp_path / "cli.log"
    try:
        config = config_toml(tmp_path, srv.url, work)
        proc = run_cli(config, log)
        assert proc.wait(timeout=120) == 3
    finally:
        srv.close()
    output = log.read_text("utf-8")
    assert "HTTP 401" in output and "***" in output and "rerun the same command" in output
    assert API_KEY not in output and API_KEY not in all_text(work)
    assert srv.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"


# --------------------------------------------------------------------------------------
# dedup (hand-computed)


def test_normalize_and_jaccard_by_hand() -> None:
    assert normalize("  Hello,  WORLD_x! नमस्ते। ") == "hello world x नमस्ते"
    # "abcd" -> {abc, bcd}; "abce" -> {abc, bce}: 1 shared of 3.
    assert jaccard(shingles("abcd"), shingles("abce")) == pytest.approx(1 / 3)
    assert shingles("ab") == frozenset({"ab"})


def test_find_duplicates_exact_and_near() -> None:
    ids = ["a", "b", "c", "d", "e"]
    texts_ = ["A teacher in Pune who loves gardening.",
              "a teacher in pune, who loves GARDENING",  # exact after normalisation
              "A teacher in Pune who loves gardening a lot.",  # near
              "A fisherman in Kochi mends nets.",
              "Completely different text here."]
    clusters = find_duplicates(ids, texts_, field_name="persona", threshold=0.8)
    assert [(c.kind, c.ids) for c in clusters] == [("exact", ["a", "b"]),
                                                   ("near", ["a", "b", "c"])]
    near = clusters[1]
    expected = jaccard(shingles(texts_[0]), shingles(texts_[2]))
    assert near.min_similarity == pytest.approx(expected) and expected >= 0.8
    instructions = ["Plan my week.", "Write a poem about rain.", "Fix my bicycle chain.",
                    "Translate this letter.", "Count the votes."]
    records = [Record(i, "eng_Latn", t, x)
               for i, t, x in zip(ids, texts_, instructions, strict=True)]
    kept, report = dedup_records(records, mode="drop-exact")
    assert [r.pair_id for r in kept] == ["a", "c", "d", "e"] and report.dropped == ["b"]
    kept, report = dedup_records(records, mode="drop-near")
    assert [r.pair_id for r in kept] == ["a", "d", "e"]
    counts = report.counts()["persona"]
    assert counts == {"exact_clusters": 1, "exact_extra_records": 1, "near_clusters": 1,
                      "near_records": 3}
    kept, report = dedup_records(records, mode="report")
    assert len(kept) == 5 and report.dropped == []
