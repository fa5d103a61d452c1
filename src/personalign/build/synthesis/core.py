"""Synthesis of English persona–instruction pairs (and of personas), resumable.

``synthesize(seeds, chat, checkpoint)`` asks the chat backend, for every persona seed, for
one instruction this persona would give an assistant (and, with ``negatives``, one hard
negative instruction it would not give). The unit of work is one persona; each finished
unit is appended to a JSONL checkpoint at once (``synthesis.checkpoint``), so a killed run
loses only requests in flight and a restart asks only for what is missing.

A reply is parsed strictly (``prompts.parse_pair``); a malformed reply gets one repair
request; a second malformed reply marks the unit "rejected" with the reason. Rejected
units are counted and reported and are not asked again on restart unless
``retry_rejected`` is set. Transport failures (retries spent, HTTP 401, ...) stop the run
after writing every unit that finished.

Determinism: the request of a unit carries the seed ``unit_seed(seed, key)``, and 2-shot
examples are chosen per unit (``prompts.pick_examples``), so a unit's request does not
depend on run order, batching, concurrency or engine.

Lineage, in every record: ``source`` = ``"synth:<shots>-shot:<model>"``;
``extra["lineage"]`` = {stage, backend, model, identity_hash, template_id,
template_sha256, shots, examples (ids, 2-shot), negatives, temperature, seed (the unit's),
base_seed, max_tokens, time (UTC ISO 8601 when the unit finished), persona_origin}.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personalign.build.llm import ChatBackend, LLMRejected, complete_json
from personalign.build.synthesis import prompts
from personalign.build.synthesis.checkpoint import (
    Unit,
    UnitCheckpoint,
    combine,
    identity_hash,
    read_units,
    sha256_json,
)
from personalign.build.synthesis.seeds import PersonaSeed, slug
from personalign.data.errors import DatasetError
from personalign.data.schema import Record
from personalign.languages import ENGLISH

log = logging.getLogger(__name__)

SYNTH_STAGE = "synthesize"
PERSONA_STAGE = "personas"

Progress = Callable[[int, int], None]


def unit_seed(seed: int, key: str) -> int:
    """The sampling seed of one unit: first 31 bits of sha256("<seed>:<key>")."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------
# the unit runner


def run_units(
    pending: Sequence[tuple[str, str, Any]],
    work: Callable[[str, Any], dict[str, Any]],
    checkpoint: UnitCheckpoint,
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Run ``work(key, input)`` for every ``(key, input_sha256, input)`` of ``pending`` on
    at most ``concurrency`` threads and append each finished unit to ``checkpoint`` as soon
    as it finishes (the calling thread is the only writer).

    ``work`` returns the unit's output dict, or raises LLMRejected (the unit is stored as
    rejected with the reason). Any other exception stops the run: nothing new is started,
    units in flight are awaited and stored, then the first exception is raised.
    Returns (finished ok, rejected).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    ok = rejected = 0
    total = len(pending)
    todo = iter(pending)
    failure: BaseException | None = None

    def store(item: tuple[str, str, Any], fut: Future[dict[str, Any]]) -> None:
        nonlocal ok, rejected, failure
        key, sha, _ = item
        try:
            output = fut.result()
        except LLMRejected as err:
            checkpoint.append([Unit(key, "rejected", sha, None, err.reason)])
            rejected += 1
            log.warning("unit %s rejected: %s", key, err.reason)
        except Exception as err:  # stop after storing what finished
            if failure is None:
                failure = err
            return
        else:
            checkpoint.append([Unit(key, "ok", sha, output)])
            ok += 1
        if progress is not None:
            progress(ok + rejected, total)

    pool = ThreadPoolExecutor(max_workers=concurrency)
    running: dict[Future[dict[str, Any]], tuple[str, str, Any]] = {}
    try:
        while True:
            while failure is None and len(running) < concurrency:
                item = next(todo, None)
                if item is None:
                    break
                running[pool.submit(work, item[0], item[2])] = item
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                store(running.pop(fut), fut)
    except BaseException:
        # Interrupted (Ctrl-C, a kill turned into an exception): return at once; requests in
        # flight finish in their threads but are not stored, so they are asked again later.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if failure is not None:
        raise failure
    return ok, rejected


