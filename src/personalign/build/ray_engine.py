"""The Ray engine: run synthesis or translation units on a pool of Ray Data actors.

Each actor holds one model replica (a chat client or a translator, built in the actor from
plain settings: no model object and no API key is pickled; a worker reads
``OPENAI_API_KEY`` from its own environment, which a local Ray instance inherits from the
driver). Units travel as JSON strings in a one-column dataset (``ray.data.from_items``),
so Arrow never has to guess a schema for nested records. ``map_batches`` hands each actor
batches of units; the actor runs them with the same functions as the in-process engine
(``synthesize``, ``translate_dataset``) and writes them to its own checkpoint shard
(``<stage dir>/shards/<uuid>.jsonl``, fsync per unit or batch), then returns the
keys it finished. The driver reads the shards afterwards. Because a unit's output does not
depend on which process runs it or in which order (per-unit seeds), results equal those
of the in-process engine.

Actor pool sizing (``plan_actors``): with GPUs, one actor per ``gpus_per_actor`` GPUs;
without, the CPUs left after ``reserve_cpus`` (default: 1, or half of a machine with fewer
than 2) are split among the actors, fractional when needed. A pool that takes every CPU
starves Ray Data's read tasks and hangs (seen with 2 actors x 1 CPU on 2 CPUs), hence the
reserve.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActorPlan:
    """How many actors and the resources of each."""

    concurrency: int
    num_cpus: float
    num_gpus: float


def plan_actors(
    resources: Mapping[str, float],
    *,
    gpus_per_actor: float = 0.0,
    max_actors: int | None = None,
    reserve_cpus: float | None = None,
) -> ActorPlan:
    """Size an actor pool from cluster resources (``ray.cluster_resources()``).

    GPU pools: n = floor(GPU / gpus_per_actor) actors (at most ``max_actors``), each with
    min(1, free CPUs / n) CPUs. CPU pools: free = CPU - reserve; n = max_actors or
    max(1, floor(free)), capped so that every actor gets at least 0.25 CPU; each actor gets
    free / n CPUs. Raises ValueError when the cluster lacks the GPUs asked for.
    """
    cpus = float(resources.get("CPU", 1.0))
    reserve = reserve_cpus if reserve_cpus is not None else min(1.0, cpus / 2)
    free = max(cpus - reserve, 0.25)
    if max_actors is not None and max_actors < 1:
        raise ValueError(f"max_actors must be >= 1, got {max_actors}")
    if gpus_per_actor > 0:
        gpus = float(resources.get("GPU", 0.0))
        n = math.floor(gpus / gpus_per_actor + 1e-9)
        if n < 1:
            raise ValueError(f"the Ray cluster has {gpus:g} GPU(s); {gpus_per_actor:g} per "
                             "actor were asked for")
        if max_actors is not None:
            n = min(n, max_actors)
        return ActorPlan(n, round(min(1.0, free / n), 3), gpus_per_actor)
    n = max_actors if max_actors is not None else max(1, math.floor(free))
    n = max(1, min(n, math.floor(free / 0.25)))
    return ActorPlan(n, round(free / n, 3), 0.0)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> dict[str, float]:
    """Connect to Ray (``address``) or start a local instance; returns the cluster's
    resources. An already initialised Ray is used as it is."""
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    return {k: float(v) for k, v in ray.cluster_resources().items()}


def map_units(
    payloads: Sequence[str],
    worker: type,
    worker_kwargs: dict[str, Any],
    *,
    plan: ActorPlan,
    batch_size: int,
) -> list[str]:
    """Run ``worker`` actors over JSON ``payloads``; returns the keys they finished."""
    import ray.data

    if not payloads:
        return []
    ds = ray.data.from_items([{"payload": p} for p in payloads])
    out = ds.map_batches(
        worker, fn_constructor_kwargs=worker_kwargs, batch_size=batch_size,
        concurrency=plan.concurrency, num_cpus=plan.num_cpus,
        num_gpus=plan.num_gpus if plan.num_gpus > 0 else None, batch_format="numpy",
    )
    keys: list[str] = []
    for batch in out.iter_batches(batch_format="numpy", batch_size=None):
        keys += [str(k) for k in batch["key"]]
    return keys


def _shard(folder: str) -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{uuid.uuid4().hex}.jsonl"


class SynthesisWorker:
    """A Ray Data actor making pairs with its own chat backend and checkpoint shard (kept
    open for the actor's life).

    ``expected_hash``: the identity hash of the stage's existing checkpoints (None when
    there are none); an actor whose settings give another hash refuses to start.
    """

    def __init__(self, chat_spec: Any, settings: Any, shard_dir: str,
                 expected_hash: str | None) -> None:
        from personalign.build.llm import make_chat
        from personalign.build.synthesis.checkpoint import UnitCheckpoint
        from personalign.build.synthesis.core import SYNTH_STAGE, synthesis_identity

        self.chat = make_chat(chat_spec)
        self.settings = settings
        identity = synthesis_identity(self.chat, settings)
        self.checkpoint = UnitCheckpoint(_shard(shard_dir), SYNTH_STAGE, identity)
        if expected_hash is not None and self.checkpoint.id_hash != expected_hash:
            raise ValueError(f"the synthesis settings of this run (identity "
                             f"{self.checkpoint.id_hash}) differ from those of the existing "
                             f"checkpoints ({expected_hash})")
        self.checkpoint.__enter__()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from personalign.build.synthesis.checkpoint import sha256_json
        from personalign.build.synthesis.core import run_units, seed_input, synthesize_one
        from personalign.build.synthesis.seeds import PersonaSeed

        seeds = [PersonaSeed.from_dict(json.loads(str(p))) for p in batch["payload"]]
        pending = [(s.id, sha256_json(seed_input(s)), s) for s in seeds]
        run_units(pending, lambda _key, s: synthesize_one(self.chat, s, self.settings),
                  self.checkpoint, concurrency=self.settings.concurrency)
        return {"key": np.array([s.id for s in seeds], dtype=object)}


class TranslationWorker:
    """A Ray Data actor translating with its own translator and checkpoint shard.

    A payload is ``{"record": Record.to_dict(), "targets": [codes]}``; records of a batch
    are grouped by their target list and passed to ``translate_dataset``, which writes a
    new shard per batch (``translate_dataset`` reads its whole checkpoint on every call: a
    shard per batch keeps that cost flat).
    """

    def __init__(self, translator_spec: Any, shard_dir: str, batch_size: int,
                 on_reject: str, expected_hash: str | None) -> None:
        from personalign.build.pipeline import make_translator
        from personalign.build.translators import identity_hash

        self.translator = make_translator(translator_spec)
        got = identity_hash(self.translator.identity())
        if expected_hash is not None and got != expected_hash:
            raise ValueError(f"the translator of this run (identity {got}) differs from the "
                             f"one of the existing checkpoints ({expected_hash})")
        self.batch_size = batch_size
        self.on_reject = on_reject
        self.shard_dir = shard_dir

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from personalign.build.translate import translate_dataset
        from personalign.data.schema import Record

        groups: dict[tuple[str, ...], list[Record]] = {}
        for p in batch["payload"]:
            item = json.loads(str(p))
            groups.setdefault(tuple(item["targets"]), []).append(Record(**item["record"]))
        keys: list[str] = []
        shard = _shard(self.shard_dir)
        for targets, records in groups.items():
            done = translate_dataset(records, self.translator, list(targets), shard,
                                     batch_size=self.batch_size,
                                     on_reject=self.on_reject)  # type: ignore[arg-type]
            keys += [f"{r.pair_id}|{r.lang}" for r in done]
        return {"key": np.array(keys, dtype=object)}
