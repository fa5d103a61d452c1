"""The dataset construction pipeline: personas -> synthesis -> dedup -> translation ->
quality gate -> validation sheets, resumable in a work folder.

Work folder layout (every final file is written atomically: temp file + ``os.replace``)::

    work/
      config.json                 the resolved settings of the last run (no secrets)
      personas/checkpoint.jsonl   generated personas, one line per (domain, region) unit
      personas/personas.jsonl     the persona seeds used (final)
      synthesize/checkpoint.jsonl pairs, one line per persona (in-process engine)
      synthesize/shards/*.jsonl   the same, one file per Ray actor (Ray engine)
      synthesize/english.jsonl    the English records (own format, final)
      synthesize/rejected.jsonl   personas whose replies were unusable, with the reason
      dedup/report.json           duplicate clusters; dedup/english.jsonl: records kept
      translate/checkpoint.jsonl  translations (``translate_dataset`` format), in-process
      translate/shards/*.jsonl    the same, one file per Ray batch
      translate/dataset.jsonl     English + translations (own format, final)
      gate/                       gate_report.json/.md, rejected.jsonl, passed.jsonl
      validation/                 <lang>.csv rating sheets + manifest.json
      report.json                 what every stage did (counts, rejections, timings)

Resumption: the model stages (personas, synthesis, translation) append every finished
unit to their checkpoints with fsync before counting it done; a restart reads all of a
stage's checkpoints (main file and shards), asks only for what is missing, and builds the
stage's final file from the checkpoints, so a run killed at any moment and restarted loses
no finished unit and duplicates none. Deterministic stages (dedup, gate, validation) are
recomputed from their inputs on every run (cheap; the gate's embeddings are cached by the
embedding store).

Engines: "local" runs every stage in this process; "ray" runs synthesis and translation on
Ray Data actors (``ray_engine``), one model replica per actor; the other stages need the
whole dataset (the gate calibrates thresholds per language) and run in the driver.
Results are the same with either engine.

Secrets: the API key is read from the environment by whoever builds a chat client; it is
never part of a config, a checkpoint, a record, a report or a log line.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from personalign.build.dedup import DEDUP_MODES, dedup_records, write_dedup_report
from personalign.build.llm import ChatBackend, ChatSpec, make_chat
from personalign.build.synthesis import (
    PERSONA_STAGE,
    SYNTH_STAGE,
    PersonaRequest,
    PersonaSeed,
    SynthesisSettings,
    generate_personas,
    read_persona_seeds,
    synthesize,
)
from personalign.build.synthesis.checkpoint import read_file, read_units
from personalign.build.synthesis.core import collect_pairs
from personalign.build.translate import read_checkpoint, source_sha256, translate_dataset
from personalign.build.translators import Translator, identity_hash
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset, Record
from personalign.languages import ENGLISH, resolve
from personalign.results import atomic_write, write_json

log = logging.getLogger(__name__)

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
TRANSLATE_BACKENDS: tuple[str, ...] = ("llm", "nllb", "m2m100", "ct2", "indictrans2")


# --------------------------------------------------------------------------------------
# translators from plain settings


@dataclass(frozen=True)
class TranslatorSpec:
    """Settings of a translator (no secrets): ``backend`` one of TRANSLATE_BACKENDS,
    ``model`` (server model name for "llm", model folder otherwise) and keyword
    ``options`` of the backend's class (e.g. ``batch_size``, ``device``, ``concurrency``)."""

    backend: str
    model: str
    options: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def make(backend: str, model: str, **options: Any) -> TranslatorSpec:
        if backend not in TRANSLATE_BACKENDS:
            raise ValueError(f"unknown translation backend {backend!r}; use one of "
                             f"{', '.join(TRANSLATE_BACKENDS)}")
        if "api_key" in options:
            raise ValueError("do not put the API key in settings; set OPENAI_API_KEY")
        _check_options(_translator_class(backend), options, f"translate backend {backend}")
        return TranslatorSpec(backend, model, tuple(sorted(options.items())))