# --------------------------------------------------------------------------------------
# pair synthesis


@dataclass(frozen=True)
class SynthesisSettings:
    """Settings of pair synthesis. ``shots``: 0 or 2; ``negatives``: also write a hard
    negative instruction; ``temperature``; ``seed``: base of the per-unit seeds;
    ``max_tokens``: completion limit per request; ``concurrency``: requests in flight;
    ``retry_rejected``: ask again for units an earlier run rejected."""

    shots: int = 0
    negatives: bool = False
    temperature: float = 0.7
    seed: int = 0
    max_tokens: int | None = 400
    concurrency: int = 4
    retry_rejected: bool = False

    def __post_init__(self) -> None:
        if self.shots not in (0, 2):
            raise ValueError(f"shots must be 0 or 2 (as in the study), got {self.shots}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")


@dataclass(frozen=True)
class Rejection:
    """A persona whose reply was unusable: its seed and the reason."""

    seed: PersonaSeed
    reason: str


@dataclass
class SynthesisResult:
    """Records (in seed order), rejections, and counts of this call's new work."""

    records: list[Record]
    rejected: list[Rejection]
    identity: dict[str, Any]
    new_ok: int = 0
    new_rejected: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# Chat identity keys that do not decide a reply here: where the server listens (a restart
# may find it on another port), and defaults that every request overrides.
_NOT_IDENTITY = ("base_url", "temperature", "seed", "max_tokens", "n_ctx")


def chat_identity(chat: ChatBackend) -> dict[str, Any]:
    """The chat backend's identity without ``_NOT_IDENTITY`` keys."""
    return {k: v for k, v in chat.identity().items() if k not in _NOT_IDENTITY}


def synthesis_identity(chat: ChatBackend, settings: SynthesisSettings) -> dict[str, Any]:
    """What decides a pair-synthesis checkpoint's content (its header identity)."""
    template = prompts.instruction_template(settings.shots, settings.negatives)
    return {
        "stage": SYNTH_STAGE,
        "chat": chat_identity(chat),
        "model": chat.model,
        **template.lineage(),
        "shots": settings.shots,
        "negatives": settings.negatives,
        "temperature": settings.temperature,
        "seed": settings.seed,
        "max_tokens": settings.max_tokens,
    }


def seed_input(seed: PersonaSeed) -> dict[str, Any]:
    """The part of a seed that decides its unit's output (hashed into input_sha256)."""
    return {"persona": seed.persona}


def synthesize_one(chat: ChatBackend, seed: PersonaSeed,
                   settings: SynthesisSettings) -> dict[str, Any]:
    """One unit: the request, strict parsing with one repair; the checkpoint output
    {"instruction", ["negative"], "seed", "examples", "time"}. Raises LLMRejected."""
    examples = prompts.pick_examples(settings.seed, seed.id) if settings.shots else []
    messages = prompts.instruction_messages(seed.persona, examples, settings.negatives)
    s = unit_seed(settings.seed, seed.id)
    texts = complete_json(
        chat, messages,
        lambda reply: prompts.parse_pair(reply, seed.persona, settings.negatives),
        lambda reason: prompts.instruction_repair(reason, settings.negatives),
        what=f"persona {seed.id}", temperature=settings.temperature, seed=s,
        max_tokens=settings.max_tokens, json_schema=prompts.instruction_schema(
            settings.negatives, settings.max_tokens),
    )
    return {**texts, "seed": s, "examples": [e.id for e in examples], "time": _now()}


