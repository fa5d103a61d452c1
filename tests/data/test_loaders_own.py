import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personalign.data.errors import DatasetError
from personalign.data.loaders import load_dataset, save_dataset, sidecar_path
from personalign.data.schema import Dataset, Record


def _toy() -> Dataset:
    records = [
        Record("2", "hin_Deva", "एक शिक्षिका", "योजना बनाइए", negative="कुछ और",
               domain="school", source="team", extra={"note": "x", "score": 3}),
        Record("1", "eng_Latn", "A teacher", "Make a plan"),
        Record("1", "hin_Deva", "एक किसान", "सिंचाई समझाइए", extra={"nested": {"a": [1, 2]}}),
    ]
    meta = {"provenance": "written by hand", "license": "CC0", "origin": "test"}
    return Dataset("toy", records, meta)


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    ds = _toy()
    path = save_dataset(ds, tmp_path / f"toy{suffix}")
    back = load_dataset(path)
    assert back.records == ds.records  # same order, same fields
    assert [r.extra for r in back.records] == [r.extra for r in ds.records]
    assert back.name == "toy"
    assert back.meta["provenance"] == "written by hand"
    assert back.meta["license"] == "CC0"
    assert back.meta["origin"] == "test"
    assert back.meta["path"] == str(path)
    assert back.fingerprint() == ds.fingerprint()
    assert back.origin("hin_Deva", "1") == (str(path), 3)
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"toy{suffix}"] + (["toy.meta.json"] if suffix == ".jsonl" else []))


def test_parquet_metadata_lives_in_the_schema(tmp_path: Path) -> None:
    path = save_dataset(_toy(), tmp_path / "toy.parquet")
    raw = pq.read_schema(path).metadata[b"personalign"]
    assert json.loads(raw)["meta"]["license"] == "CC0"


def test_jsonl_sidecar(tmp_path: Path) -> None:
    path = save_dataset(_toy(), tmp_path / "toy.jsonl")
    assert sidecar_path(path) == tmp_path / "toy.meta.json"
    assert json.loads((tmp_path / "toy.meta.json").read_text())["name"] == "toy"
    # without the sidecar the data still loads; the name falls back to the file stem
    (tmp_path / "toy.meta.json").unlink()
    back = load_dataset(path)
    assert back.name == "toy" and len(back.records) == 3 and "license" not in back.meta


def test_save_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.parquet or \.jsonl"):
        save_dataset(_toy(), tmp_path / "toy.csv")


def test_save_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "toy.jsonl"
    save_dataset(_toy(), path)
    small = _toy().subset(languages=["eng_Latn"])
    save_dataset(small, path)
    assert len(load_dataset(path).records) == 1


GOOD = '{"pair_id": "1", "lang": "hin_Deva", "persona": "एक शिक्षिका", "instruction": "योजना"}'


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ('{"pair_id": "2", "lang": "hin_Deva", "persona": "x"', "not valid JSON"),
        ('{"pair_id": "2", "lang": "hin_Deva", "instruction": "योजना"}', "missing field 'persona'"),
        ('{"pair_id": "2", "lang": "hin_Deva", "persona": "  ", "instruction": "य"}', "empty"),
        ('{"pair_id": "2", "lang": "xx_Zzzz", "persona": "a", "instruction": "b"}',
         "unknown language"),
        ('{"pair_id": "2", "lang": "hin_Deva", "persona": "a", "instruction": "b", "foo": 1}',
         "unknown field(s) 'foo'"),
        ('{"lang": "hin_Deva", "persona": "a", "instruction": "b"}', "missing field 'pair_id'"),
        ('[1, 2]', "must be a JSON object"),
        (GOOD, "duplicate pair id '1' in hin_Deva"),
    ],
)
def test_bad_jsonl_rows_name_file_and_line(tmp_path: Path, bad_line: str, needle: str) -> None:
    path = _write(tmp_path / "d.jsonl", [GOOD, bad_line])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.path == str(path)
    assert info.value.line == 2
    assert needle in str(info.value)
    assert str(info.value).startswith(f"{path}, line 2")


def test_skip_bad_rows_records_what_was_skipped(tmp_path: Path) -> None:
    third = '{"pair_id": "3", "lang": "hin_Deva", "persona": "ए", "instruction": "ब"}'
    path = _write(tmp_path / "d.jsonl", [GOOD, "{broken", "", third])
    ds = load_dataset(path, skip_bad_rows=True)
    assert [r.pair_id for r in ds.records] == ["1", "3"]
    assert ds.origin("hin_Deva", "3") == (str(path), 4)  # blank line 3 still counts
    [skipped] = ds.meta["skipped"]
    assert skipped["file"] == str(path) and skipped["line"] == 2
    assert "not valid JSON" in skipped["reason"]


def test_integer_ids_and_language_aliases_are_normalised(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl",
                  ['{"pair_id": 7, "lang": "Hindi", "persona": "ए", "instruction": "ब"}'])
    [r] = load_dataset(path).records
    assert (r.pair_id, r.lang) == ("7", "hin_Deva")


def test_bad_parquet_extra_and_missing_column(tmp_path: Path) -> None:
    table = pa.table({"pair_id": ["1", "2"], "lang": ["hin_Deva"] * 2, "persona": ["ए", "ब"],
                      "instruction": ["क", "ख"], "extra": ["{}", "{oops"]})
    pq.write_table(table, tmp_path / "x.parquet")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path / "x.parquet")
    assert info.value.line == 2 and "column 'extra' is not valid JSON" in str(info.value)

    pq.write_table(table.drop_columns(["persona"]), tmp_path / "y.parquet")
    with pytest.raises(DatasetError, match="missing column"):
        load_dataset(tmp_path / "y.parquet")


def test_limit_and_languages(tmp_path: Path) -> None:
    lines = [json.dumps({"pair_id": str(i), "lang": lang, "persona": "ए" if lang != "eng_Latn"
                         else "a", "instruction": "ब" if lang != "eng_Latn" else "b"})
             for i in (10, 2, 1) for lang in ("hin_Deva", "eng_Latn")]
    path = _write(tmp_path / "d.jsonl", lines)
    ds = load_dataset(path, limit=2, languages=["hi"])
    # limit keeps the 2 smallest ids in numeric order ("1", "2", not "1", "10")
    assert sorted(r.pair_id for r in ds.records) == ["1", "2"]
    assert ds.languages() == ["hin_Deva"]
    with pytest.raises(DatasetError, match="unknown language"):
        load_dataset(path, languages=["klingon"])