def _translator_class(backend: str) -> type:
    from personalign.build import translators

    return {"llm": translators.LLMTranslator, "nllb": translators.HFSeq2SeqTranslator,
            "m2m100": translators.HFSeq2SeqTranslator, "ct2": translators.CT2Translator,
            "indictrans2": translators.IndicTrans2Translator}[backend]


def _check_options(cls: type, options: dict[str, Any], what: str) -> None:
    params = inspect.signature(cls).parameters
    allowed = [n for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n != "api_key"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for {what}; allowed: "
                         f"{', '.join(allowed)}")


def make_translator(spec: TranslatorSpec) -> Translator:
    """The translator ``spec`` describes (NLLB and M2M-100 pin the tokenizer family)."""
    cls = _translator_class(spec.backend)
    options = dict(spec.options)
    if spec.backend in ("nllb", "m2m100"):
        options.setdefault("family", spec.backend)
    translator: Translator = cls(spec.model, **options)
    return translator


def check_chat_options(spec: ChatSpec) -> None:
    """ValueError naming unknown options of a chat spec."""
    if spec.backend == "local":
        from personalign.build.local_llm import LocalChat

        _check_options(LocalChat, dict(spec.options), "the local chat backend")
    else:
        from personalign.build.llm import OpenAIChat

        _check_options(OpenAIChat, dict(spec.options), "the openai chat backend")


# --------------------------------------------------------------------------------------
# configuration


@dataclass
class PersonaConfig:
    """Where personas come from: a seed file, or the LLM from domains x regions."""

    seeds: Path | None = None
    domains: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    per_pair: int = 5  # personas per (domain, region)
    temperature: float = 0.9
    seed: int = 0
    max_tokens: int | None = None
    concurrency: int = 4


@dataclass
class DedupConfig:
    mode: str = "drop-exact"  # report | drop-exact | drop-near
    threshold: float = 0.8


@dataclass
class TranslateConfig:
    to: list[str] = field(default_factory=list)
    backend: str = "llm"
    model: str = "gpt-4o-mini"
    batch_size: int = 16  # records per translator call and checkpoint append
    on_reject: str = "skip"  # skip | raise
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateConfig:
    enabled: bool = True
    embedding: bool = True  # False: skip the similarity check (no model)
    far: float = 0.01
    checks: list[str] | None = None


@dataclass
class ValidationConfig:
    enabled: bool = True
    n: int = 150
    seed: int = 42


@dataclass
class RayConfig:
    address: str | None = None
    num_cpus: int | None = None
    max_actors: int | None = None
    gpus_per_actor: float = 0.0
    batch_size: int = 16  # units per actor call