def pair_record(seed: PersonaSeed, output: dict[str, Any], identity: dict[str, Any]) -> Record:
    """The English record of a finished unit, with its lineage."""
    lineage = {
        "stage": SYNTH_STAGE,
        "backend": identity["chat"].get("backend"),
        "model": identity["model"],
        "identity_hash": identity_hash(identity),
        "template_id": identity["template_id"],
        "template_sha256": identity["template_sha256"],
        "shots": identity["shots"],
        "examples": output.get("examples", []),
        "negatives": identity["negatives"],
        "temperature": identity["temperature"],
        "seed": output["seed"],
        "base_seed": identity["seed"],
        "max_tokens": identity["max_tokens"],
        "time": output["time"],
        "persona_origin": seed.origin,
    }
    extra: dict[str, Any] = {"lineage": lineage}
    if seed.region:
        extra["region"] = seed.region
    return Record(
        pair_id=seed.id, lang=ENGLISH, persona=seed.persona,
        instruction=output["instruction"], negative=output.get("negative"),
        domain=seed.domain, source=f"synth:{identity['shots']}-shot:{identity['model']}",
        extra=extra,
    )


def _check_seeds(seeds: Sequence[PersonaSeed]) -> None:
    seen: set[str] = set()
    for s in seeds:
        if s.id in seen:
            raise ValueError(f"persona id {s.id!r} occurs more than once in the input")
        seen.add(s.id)


def _check_inputs(seeds: Sequence[PersonaSeed], done: dict[str, Unit]) -> None:
    for s in seeds:
        unit = done.get(s.id)
        if unit is not None and unit.input_sha256 != sha256_json(seed_input(s)):
            raise DatasetError(
                "the persona of this id changed since its pair was made; remove its line "
                "from the checkpoint (it will be made again) or use a new work folder",
                path=unit.file, line=unit.line, record_id=s.id,
            )


def collect_pairs(seeds: Sequence[PersonaSeed], done: dict[str, Unit],
                  identity: dict[str, Any]) -> tuple[list[Record], list[Rejection]]:
    """Records and rejections of ``seeds`` (in seed order) from finished units."""
    records: list[Record] = []
    rejected: list[Rejection] = []
    for s in seeds:
        unit = done.get(s.id)
        if unit is None:
            continue
        if unit.status == "ok" and unit.output is not None:
            records.append(pair_record(s, unit.output, identity))
        else:
            rejected.append(Rejection(s, unit.reason or "rejected"))
    return records, rejected


def synthesize(
    seeds: Sequence[PersonaSeed],
    chat: ChatBackend,
    checkpoint_path: str | Path,
    settings: SynthesisSettings | None = None,
    *,
    other_checkpoints: Iterable[str | Path] = (),
    progress: Progress | None = None,
) -> SynthesisResult:
    """Make one English pair per persona seed, resumably (see the module docstring).

    ``checkpoint_path``: the JSONL checkpoint this call appends to (created if missing).
    ``other_checkpoints``: more checkpoints of the same stage and settings (other workers'
    shards), read only: their finished units are not asked again and are returned too.
    Returns every record and rejection of ``seeds`` finished so far, in seed order.
    """
    import time

    settings = settings or SynthesisSettings()
    _check_seeds(seeds)
    identity = synthesis_identity(chat, settings)
    start = time.perf_counter()
    others = [Path(p) for p in other_checkpoints if Path(p) != Path(checkpoint_path)]
    with UnitCheckpoint(checkpoint_path, SYNTH_STAGE, identity) as ckpt:
        elsewhere = read_units(others, SYNTH_STAGE, ckpt.id_hash)
        done = combine(ckpt.done, elsewhere)
        _check_inputs(seeds, done)
        pending = [(s.id, sha256_json(seed_input(s)), s) for s in seeds
                   if s.id not in done
                   or (settings.retry_rejected and done[s.id].status == "rejected")]
        # A rejected unit of another shard retried here is written here; that shard's
        # rejected line then stands before this "ok" in merge order.
        ok, bad = run_units(
            pending, lambda _key, s: synthesize_one(chat, s, settings), ckpt,
            concurrency=settings.concurrency, progress=progress)
        done = combine(ckpt.done, elsewhere)
    records, rejected = collect_pairs(seeds, done, identity)
    return SynthesisResult(records, rejected, identity, ok, bad, time.perf_counter() - start)


