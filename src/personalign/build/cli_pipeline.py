"""``personalign build synthesize | translate | run``: the model stages and the whole
pipeline from the command line.

Mounted by ``personalign.build.cli`` (``_STAGES``) as typer sub-apps whose callback is the
command (``personalign build translate DATASET ...`` needs no subcommand name).

Every command works in a work folder (``--work``; default ``<out>.work`` or the config's
``work_dir``) and resumes there: rerun the same command after a crash or a kill and only
the missing units are asked for. Secrets: the API key comes from ``OPENAI_API_KEY`` only;
log lines pass through a filter that masks it.

Exit codes: 0 done; 2 bad input (options, files, model unavailable); 3 the run failed
(server refused, retries spent): what finished is kept, rerun to resume.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from personalign.console import console, err, fail
from personalign.data.errors import DatasetError
from personalign.models.base import ModelUnavailable

log = logging.getLogger("personalign.build")

# Each app is a group whose callback is the command; click groups stop reading options at
# the first positional argument unless told otherwise (``DATASET --to hin`` must work).
_COMMAND = {"allow_interspersed_args": True}
synthesize_app = typer.Typer(help="Synthesize English persona–instruction pairs with an LLM.",
                             add_completion=False, subcommand_metavar="",
                             context_settings=_COMMAND)
translate_app = typer.Typer(help="Translate a dataset into Indian languages.",
                            add_completion=False, subcommand_metavar="",
                            context_settings=_COMMAND)
run_app = typer.Typer(help="Run the whole pipeline: personas -> synthesis -> dedup -> "
                           "translation -> gate -> validation sheets.",
                      add_completion=False, subcommand_metavar="", context_settings=_COMMAND)


def _setup_logging(verbose: bool, log_file: Path | None = None) -> None:
    """Log lines of personalign to stderr (INFO with -v, else WARNING) and, when given, all
    INFO lines to ``log_file``; every handler masks the API key."""
    from personalign.build.llm import SecretFilter

    logger = logging.getLogger("personalign")
    logger.setLevel(logging.INFO)
    for old in [h for h in logger.handlers if getattr(h, "_personalign_cli", False)]:
        logger.removeHandler(old)  # a second command in the same process (tests)
        old.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream = logging.StreamHandler()
    stream.setLevel(logging.INFO if verbose else logging.WARNING)
    handlers: list[logging.Handler] = [stream]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler._personalign_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(fmt)
        handler.addFilter(SecretFilter())
        logger.addHandler(handler)


def _split(value: str | None) -> list[str]:
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def _options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; values are read as JSON when they parse
    (numbers, true/false, null), else kept as strings."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--option {pair!r}: use KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _run_guarded(fn: Any) -> Any:
    """Call ``fn`` mapping failures to exit codes (2 bad input, 3 run failed)."""
    from personalign.build.llm import LLMError
    from personalign.build.translators import TranslationError

    try:
        return fn()
    except (DatasetError, ValueError, ModelUnavailable) as exc:
        fail(str(exc))
    except (LLMError, TranslationError) as exc:
        fail(f"{exc}\nWhat finished is saved in the work folder: rerun the same command to "
              "resume.", code=3)


EngineOpt = Annotated[str, typer.Option(help="local (in this process) | ray (Ray Data actors)")]
WorkOpt = Annotated[Path | None, typer.Option(
    "--work", help="Work folder with the checkpoints (default: <out>.work).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")]


@synthesize_app.callback(invoke_without_command=True)
def synthesize_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset file to write "
                                                          "(.jsonl or .parquet).")],
    seeds: Annotated[Path | None, typer.Option(
        help="Persona seeds: .txt (one per line) or .jsonl (persona, id, domain, region).")
    ] = None,
    domains: Annotated[str | None, typer.Option(
        help="Generate personas instead: comma-separated domains ...")] = None,
    regions: Annotated[str | None, typer.Option(
        help="... times comma-separated regions.")] = None,
    per_pair: Annotated[int, typer.Option(help="Personas per (domain, region).")] = 5,
    backend: Annotated[str, typer.Option(
        help="openai (any OpenAI-compatible server; PERSONALIGN_LLM_BASE_URL / "
             "OPENAI_BASE_URL, OPENAI_API_KEY) | local (GGUF via xllamacpp)")] = "openai",
    model: Annotated[str | None, typer.Option(
        help="Server model name (default gpt-4o-mini) or .gguf path (default: the "
             "packaged SmolLM2-135M).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Server URL (openai backend).")] = None,
    shots: Annotated[int, typer.Option(help="0 or 2 worked examples in the prompt.")] = 0,
    negatives: Annotated[bool, typer.Option(
        help="Also write a hard negative instruction per persona.")] = False,
    temperature: Annotated[float, typer.Option()] = 0.7,
    seed: Annotated[int, typer.Option(help="Base of the per-persona seeds.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Completion tokens per request.")] = 400,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 4,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute at most.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request (openai).")] = 120.0,
    max_retries: Annotated[int, typer.Option(help="Retries of 429/5xx/time-outs.")] = 5,
    threads: Annotated[int | None, typer.Option(help="CPU threads (local).")] = None,
    dedup: Annotated[str, typer.Option(help="report | drop-exact | drop-near")] = "drop-exact",
    threshold: Annotated[float, typer.Option(help="Near-duplicate Jaccard threshold.")] = 0.8,
    engine: EngineOpt = "local",
    work: WorkOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Make one English pair per persona; writes OUT, <out>.dedup.json and
    <out>.rejected.jsonl."""
    from personalign.build import pipeline
    from personalign.build.llm import ChatSpec
    from personalign.build.synthesis import SynthesisSettings

    if out.suffix.lower() not in (".jsonl", ".parquet"):
        fail(f"--out must name a .jsonl or .parquet file, got {out}")
    _setup_logging(verbose)
    chat_options: dict[str, Any] = {}
    if backend == "openai":
        chat_options = {"timeout_s": timeout, "max_retries": max_retries,
                        "requests_per_minute": rpm, "base_url": base_url}
    elif threads is not None:
        chat_options = {"n_threads": threads}

    def build() -> pipeline.PipelineConfig:
        cfg = pipeline.PipelineConfig(
            work_dir=work or out.with_name(out.name + ".work"), name=out.stem, engine=engine,
            llm=ChatSpec.make(backend, model, **chat_options),
            personas=pipeline.PersonaConfig(seeds=seeds, domains=_split(domains),
                                            regions=_split(regions), per_pair=per_pair,
                                            concurrency=concurrency),
            synthesize=SynthesisSettings(shots=shots, negatives=negatives,
                                         temperature=temperature, seed=seed,
                                         max_tokens=max_tokens, concurrency=concurrency),
            dedup=pipeline.DedupConfig(dedup, threshold),
            translate=pipeline.TranslateConfig(to=["hin_Deva"]),  # unused here
        )
        cfg.validate()
        return cfg

    cfg = _run_guarded(build)

    def run() -> tuple[list[Any], dict[str, Any]]:
        from personalign.data.loaders import save_dataset
        from personalign.data.schema import Dataset

        cache: dict[str, Any] = {}

        def chat() -> Any:
            if "chat" not in cache:
                cache["chat"] = pipeline.make_chat(cfg.llm)
            return cache["chat"]

        seeds_, persona_info = pipeline.persona_stage(cfg, chat)
        records, info = pipeline.synthesis_stage(cfg, seeds_, chat)
        kept, dedup_info = pipeline.dedup_stage(cfg, records)
        save_dataset(Dataset(cfg.name, kept, {"provenance": {"synthesis": info}}), out)
        _copy(cfg.work_dir / "dedup" / "report.json", out.with_name(out.stem + ".dedup.json"))
        _copy(cfg.work_dir / "synthesize" / "rejected.jsonl",
              out.with_name(out.stem + ".rejected.jsonl"))
        return kept, {"personas": persona_info, "synthesize": info, "dedup": dedup_info}

    kept, stages = _run_guarded(run)
    _print_stages(stages)
    console.print(f"wrote {len(kept)} pairs to {out}", highlight=False)


