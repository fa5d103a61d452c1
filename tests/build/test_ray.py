"""The Ray engine: actor-pool sizing, and a pipeline run on a local Ray instance (2 CPUs)
whose records equal those of the in-process engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from personalign.build.pipeline import load_config, run_pipeline
from personalign.build.ray_engine import ActorPlan, plan_actors
from personalign.data.loaders import load_dataset
from tests.build.chat_server import API_KEY, FakeChatServer, pipeline_reply
from tests.build.test_pipeline import config_toml, texts


def test_plan_actors_leaves_cpu_for_reads() -> None:
    # 2 CPUs: 1 kept for Ray Data's read tasks, 1 for the pool.
    assert plan_actors({"CPU": 2.0}) == ActorPlan(1, 1.0, 0.0)
    assert plan_actors({"CPU": 2.0}, max_actors=2) == ActorPlan(2, 0.5, 0.0)
    assert plan_actors({"CPU": 2.0}, max_actors=9) == ActorPlan(4, 0.25, 0.0)
    assert plan_actors({"CPU": 16.0}) == ActorPlan(15, 1.0, 0.0)
    assert plan_actors({"CPU": 1.0}) == ActorPlan(1, 0.5, 0.0)
    # One replica per GPU; CPUs shared among them.
    assert plan_actors({"CPU": 16.0, "GPU": 4.0}, gpus_per_actor=1) == ActorPlan(4, 1.0, 1.0)
    assert plan_actors({"CPU": 3.0, "GPU": 4.0}, gpus_per_actor=1) == ActorPlan(4, 0.5, 1.0)
    assert plan_actors({"CPU": 8.0, "GPU": 2.0}, gpus_per_actor=0.5,
                       max_actors=3) == ActorPlan(3, 1.0, 0.5)
    with pytest.raises(ValueError, match="has 0 GPU"):
        plan_actors({"CPU": 8.0}, gpus_per_actor=1)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    mp = pytest.MonkeyPatch()
    # Workers inherit the driver's environment: they read the key from it, as in real use.
    mp.setenv("OPENAI_API_KEY", API_KEY)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    mp.undo()


def test_ray_engine_equals_in_process(tmp_path: Path, local_ray: None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    srv = FakeChatServer(["429", "ok", "500"], reply=pipeline_reply)
    try:
        (tmp_path / "ray").mkdir()
        (tmp_path / "local").mkdir()
        on_ray = load_config(config_toml(tmp_path / "ray", srv.url, tmp_path / "ray" / "work",
                                         engine="ray", n_validation=5))
        in_process = load_config(config_toml(tmp_path / "local", srv.url,
                                             tmp_path / "local" / "work", n_validation=5))
        ray_report = run_pipeline(on_ray)
        local_report = run_pipeline(in_process)
        # A second Ray run finds everything done in the shards and starts no actor.
        before = len(srv.requests)
        again = run_pipeline(on_ray)
        assert len(srv.requests) == before
    finally:
        srv.close()
    work = tmp_path / "ray" / "work"
    assert not (work / "synthesize" / "checkpoint.jsonl").exists()
    shards = sorted((work / "synthesize" / "shards").glob("*.jsonl"))
    assert len(shards) == 1  # one actor
    keys = [json.loads(x)["key"] for p in shards for x in p.read_text("utf-8").splitlines()[1:]]
    assert sorted(keys) == [f"s{i:02d}" for i in range(30)]
    assert list((work / "translate" / "shards").glob("*.jsonl"))
    ray_ds = load_dataset(work / "translate" / "dataset.jsonl")
    local_ds = load_dataset(tmp_path / "local" / "work" / "translate" / "dataset.jsonl")
    assert len(ray_ds.records) == 120
    assert sorted(map(texts, ray_ds.records)) == sorted(map(texts, local_ds.records))
    assert ray_report["stages"]["gate"]["passed"] == local_report["stages"]["gate"]["passed"]
    assert again["stages"]["translate"]["units_this_run"] == 0
    assert API_KEY not in "".join(p.read_text("utf-8") for p in work.rglob("*.json*"))