# --------------------------------------------------------------------------------------
# persona generation


@dataclass(frozen=True)
class PersonaRequest:
    """Ask for ``n`` personas of people from ``region`` connected with ``domain``."""

    domain: str
    region: str
    n: int = 5

    @property
    def key(self) -> str:
        return f"{self.domain}|{self.region}"


def persona_identity(chat: ChatBackend, temperature: float, seed: int,
                     max_tokens: int | None) -> dict[str, Any]:
    return {"stage": PERSONA_STAGE, "chat": chat_identity(chat), "model": chat.model,
            **prompts.persona_template().lineage(), "temperature": temperature,
            "seed": seed, "max_tokens": max_tokens}


def persona_ids(request: PersonaRequest) -> list[str]:
    """Ids of a request's personas: ``gen-<domain>-<region>-<6 hex of sha256(key)>-<k>``."""
    h = hashlib.sha256(request.key.encode("utf-8")).hexdigest()[:6]
    base = f"gen-{slug(request.domain)}-{slug(request.region)}-{h}"
    return [f"{base}-{k:03d}" for k in range(1, request.n + 1)]


def generate_personas(
    requests: Sequence[PersonaRequest],
    chat: ChatBackend,
    checkpoint_path: str | Path,
    *,
    temperature: float = 0.9,
    seed: int = 0,
    max_tokens: int | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> tuple[list[PersonaSeed], list[tuple[PersonaRequest, str]]]:
    """Personas from (domain, region) requests, one request per unit, resumably.

    Returns (persona seeds in request order, rejected requests with their reasons).
    """
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("each (domain, region) may be asked for once")
    if any(r.n < 1 for r in requests):
        raise ValueError("each request must ask for at least one persona")
    identity = persona_identity(chat, temperature, seed, max_tokens)
    template = prompts.persona_template()

    def work(key: str, req: PersonaRequest) -> dict[str, Any]:
        s = unit_seed(seed, key)
        personas = complete_json(
            chat, prompts.persona_messages(req.domain, req.region, req.n),
            lambda reply: prompts.parse_personas(reply, req.n),
            lambda reason: prompts.persona_repair(reason, req.n),
            what=f"personas for {key}", temperature=temperature, seed=s,
            max_tokens=max_tokens, json_schema=prompts.persona_schema(req.n, max_tokens))
        return {"personas": personas, "seed": s, "time": _now()}

    with UnitCheckpoint(checkpoint_path, PERSONA_STAGE, identity) as ckpt:
        for r in requests:
            unit = ckpt.done.get(r.key)
            if unit is not None and unit.input_sha256 != sha256_json([r.domain, r.region, r.n]):
                raise DatasetError("this request asked for another number of personas "
                                   "before; use a new work folder", path=unit.file,
                                   line=unit.line, record_id=r.key)
        pending = [(r.key, sha256_json([r.domain, r.region, r.n]), r) for r in requests
                   if r.key not in ckpt.done]
        run_units(pending, work, ckpt, concurrency=concurrency, progress=progress)
        done = dict(ckpt.done)
    seeds: list[PersonaSeed] = []
    rejected: list[tuple[PersonaRequest, str]] = []
    origin = f"generated:{template.id}:{chat.model}"
    for r in requests:
        unit = done.get(r.key)
        if unit is None:
            continue
        if unit.status != "ok" or unit.output is None:
            rejected.append((r, unit.reason or "rejected"))
            continue
        for pid, text in zip(persona_ids(r), unit.output["personas"], strict=True):
            seeds.append(PersonaSeed(pid, text, r.domain, r.region, origin))
    return seeds, rejected