@dataclass
class PipelineConfig:
    """Everything a pipeline run needs (``load_config`` reads it from TOML)."""

    work_dir: Path
    name: str = "synthetic"
    engine: str = "local"
    llm: ChatSpec = field(default_factory=ChatSpec)
    personas: PersonaConfig = field(default_factory=PersonaConfig)
    synthesize: SynthesisSettings = field(default_factory=SynthesisSettings)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def validate(self) -> None:
        """ValueError for settings that cannot work, before any request is sent."""
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        p = self.personas
        if p.seeds is None and not (p.domains and p.regions):
            raise ValueError("personas: give a seed file (seeds = ...) or both domains and "
                             "regions to generate personas from")
        if p.seeds is not None and (p.domains or p.regions):
            raise ValueError("personas: give either a seed file or domains/regions, not both")
        if self.dedup.mode not in DEDUP_MODES:
            raise ValueError(f"dedup.mode must be one of {', '.join(DEDUP_MODES)}")
        if not self.translate.to:
            raise ValueError("translate.to: name at least one target language")
        for code in self.translate.to:
            if resolve(code).code == ENGLISH:
                raise ValueError("translate.to: English is the source language")
        if self.translate.on_reject not in ("skip", "raise"):
            raise ValueError("translate.on_reject must be 'skip' or 'raise'")
        check_chat_options(self.llm)
        self.translator_spec()

    def targets(self) -> list[str]:
        return list(dict.fromkeys(resolve(t).code for t in self.translate.to))

    def translator_spec(self) -> TranslatorSpec:
        return TranslatorSpec.make(self.translate.backend, self.translate.model,
                                   **self.translate.options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (paths as strings; no secret is ever part of them)."""
        def clean(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if is_dataclass(value) and not isinstance(value, type):
                return {f.name: clean(getattr(value, f.name)) for f in fields(value)}
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        out = clean(self)
        out["llm"] = {"backend": self.llm.backend, "model": self.llm.model,
                      **dict(self.llm.options)}
        return out


_SECTIONS = {"personas": PersonaConfig, "synthesize": SynthesisSettings,
             "dedup": DedupConfig, "translate": TranslateConfig, "gate": GateConfig,
             "validation": ValidationConfig, "ray": RayConfig}
_TOP = ("work_dir", "name", "engine")


def _section(cls: type, table: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(names))}")
    try:
        return cls(**table)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def config_from_dict(doc: dict[str, Any], base: Path, where: str = "config") -> PipelineConfig:
    """A PipelineConfig from a parsed TOML document; relative paths are taken relative to
    ``base`` (the config file's folder)."""
    top = doc.get("pipeline", {})
    unknown = sorted(set(doc) - {"pipeline", "llm", *_SECTIONS})
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {', '.join(unknown)}; allowed: "
                         f"pipeline, llm, {', '.join(_SECTIONS)}")
    bad = sorted(set(top) - set(_TOP))
    if bad:
        raise ValueError(f"{where}: [pipeline] unknown key(s) {', '.join(bad)}; allowed: "
                         f"{', '.join(_TOP)}")
    work = Path(str(top.get("work_dir", "work"))).expanduser()
    llm = dict(doc.get("llm", {}))
    try:
        spec = ChatSpec.make(str(llm.pop("backend", "openai")), llm.pop("model", None), **llm)
    except ValueError as err:
        raise ValueError(f"{where}: [llm] {err}") from None
    sections = {name: _section(cls, dict(doc.get(name, {})), f"{where}: [{name}]")
                for name, cls in _SECTIONS.items()}
    personas: PersonaConfig = sections["personas"]
    if personas.seeds is not None:
        seeds = Path(str(personas.seeds)).expanduser()
        personas.seeds = seeds if seeds.is_absolute() else base / seeds
    cfg = PipelineConfig(work_dir=work if work.is_absolute() else base / work,
                         name=str(top.get("name", "synthetic")),
                         engine=str(top.get("engine", "local")), llm=spec, **sections)
    try:
        cfg.validate()
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return cfg


def load_config(path: str | Path) -> PipelineConfig:
    """Read a pipeline TOML file; errors name the file and the key. Example::

        [pipeline]
        work_dir = "work"            # relative paths: relative to this file
        name = "my-dataset"
        engine = "local"             # or "ray"

        [llm]                        # synthesis (and persona generation)
        backend = "openai"           # or "local" (model = path of a .gguf; none: SmolLM2)
        model = "gpt-4o-mini"
        requests_per_minute = 500    # any OpenAIChat / LocalChat option; never the key
        timeout_s = 60

        [personas]
        seeds = "personas.jsonl"     # or: domains = [...], regions = [...], per_pair = 5

        [synthesize]
        shots = 2                    # 0 or 2
        negatives = true
        temperature = 0.7
        seed = 0
        concurrency = 8

        [dedup]
        mode = "drop-exact"          # report | drop-exact | drop-near
        threshold = 0.8

        [translate]
        to = ["hin_Deva", "tam_Taml", "ben_Beng"]
        backend = "nllb"             # llm | nllb | m2m100 | ct2 | indictrans2
        model = "/models/nllb-200-3.3B"
        batch_size = 32
        [translate.options]          # keyword options of the backend's class
        device = "cuda"
        num_beams = 4

        [gate]
        embedding = true             # false: no similarity check (no model)

        [validation]
        n = 150
        seed = 42

        [ray]                        # engine = "ray" only
        gpus_per_actor = 1           # one model replica per GPU
        batch_size = 64
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML ({err})") from None
    return config_from_dict(doc, path.parent, str(path))


# --------------------------------------------------------------------------------------
# small helpers


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    atomic_write(path, lambda tmp: tmp.write_text(body, encoding="utf-8"))
    return path


def _shards(stage_dir: Path) -> list[Path]:
    return sorted((stage_dir / "shards").glob("*.jsonl"))


def _progress(stage: str) -> Callable[[int, int], None]:
    step: dict[str, int] = {"next": 0}

    def report(done: int, total: int) -> None:
        if done >= step["next"] or done == total:
            log.info("%s: %d/%d units done", stage, done, total)
            step["next"] = done + max(1, total // 10)

    return report


def _existing_hash(paths: Sequence[Path]) -> str | None:
    """The identity hash in the headers of existing unit checkpoints; ValueError when two
    files disagree."""
    found: dict[str, Path] = {}
    for path in paths:
        header, _ = read_file(path, repair=False)
        if header is not None:
            found.setdefault(str(header["identity_hash"]), path)
    if len(found) > 1:
        raise DatasetError(f"checkpoints written with different settings: "
                           f"{', '.join(f'{h} ({p})' for h, p in found.items())}; keep one "
                           "set of settings per work folder")
    return next(iter(found), None)


# --------------------------------------------------------------------------------------
# stages


def persona_stage(cfg: PipelineConfig, chat: Callable[[], ChatBackend]) -> tuple[
        list[PersonaSeed], dict[str, Any]]:
    """Read or generate the persona seeds; writes personas/personas.jsonl."""
    out_dir = cfg.work_dir / PERSONA_STAGE
    p = cfg.personas
    info: dict[str, Any]
    if p.seeds is not None:
        seeds = read_persona_seeds(p.seeds)
        info = {"source": str(p.seeds), "count": len(seeds)}
    else:
        requests = [PersonaRequest(d, r, p.per_pair) for d in p.domains for r in p.regions]
        seeds, rejected = generate_personas(
            requests, chat(), out_dir / "checkpoint.jsonl", temperature=p.temperature,
            seed=p.seed, max_tokens=p.max_tokens, concurrency=p.concurrency,
            progress=_progress("personas"))
        info = {"source": "generated", "requests": len(requests), "count": len(seeds),
                "rejected": [{"domain": r.domain, "region": r.region, "reason": why}
                             for r, why in rejected]}
    _write_jsonl(out_dir / "personas.jsonl", [s.to_dict() for s in seeds])
    return seeds, info


def synthesis_stage(cfg: PipelineConfig, seeds: Sequence[PersonaSeed],
                    chat: Callable[[], ChatBackend]) -> tuple[list[Record], dict[str, Any]]:
    """Pairs for every seed (in-process or on Ray); writes english.jsonl and rejected.jsonl."""
    stage_dir = cfg.work_dir / SYNTH_STAGE
    main = stage_dir / "checkpoint.jsonl"
    settings = cfg.synthesize
    start = time.perf_counter()
    if cfg.engine == "ray":
        from personalign.build import ray_engine

        paths = [main, *_shards(stage_dir)]
        expected = _existing_hash(paths)
        done = read_units(paths, SYNTH_STAGE, expected)
        pending = [s for s in seeds if s.id not in done
                   or (settings.retry_rejected and done[s.id].status == "rejected")]
        if pending:
            resources = ray_engine.ensure_ray(cfg.ray.address, cfg.ray.num_cpus)
            plan = ray_engine.plan_actors(resources, max_actors=cfg.ray.max_actors,
                                          gpus_per_actor=cfg.ray.gpus_per_actor)
            log.info("synthesize: %d units on Ray, %d actor(s) x %.2f CPU", len(pending),
                     plan.concurrency, plan.num_cpus)
            ray_engine.map_units(
                [json.dumps(s.to_dict(), ensure_ascii=False) for s in pending],
                ray_engine.SynthesisWorker,
                {"chat_spec": cfg.llm, "settings": settings,
                 "shard_dir": str(stage_dir / "shards"), "expected_hash": expected},
                plan=plan, batch_size=cfg.ray.batch_size)
        paths = [main, *_shards(stage_dir)]
        state = read_units(paths, SYNTH_STAGE, _existing_hash(paths))
        identity = _identity_from_headers(paths)
        records, rejected = collect_pairs(seeds, state, identity)
        new = len(pending)
    else:
        result = synthesize(seeds, chat(), main, settings,
                            other_checkpoints=_shards(stage_dir),
                            progress=_progress("synthesize"))
        records, rejected, identity = result.records, result.rejected, result.identity
        new = result.new_ok + result.new_rejected
    seconds = time.perf_counter() - start
    from personalign.data.loaders import save_dataset

    save_dataset(Dataset(cfg.name, records, {"provenance": {"synthesis": identity}}),
                 stage_dir / "english.jsonl")
    _write_jsonl(stage_dir / "rejected.jsonl",
                 [{"id": r.seed.id, "persona": r.seed.persona, "reason": r.reason}
                  for r in rejected])
    info = {"records": len(records), "rejected": len(rejected),
            "missing": len(seeds) - len(records) - len(rejected),
            "units_this_run": new, "seconds": round(seconds, 3),
            "units_per_s": round(new / seconds, 3) if seconds > 0 and new else None,
            "template_id": identity.get("template_id"),
            "template_sha256": identity.get("template_sha256"),
            "model": identity.get("model"), "shots": identity.get("shots")}
    return records, info


def _identity_from_headers(paths: Sequence[Path]) -> dict[str, Any]:
    for path in paths:
        header, _ = read_file(path, repair=False)
        if header is not None:
            identity: dict[str, Any] = header["identity"]
            return identity
    raise DatasetError("no synthesis checkpoint was written (no persona to synthesize?)")


def dedup_stage(cfg: PipelineConfig, records: list[Record]) -> tuple[list[Record],
                                                                       dict[str, Any]]:
    """Report (and drop, by mode) duplicate personas/instructions; writes dedup/."""
    from personalign.data.loaders import save_dataset

    out_dir = cfg.work_dir / "dedup"
    kept, report = dedup_records(records, threshold=cfg.dedup.threshold,
                                 mode=cfg.dedup.mode)  # type: ignore[arg-type]
    write_dedup_report(report, out_dir / "report.json")
    save_dataset(Dataset(cfg.name, kept, {"dedup": {"mode": report.mode,
                                                    "dropped": report.dropped}}),
                 out_dir / "english.jsonl")
    return kept, {"mode": report.mode, "threshold": report.threshold,
                  "counts": report.counts(), "dropped": len(report.dropped)}


def translation_state(stage_dir: Path) -> tuple[str | None, dict[tuple[str, str],
                                                                  tuple[Record, str, Path]]]:
    """(identity hash, finished units) over a translate stage's checkpoint and shards.

    Units map (pair id, language) to (record, src_sha256, file). A unit in two files (a
    retried Ray task) keeps the first; files of two translators are an error.
    """
    main = stage_dir / "checkpoint.jsonl"
    hashes: dict[str, Path] = {}
    units: dict[tuple[str, str], tuple[Record, str, Path]] = {}
    for path in [main, *_shards(stage_dir)]:
        if not path.exists():
            continue
        header, done = read_checkpoint(path)
        if header is None:
            continue
        hashes.setdefault(str(header["identity_hash"]), path)
        for key, (record, sha, _line) in done.items():
            if key in units:
                log.warning("translation %s is in both %s and %s (a retried task); keeping "
                            "the first", key, units[key][2], path)
                continue
            units[key] = (record, sha, path)
    if len(hashes) > 1:
        raise DatasetError("translation checkpoints of different translators: "
                           f"{', '.join(f'{h} ({p})' for h, p in hashes.items())}; keep one "
                           "translator per work folder")
    return next(iter(hashes), None), units


def translate_records(
    sources: Sequence[Record],
    spec: TranslatorSpec,
    targets: Sequence[str],
    stage_dir: Path,
    *,
    engine: str = "local",
    batch_size: int = 16,
    on_reject: str = "skip",
    ray: RayConfig | None = None,
    translator: Translator | None = None,
) -> tuple[list[Record], dict[str, Any]]:
    """Translate ``sources`` into ``targets`` resumably in ``stage_dir`` (checkpoint.jsonl,
    shards/), in-process or on Ray. ``translator`` replaces ``make_translator(spec)`` for
    the in-process engine (tests, or a model already loaded).

    Returns the translations (per source, in ``targets`` order; units rejected with
    on_reject="skip" are missing) and counts.
    """
    targets = list(dict.fromkeys(resolve(t).code for t in targets))
    start = time.perf_counter()
    old_hash, units = translation_state(stage_dir)
    for src in sources:
        for tgt in targets:
            unit = units.get((src.pair_id, tgt))
            if unit is not None and unit[1] != source_sha256(src):
                raise DatasetError(
                    "the source text of this record changed since it was translated; remove "
                    "its line from the checkpoint or use a new work folder",
                    path=unit[2], record_id=src.pair_id)
    pending: dict[tuple[str, ...], list[Record]] = {}
    for src in sources:
        todo = tuple(t for t in targets if (src.pair_id, t) not in units)
        if todo:
            pending.setdefault(todo, []).append(src)
    n_pending = sum(len(v) * len(k) for k, v in pending.items())
    if pending and engine == "ray":
        from personalign.build import ray_engine

        ray = ray or RayConfig()
        resources = ray_engine.ensure_ray(ray.address, ray.num_cpus)
        plan = ray_engine.plan_actors(resources, max_actors=ray.max_actors,
                                      gpus_per_actor=ray.gpus_per_actor)
        log.info("translate: %d units on Ray, %d actor(s) x %.2f CPU", n_pending,
                 plan.concurrency, plan.num_cpus)
        payloads = [json.dumps({"record": r.to_dict(), "targets": list(t)}, ensure_ascii=False)
                    for t, recs in pending.items() for r in recs]
        ray_engine.map_units(
            payloads, ray_engine.TranslationWorker,
            {"translator_spec": spec, "shard_dir": str(stage_dir / "shards"),
             "batch_size": batch_size, "on_reject": on_reject, "expected_hash": old_hash},
            plan=plan, batch_size=ray.batch_size)
    elif pending:
        tr = translator if translator is not None else make_translator(spec)
        new_hash = identity_hash(tr.identity())
        if old_hash is not None and new_hash != old_hash:
            raise DatasetError(f"the translator given now (identity {new_hash}) is not the "
                               f"one of the existing checkpoints ({old_hash}); pass the same "
                               "translator settings or use a new work folder")
        for todo, recs in pending.items():
            translate_dataset(recs, tr, list(todo), stage_dir / "checkpoint.jsonl",
                              batch_size=batch_size,
                              on_reject=on_reject)  # type: ignore[arg-type]
    final_hash, units = translation_state(stage_dir)
    out = [units[(s.pair_id, t)][0] for s in sources for t in targets
           if (s.pair_id, t) in units]
    seconds = time.perf_counter() - start
    info = {"targets": targets, "records": len(out),
            "missing": len(sources) * len(targets) - len(out), "units_this_run": n_pending,
            "seconds": round(seconds, 3), "identity_hash": final_hash}
    return out, info


def gate_stage(cfg: PipelineConfig, ds: Dataset, encoder: Any = None,
               store: Any = None) -> tuple[Dataset, dict[str, Any]]:
    """Run the quality gate; writes gate/ (report, rejected, passed). Returns the records
    that passed."""
    from personalign.build.gate import (
        CHECKS,
        run_gate,
        split_by_gate,
        write_rejected,
        write_report,
    )
    from personalign.data.loaders import save_dataset

    out_dir = cfg.work_dir / "gate"
    checks = list(cfg.gate.checks) if cfg.gate.checks is not None else list(CHECKS)
    if not cfg.gate.embedding:
        checks = [c for c in checks if c != "similarity"]
    report = run_gate(ds, encoder=encoder, store=store, checks=checks,
                      thresholds={"similarity_far": cfg.gate.far})
    write_report(report, out_dir)
    passed, rejected = split_by_gate(ds, report)
    write_rejected(out_dir / "rejected.jsonl", rejected)
    save_dataset(passed, out_dir / "passed.jsonl")
    return passed, {"checks": list(report.checks), "pass_rates": report.pass_rates(),
                    "rejected": len(rejected), "passed": len(passed.records)}


def validation_stage(cfg: PipelineConfig, ds: Dataset) -> dict[str, Any]:
    """Parallel rating sheets for the languages of ``ds``; n is lowered to the pairs
    present in every language when fewer."""
    from personalign.build.validation import export_sheets

    langs = [lang for lang in ds.languages() if lang != ENGLISH]
    by_lang = {lang: {r.pair_id for r in ds.records if r.lang == lang} for lang in langs}
    eligible = set.intersection(*by_lang.values()) if by_lang else set()
    n = min(cfg.validation.n, len(eligible))
    if n == 0:
        log.warning("validation: no pair is present in every language; no sheets written")
        return {"n": 0, "eligible": 0, "files": []}
    paths = export_sheets(ds, cfg.work_dir / "validation", n=n, seed=cfg.validation.seed,
                          languages=langs)
    return {"n": n, "asked": cfg.validation.n, "eligible": len(eligible),
            "files": [p.name for p in paths]}


# --------------------------------------------------------------------------------------
# the whole run


def run_pipeline(cfg: PipelineConfig, *, encoder: Any = None, store: Any = None,
                 translator: Translator | None = None) -> dict[str, Any]:
    """Run (or resume) every stage in ``cfg.work_dir``; returns the report also written to
    ``report.json``. ``encoder``/``store`` go to the gate's similarity check;
    ``translator`` replaces the configured one in the in-process engine."""
    cfg.validate()
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg.work_dir / "config.json", cfg.to_dict())
    started = time.perf_counter()
    cache: dict[str, ChatBackend] = {}

    def chat() -> ChatBackend:
        if "chat" not in cache:
            cache["chat"] = make_chat(cfg.llm)
        return cache["chat"]

    stages: dict[str, Any] = {}
    seeds, stages["personas"] = persona_stage(cfg, chat)
    log.info("personas: %d", len(seeds))
    english, stages["synthesize"] = synthesis_stage(cfg, seeds, chat)
    log.info("synthesize: %d pairs, %d rejected", len(english),
             stages["synthesize"]["rejected"])
    kept, stages["dedup"] = dedup_stage(cfg, english)
    translated, stages["translate"] = translate_records(
        kept, cfg.translator_spec(), cfg.targets(), cfg.work_dir / "translate",
        engine=cfg.engine, batch_size=cfg.translate.batch_size,
        on_reject=cfg.translate.on_reject, ray=cfg.ray, translator=translator)
    log.info("translate: %d records, %d missing", len(translated),
             stages["translate"]["missing"])
    from personalign.data.loaders import save_dataset

    by_pair: dict[str, list[Record]] = {}
    for r in translated:
        by_pair.setdefault(r.pair_id, []).append(r)
    records = [x for src in kept for x in (src, *by_pair.get(src.pair_id, []))]
    provenance = {"synthesis": {k: stages["synthesize"][k] for k in
                                ("model", "template_id", "template_sha256", "shots")},
                  "translation": stages["translate"]["identity_hash"]}
    full = Dataset(cfg.name, records, {"provenance": provenance})
    dataset_path = save_dataset(full, cfg.work_dir / "translate" / "dataset.jsonl")
    final = full
    if cfg.gate.enabled:
        final, stages["gate"] = gate_stage(cfg, full, encoder, store)
    if cfg.validation.enabled:
        stages["validation"] = validation_stage(cfg, final)
    report = {"name": cfg.name, "engine": cfg.engine, "work_dir": str(cfg.work_dir),
              "dataset": str(dataset_path), "stages": stages,
              "seconds": round(time.perf_counter() - started, 3), "config": cfg.to_dict()}
    write_json(cfg.work_dir / "report.json", report)
    return report
