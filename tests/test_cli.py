"""The command line: exit codes, messages, nothing half-written, a cached second run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personalign.cli import app
from personalign.data.loaders import save_dataset
from tests.keyword_encoder import toy_dataset

runner = CliRunner()


@pytest.fixture()
def toy_file(tmp_path: Path) -> Path:
    return save_dataset(toy_dataset(), tmp_path / "toy.jsonl")


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_run_writes_results_and_second_run_hits_the_cache(toy_file: Path,
                                                          tmp_path: Path) -> None:
    args = ["run", "--dataset", str(toy_file), "--models",
            "py:tests.keyword_encoder:KeywordEncoder,bm25", "--cache-dir",
            str(tmp_path / "cache")]
    code, out = _run(*args, "--out", str(tmp_path / "a"))
    assert code == 0, out
    doc = json.loads((tmp_path / "a" / "results.json").read_text())
    assert {e["model"] for e in doc["results"]} == {"keyword-mock", "bm25"}
    assert {e["task"] for e in doc["results"]} == {"t1", "t2", "t3", "t4"}
    assert doc["store"]["encoded"] > 0
    code, out = _run(*args, "--out", str(tmp_path / "b"))
    assert code == 0, out
    doc2 = json.loads((tmp_path / "b" / "results.json").read_text())
    assert doc2["store"]["encoded"] == 0 and doc2["store"]["cached"] > 0
    assert [e["metrics"] for e in doc2["results"]] == [e["metrics"] for e in doc["results"]]


def test_bad_jsonl_exits_2_and_writes_nothing(tmp_path: Path, toy_file: Path) -> None:
    lines = toy_file.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:-5]  # truncate line 3: invalid JSON
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out_dir = tmp_path / "out"
    code, out = _run("run", "--dataset", str(bad), "--models", "bm25", "--out", str(out_dir))
    assert code == 2
    assert "bad.jsonl" in out and "line 3" in out
    assert not out_dir.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "t9"], "unknown task"),
    (["--languages", "klingon"], "unknown language"),
    (["--protocol", "nonsense"], "--protocol"),
])
def test_bad_options_exit_2(toy_file: Path, tmp_path: Path, args: list[str],
                            message: str) -> None:
    code, out = _run("run", "--dataset", str(toy_file), "--models", "bm25", "--out",
                     str(tmp_path / "o"), *args)
    assert code == 2 and message in out


def test_unavailable_model_exits_3_with_one_line(toy_file: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out = _run("run", "--dataset", str(toy_file), "--models", "BAAI/bge-m3",
                     "--out", str(tmp_path / "o"))
    assert code == 3
    assert "bge-m3" in out
    assert not (tmp_path / "o").exists()


def test_models_and_datasets_list() -> None:
    code, out = _run("models")
    assert code == 0 and "me5-small-nano" in out and "BAAI/bge-m3" in out
    code, out = _run("datasets")
    assert code == 0 and "pa-authored" in out


def _mutate(toy_file: Path, tmp_path: Path, line_no: int, change: dict[str, object]) -> Path:
    lines = toy_file.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[line_no - 1])
    row.update(change)
    lines[line_no - 1] = json.dumps(row, ensure_ascii=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


@pytest.mark.parametrize(("line_no", "change", "expect"), [
    (4, {"persona": ""}, "persona"),  # empty field
    (4, {"pair_id": "p00"}, "p00"),  # duplicate (pair id, language)
    (4, {"persona": "this Hindi row is written in English letters only"}, "script"),
])
def test_bad_records_exit_2_naming_the_record(toy_file: Path, tmp_path: Path, line_no: int,
                                              change: dict[str, object], expect: str) -> None:
    bad = _mutate(toy_file, tmp_path, line_no, change)
    out_dir = tmp_path / "out"
    code, out = _run("run", "--dataset", str(bad), "--models", "bm25", "--out", str(out_dir))
    assert code == 2, out
    assert "bad.jsonl" in out and expect in out
    assert not out_dir.exists()


def test_bad_punjabi_row_is_reported_and_skipped_only_when_asked(tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / \
        "pi-indic-align-validation"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    code, out = _run("run", "--dataset", str(folder), "--models", "bm25", "--tasks", "t1",
                     "--out", str(tmp_path / "o"))
    assert code == 2 and "Punjabi.csv" in out and "line 5" in out
    assert not (tmp_path / "o").exists()
    code, out = _run("run", "--dataset", str(folder), "--models", "bm25", "--tasks", "t1",
                     "--languages", "pan,hin", "--skip-bad-rows", "--out", str(tmp_path / "o"))
    assert code == 0, out
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["dataset"]["counts"]["pan_Guru"] == 149
    assert doc["dataset"]["skipped"][0]["record_id"] == "4"
