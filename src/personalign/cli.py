"""The ``personalign`` command line (typer + rich).

Exit codes: 0 success, 2 bad input (dataset, option, model spec), 3 a model cannot be had.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from personalign import __version__
from personalign.build.cli import build_app
from personalign.console import console, err, fail
from personalign.data.errors import DatasetError
from personalign.embeddings import EvalModel
from personalign.languages import parse_language_list
from personalign.models.base import ModelUnavailable
from personalign.tasks.base import parse_tasks

app = typer.Typer(
    help="Evaluate how well embedding models align personas with instructions in 12 Indian "
    "languages and English.",
    no_args_is_help=False,
    add_completion=False,
)
app.add_typer(build_app, name="build")


def _load_custom(spec: str, **kwargs: Any) -> EvalModel:
    """``py:package.module:attr`` -> attr(**kwargs) or attr itself (an encoder object)."""
    try:
        _, module_name, attr = spec.split(":", 2)
    except ValueError:
        raise ValueError(f"custom model {spec!r} must look like py:package.module:attr") from None
    obj = getattr(importlib.import_module(module_name), attr)
    # A class or factory is called; an encoder instance (it has .kind) is used as is.
    is_factory = isinstance(obj, type) or (callable(obj) and not hasattr(obj, "kind"))
    encoder = obj() if is_factory else obj
    prompt_fn = getattr(encoder, "prompt", None)
    return EvalModel(
        name=getattr(encoder, "name", attr), encoder=encoder,
        prompt=prompt_fn if callable(prompt_fn) else (lambda role, direction: ""),
        batch_size=kwargs.get("batch_size", 32),
    )


def resolve_models(
    names: list[str], *, protocol: str, device: str, dtype: str, batch_size: int,
    max_length: int | None, trust_remote_code: bool,
) -> list[EvalModel]:
    from personalign.models.load import load_model
    from personalign.models.registry import get_spec

    prompt_set = "paper" if protocol == "paper" else "card"
    models: list[EvalModel] = []
    for name in names:
        if name.startswith("py:"):
            models.append(_load_custom(name, batch_size=batch_size))
            continue
        encoder = load_model(name, device=device, dtype=dtype, max_length=max_length,
                             batch_size=batch_size, trust_remote_code=trust_remote_code)
        spec = get_spec(name)

        def prompt(role: str, direction: str, spec: Any = spec) -> str:
            return spec.prompt(prompt_set, role, direction) if spec is not None else ""

        models.append(EvalModel(name=spec.name if spec else name, encoder=encoder,
                                prompt=prompt, batch_size=batch_size,
                                description=spec.description if spec else ""))
    return models


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        console.print(f"personalign {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())


@app.command()
def run(
    dataset: Annotated[str, typer.Option(help="Dataset name, folder or file.")] = "pa-authored",
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model names, local folders, hub ids or py:module:attr. "
        "Default: the offline defaults.")] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated: t1,t2,t3,t4 or all.")] = "all",
    languages: Annotated[str | None, typer.Option(
        help="Comma-separated language codes or names (default: all present).")] = None,
    protocol: Annotated[str, typer.Option(help="corrected | paper")] = "corrected",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    dtype: Annotated[str, typer.Option(help="fp32 | fp16 | bf16")] = "fp32",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    max_length: Annotated[int | None, typer.Option(help="Max tokens per text.")] = None,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Use only the first N pair ids (sorted), for quick runs.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/latest"),
    cache_dir: Annotated[Path | None, typer.Option(
        help="Embedding store (default $PERSONALIGN_CACHE or ~/.cache/personalign).")] = None,
    skip_bad_rows: Annotated[bool, typer.Option(
        help="Skip malformed rows (reported) instead of stopping.")] = False,
    seed: Annotated[int, typer.Option()] = 42,
    retrieval_split: Annotated[str, typer.Option(
        help="Pairs used by retrieval tasks: all | test.")] = "all",
    trust_remote_code: Annotated[bool, typer.Option(
        help="Allow model repositories to run their own code.")] = False,
) -> None:
    """Evaluate models on the four tasks; print a leaderboard and write results to --out."""
    from personalign.data.loaders import load_dataset
    from personalign.data.validate import validate_dataset
    from personalign.models.registry import DEFAULT_MODELS
    from personalign.report.leaderboard import leaderboard_rows
    from personalign.report.write import write_run
    from personalign.runner import RunConfig, evaluate
    from personalign.store import EmbeddingStore

    if protocol not in ("corrected", "paper"):
        fail(f"--protocol must be 'corrected' or 'paper', not {protocol!r}")
    if retrieval_split not in ("all", "test"):
        fail(f"--retrieval-split must be 'all' or 'test', not {retrieval_split!r}")
    try:
        task_list = parse_tasks(tasks)
        langs = parse_language_list(languages)
    except ValueError as exc:
        fail(str(exc))
    try:
        ds = load_dataset(dataset, skip_bad_rows=skip_bad_rows, languages=langs, limit=limit)
        validate_dataset(ds, strict=True)
    except DatasetError as exc:
        fail(str(exc))
    for skipped in ds.meta.get("skipped", []):
        err.print(f"[yellow]skipped[/] {skipped.get('file')}, line {skipped.get('line')} "
                  f"(record {skipped.get('record_id')}): {skipped.get('reason')}",
                  highlight=False)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(
        DEFAULT_MODELS)
    try:
        eval_models = resolve_models(names, protocol=protocol, device=device, dtype=dtype,
                                     batch_size=batch_size, max_length=max_length,
                                     trust_remote_code=trust_remote_code)
    except ModelUnavailable as exc:
        fail(str(exc), code=3)
    except (ValueError, ImportError, AttributeError) as exc:
        fail(f"cannot load model: {exc}")
    counts = ds.counts()
    console.print(f"[bold]personalign {__version__}[/] dataset [cyan]{ds.name}[/] "
                  f"({len(ds.pair_ids())} pairs, {len(counts)} languages), "
                  f"models {', '.join(m.name for m in eval_models)}, tasks "
                  f"{','.join(task_list)}, protocol {protocol}")
    config = RunConfig(tasks=task_list, protocol=protocol, seed=seed,
                       retrieval_split=retrieval_split)
    store = EmbeddingStore(cache_dir)
    started = time.perf_counter()
    with _progress() as progress:
        output = evaluate(ds, eval_models, config, store, progress)
    elapsed = time.perf_counter() - started
    paths = write_run(out, ds, output, config=config, models=eval_models, device=device,
                      elapsed_s=elapsed)
    _print_leaderboard(leaderboard_rows(output.entries, output.analyses))
    console.print(f"store: {output.store_stats}  time: {elapsed:.1f}s")
    console.print("wrote " + ", ".join(str(p) for p in paths))


_SHOWN = {"rank": "#", "model": "model", "score": "score", "t1_r1": "T1 R@1", "t2_r1": "T2 R@1",
          "t3_mono_r1": "T3 R@1", "t3_cross_r1": "T3x R@1", "xl_drop": "XL drop",
          "t4_auroc": "T4 AUROC", "t4_ece": "T4 ECE", "t4_ece_cal": "ECE iso",
          "t4_zs_auroc": "ZS AUROC"}


class _LineProgress:
    """Progress for logs and pipes (no terminal): one line per 10% step and at the end."""

    def __init__(self) -> None:
        self.label, self.total, self.done, self.next_pct = "", 0, 0, 10
        self.t0 = time.perf_counter()

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.next_pct = label, total, 0, 10
        self.t0 = time.perf_counter()
        err.print(f"{label}: 0/{total}", highlight=False)

    def advance(self, n: int) -> None:
        self.done += n
        pct = 100 * self.done / max(1, self.total)
        if pct >= self.next_pct or self.done >= self.total:
            self.next_pct = (int(pct) // 10 + 1) * 10
            err.print(f"{self.label}: {self.done}/{self.total} ({pct:.0f}%, "
                      f"{time.perf_counter() - self.t0:.0f}s)", highlight=False)


@contextmanager
def _progress() -> Iterator[Any]:
    """Rich progress bars on a terminal, plain lines otherwise (logs, CI, nohup)."""
    from personalign.runner import Progress as RunProgress

    if not err.is_terminal:
        lines = _LineProgress()
        yield RunProgress(start=lines.start, advance=lines.advance,
                          log=lambda msg: err.print(msg, highlight=False))
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err) as bar:
        current: dict[str, Any] = {}

        def start(label: str, total: int) -> None:
            current["id"] = bar.add_task(label, total=total)

        def advance(n: int) -> None:
            if "id" in current:
                bar.advance(current["id"], n)

        yield RunProgress(start=start, advance=advance, log=lambda msg: bar.console.log(msg))


def _print_leaderboard(rows: list[dict[str, Any]]) -> None:
    from personalign.report.leaderboard import fmt

    table = Table(title="personalign leaderboard (macro averages; R@1 = Recall@1; "
                  "full table in leaderboard.md)")
    for col, title in _SHOWN.items():
        table.add_column(title, justify="left" if col == "model" else "right")
    for row in rows:
        table.add_row(*[fmt(row.get(c, "")) for c in _SHOWN])
    console.print(table)


@app.command("models")
def models_cmd(
    prompts: Annotated[bool, typer.Option(help="Show both prompt sets.")] = True,
    why: Annotated[bool, typer.Option(help="Say why each unavailable model is.")] = False,
) -> None:
    """List known models, whether each runs offline here, and their prompts."""
    from personalign.models.registry import DEFAULT_MODELS, availability, list_specs

    table = Table(title="known models (card = model-card prompts, used by --protocol "
                  "corrected; paper = the study's code)")
    for col in ("name", "hub id / source", "backend", "dim", "params", "license", "offline",
                "prompts (p2i query | document)"):
        table.add_column(col)
    reasons: list[str] = []
    for spec in list_specs():
        ok, reason = availability(spec)
        if not ok:
            reasons.append(f"{spec.name}: {reason}")
        shown = ""
        if prompts:
            shown = "\n".join(
                f"{pset}: {spec.prompt(pset, 'query', 'p2i')!r} | "
                f"{spec.prompt(pset, 'document', 'p2i')!r}" for pset in ("card", "paper"))
        name = spec.name + (" *" if spec.name in DEFAULT_MODELS else "")
        table.add_row(name, spec.hub_id or "", spec.backend, str(spec.dim or ""),
                      f"{spec.params / 1e6:.0f}M" if spec.params else "", spec.license or "",
                      "yes" if ok else "no", shown)
    console.print(table)
    console.print("* = default of `personalign run`")
    if reasons and why:
        for line in reasons:
            console.print(line, highlight=False)
    elif reasons:
        console.print(f"{len(reasons)} models need weights from the hub; --why says how.")


@app.command("datasets")
def datasets_cmd(
    describe: Annotated[str | None, typer.Argument(
        help="A dataset name, folder or file to describe (dataset card).")] = None,
    skip_bad_rows: Annotated[bool, typer.Option()] = False,
) -> None:
    """List known datasets, or print the card of one."""
    from personalign.data.card import dataset_card
    from personalign.data.loaders import load_dataset
    from personalign.data.registry import list_datasets

    if describe:
        try:
            ds = load_dataset(describe, skip_bad_rows=skip_bad_rows)
        except DatasetError as exc:
            fail(str(exc))
        console.print(dataset_card(ds), markup=False, highlight=False)
        return
    table = Table(title="datasets")
    for col in ("name", "languages", "size", "available", "description"):
        table.add_column(col)
    for info in list_datasets():
        table.add_row(info.name, str(info.languages), str(info.size), str(info.availability),
                      info.description)
    console.print(table)


@app.command()
def bench(
    dataset: Annotated[str, typer.Option()] = "pi-indic-align-validation",
    model: Annotated[str, typer.Option()] = "me5-small-nano",
    tasks: Annotated[str, typer.Option()] = "all",
    skip_bad_rows: Annotated[bool, typer.Option()] = True,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    device: Annotated[str, typer.Option()] = "auto",
    dtype: Annotated[str, typer.Option()] = "fp32",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    out: Annotated[Path, typer.Option()] = Path("runs/bench"),
) -> None:
    """Time encoding all distinct texts once vs the full run (fresh cache), for one model.

    encode_s = one pass of the encoder over every distinct (prompt, text) the tasks need,
    without the store; run_s = the whole evaluation (store, all tasks, statistics) starting
    from an empty cache. run_s / encode_s close to 1 means the evaluator adds little.
    """
    import tempfile

    from personalign.data.loaders import load_dataset
    from personalign.embeddings import DenseViews
    from personalign.results import write_json
    from personalign.runner import RunConfig, build_tables, evaluate, view_requests
    from personalign.store import EmbeddingStore
    from personalign.tasks.classification import build_design

    try:
        ds = load_dataset(dataset, skip_bad_rows=skip_bad_rows, limit=limit)
    except DatasetError as exc:
        fail(str(exc))
    try:
        (m,) = resolve_models([model], protocol="corrected", device=device, dtype=dtype,
                              batch_size=batch_size, max_length=None,
                              trust_remote_code=False)
    except ModelUnavailable as exc:
        fail(str(exc), code=3)
    config = RunConfig(tasks=parse_tasks(tasks))
    encode_s = 0.0
    n_texts = 0
    if not m.lexical:
        from personalign.data.splits import grouped_splits

        tables = build_tables(ds)
        design = build_design(tables, grouped_splits(ds.pair_ids())) if "t4" in \
            config.tasks else None
        by_prompt: dict[str, dict[str, None]] = {}
        views = DenseViews(m, EmbeddingStore(Path(tempfile.mkdtemp())))
        for view, texts in view_requests(tables, config.tasks, design):
            by_prompt.setdefault(views.prompt_of(view), {}).update(dict.fromkeys(texts))
        t0 = time.perf_counter()
        for prompt, bucket in by_prompt.items():
            texts = sorted(bucket, key=len)
            for i in range(0, len(texts), batch_size):
                m.encoder.encode(texts[i:i + batch_size], prompt=prompt)  # type: ignore[union-attr]
        encode_s = time.perf_counter() - t0
        n_texts = sum(len(b) for b in by_prompt.values())
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        output = evaluate(ds, [m], config, EmbeddingStore(Path(cache)))
        run_s = time.perf_counter() - t0
    doc = {"dataset": ds.name, "model": m.name, "tasks": config.tasks,
           "distinct_texts": n_texts, "encode_s": encode_s, "run_s": run_s,
           "ratio": run_s / encode_s if encode_s else None,
           "texts_per_s": n_texts / encode_s if encode_s else None,
           "timings": output.timings, "store": output.store_stats}
    write_json(out / "bench.json", doc)
    console.print(f"{m.name} on {ds.name}: {n_texts} distinct texts, encode {encode_s:.1f}s "
                  f"({doc['texts_per_s'] or 0:.1f}/s), full run {run_s:.1f}s, ratio "
                  f"{doc['ratio'] or float('nan'):.2f}; wrote {out / 'bench.json'}")