def _copy(src: Path, dst: Path) -> None:
    from personalign.results import atomic_write

    data = src.read_bytes()
    atomic_write(dst, lambda tmp: tmp.write_bytes(data))


def _print_stages(stages: dict[str, Any]) -> None:
    table = Table(title="pipeline stages")
    table.add_column("stage")
    table.add_column("result")
    for name, info in stages.items():
        keys = ("count", "records", "rejected", "missing", "dropped", "passed", "n",
                "units_this_run", "seconds")
        parts = [f"{k}={info[k]}" for k in keys if k in info and not isinstance(info[k], list)]
        if isinstance(info.get("rejected"), list):
            parts.append(f"rejected={len(info['rejected'])}")
        table.add_row(name, ", ".join(parts))
    console.print(table)


@translate_app.callback(invoke_without_command=True)
def translate_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset spec (name, folder or file).")],
    to: Annotated[str, typer.Option("--to", help="Comma-separated target languages "
                                                 "(codes or names), e.g. hin,tam.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset file to write "
                                                          "(.jsonl or .parquet).")],
    backend: Annotated[str, typer.Option(help="llm | nllb | m2m100 | ct2 | indictrans2")
                       ] = "llm",
    model: Annotated[str, typer.Option(
        help="Server model name (llm) or local model folder.")] = "gpt-4o-mini",
    source: Annotated[str, typer.Option("--from", help="Source language.")] = "eng_Latn",
    batch_size: Annotated[int, typer.Option(help="Records per translator call.")] = 16,
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="Backend option KEY=VALUE (repeatable), e.g. device=cuda, "
                         "num_beams=4, concurrency=8, requests_per_minute=500.")] = None,
    on_reject: Annotated[str, typer.Option(help="skip | raise (unusable LLM output)")
                         ] = "skip",
    skip_bad_rows: Annotated[bool, typer.Option(help="Skip malformed dataset rows.")] = False,
    engine: EngineOpt = "local",
    work: WorkOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Translate the SOURCE-language records of DATASET; OUT holds sources + translations."""
    from personalign.build import pipeline
    from personalign.data.loaders import load_dataset, save_dataset
    from personalign.data.schema import Dataset
    from personalign.languages import resolve

    if out.suffix.lower() not in (".jsonl", ".parquet"):
        fail(f"--out must name a .jsonl or .parquet file, got {out}")
    if on_reject not in ("skip", "raise"):
        fail("--on-reject must be skip or raise")
    if engine not in pipeline.ENGINES:
        fail(f"--engine must be one of {', '.join(pipeline.ENGINES)}")
    _setup_logging(verbose)

    def prepare() -> tuple[Dataset, list[str], str, pipeline.TranslatorSpec]:
        ds = load_dataset(dataset, skip_bad_rows=skip_bad_rows)
        src = resolve(source).code
        targets = [resolve(t).code for t in _split(to)]
        if not targets:
            raise ValueError("--to: name at least one target language")
        spec = pipeline.TranslatorSpec.make(backend, model, **_options(option))
        return ds, targets, src, spec

    ds, targets, src, spec = _run_guarded(prepare)
    sources = [r for r in ds.records if r.lang == src]
    if not sources:
        fail(f"{dataset}: no {src} records to translate")
    work_dir = work or out.with_name(out.name + ".work")

    def run() -> tuple[list[Any], dict[str, Any]]:
        return pipeline.translate_records(sources, spec, targets, work_dir, engine=engine,
                                          batch_size=batch_size, on_reject=on_reject)

    made, info = _run_guarded(run)
    by_pair: dict[str, list[Any]] = {}
    for r in made:
        by_pair.setdefault(r.pair_id, []).append(r)
    records = [x for s in sources for x in (s, *by_pair.get(s.pair_id, []))]
    meta = dict(ds.meta)
    meta["provenance"] = {"source": ds.meta.get("provenance"),
                          "translation": info["identity_hash"]}
    save_dataset(Dataset(ds.name, records, meta), out)
    _print_stages({"translate": info})
    console.print(f"wrote {len(records)} records ({len(made)} translations) to {out}",
                  highlight=False)
    if info["missing"]:
        err.print(f"{info['missing']} unit(s) were rejected and are missing; rerun to try "
                  "them again", highlight=False)


@run_app.callback(invoke_without_command=True)
def run_cmd(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="pipeline.toml with sections pipeline, llm, personas, synthesize, "
                               "dedup, translate, gate, validation, ray (see the example in "
                               "personalign.build.pipeline.load_config).")] = None,
    work: WorkOpt = None,
    engine: Annotated[str | None, typer.Option(help="local | ray (overrides the config)")
                      ] = None,
    seeds: Annotated[Path | None, typer.Option(help="Persona seed file (overrides).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Target languages (overrides).")
                  ] = None,
    model: Annotated[str | None, typer.Option(help="Synthesis model (overrides).")] = None,
    no_embedding: Annotated[bool, typer.Option(
        "--no-embedding", help="Gate without the similarity check (no model).")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run or resume the whole pipeline in the work folder; writes report.json there."""
    import tomllib

    from personalign.build import pipeline

    def build() -> pipeline.PipelineConfig:
        doc: dict[str, Any] = {}
        base = Path.cwd()
        if config is not None:
            try:
                doc = tomllib.loads(config.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ValueError(f"config file {config} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{config}: invalid TOML ({exc})") from None
            base = config.parent
        top = doc.setdefault("pipeline", {})
        if work is not None:
            top["work_dir"] = str(work.resolve())
        if engine is not None:
            top["engine"] = engine
        if seeds is not None:
            doc.setdefault("personas", {})["seeds"] = str(seeds.resolve())
        if to is not None:
            doc.setdefault("translate", {})["to"] = _split(to)
        if model is not None:
            doc.setdefault("llm", {})["model"] = model
        if no_embedding:
            doc.setdefault("gate", {})["embedding"] = False
        return pipeline.config_from_dict(doc, base, str(config or "options"))

    cfg = _run_guarded(build)
    _setup_logging(verbose, cfg.work_dir / "pipeline.log")
    log.info("pipeline %s: work folder %s, engine %s", cfg.name, cfg.work_dir, cfg.engine)
    report = _run_guarded(lambda: pipeline.run_pipeline(cfg))
    _print_stages(report["stages"])
    console.print(f"done in {report['seconds']:.1f} s; report: {cfg.work_dir / 'report.json'}",
                  highlight=False)
