import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from personalign.data.errors import DatasetError
from personalign.data.loaders import load_dataset, load_validation_csvs

from .conftest import REAL_VALIDATION

# Fixture sheets (tests/data/fixtures/validation): ids 1-3 in Hindi.csv and Tamil.csv.
# Ratings (expert_1 / expert_2):   Hindi            Tamil
#   id 1                            CA / CA          CA / CA
#   id 2                            CA / PA          CA / CA
#   id 3                            CA / CA          PA / DNA


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_sheets_give_english_once_plus_each_language(fixtures: Path) -> None:
    ds = load_dataset(fixtures / "validation")
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 3, "eng_Latn": 3}
    eng = ds.by_language("eng_Latn")
    assert [r.pair_id for r in eng] == ["1", "2", "3"]
    assert eng[0].persona == "A mathematics teacher at a government school in Delhi."
    assert eng[0].source == "nirdesha:2-shot" and eng[1].source == "nirdesha:0-shot"
    hin = ds.by_language("hin_Deva")
    assert hin[1].extra == {"expert_1": "Completely Agree", "expert_2": "Partially Agree"}
    assert hin[1].source == "nirdesha:0-shot:nllb-200-3.3B"
    assert ds.origin("tam_Taml", "3") == (str(fixtures / "validation" / "Tamil.csv"), 4)
    assert ds.meta["ignored_files"] == ["agreement_metrics_results.csv"]
    assert ds.meta["parallel_mismatches"] == []


def test_agreement_modes(fixtures: Path) -> None:
    per_language = load_dataset(fixtures / "validation", agreement="full-per-language")
    assert [r.pair_id for r in per_language.by_language("hin_Deva")] == ["1", "3"]
    assert [r.pair_id for r in per_language.by_language("tam_Taml")] == ["1", "2"]
    assert [r.pair_id for r in per_language.by_language("eng_Latn")] == ["1", "2", "3"]
    alias = load_dataset(fixtures / "validation", agreement="full")
    assert alias.records == per_language.records
    every = load_dataset(fixtures / "validation", agreement="full-every-language")
    assert every.pair_ids() == ["1"] and every.counts() == {
        "hin_Deva": 1, "tam_Taml": 1, "eng_Latn": 1}
    with pytest.raises(DatasetError, match="unknown agreement mode"):
        load_dataset(fixtures / "validation", agreement="some")
    with pytest.raises(DatasetError, match="human-validation sheets only"):
        load_dataset(fixtures / "hub", agreement="full")


def test_languages_option_reads_only_those_sheets(fixtures: Path) -> None:
    ds = load_dataset(fixtures / "validation", languages=["tam_Taml", "eng_Latn"])
    assert ds.counts() == {"tam_Taml": 3, "eng_Latn": 3}
    assert list(ds.meta["sheets"]) == ["tam_Taml"]
    english_only = load_dataset(fixtures / "validation", languages=["English"])
    assert english_only.counts() == {"eng_Latn": 3}


def test_invalid_json_cell_is_reported_by_file_and_line(
    copy_fixture: Callable[[str], Path],
) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Tamil.csv"
    rows = _rows(sheet)
    rows[2][2] = rows[2][2] + "}"  # id 2 sits on line 3; an extra brace like the Punjabi row
    _write_rows(sheet, rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    err = info.value
    assert (err.path, err.line, err.record_id) == (str(sheet), 3, "2")
    assert "column indian_context is not valid JSON" in str(err)

    ds = load_dataset(folder, skip_bad_rows=True)
    # the pair is dropped in Tamil only; English and Hindi keep it
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 2, "eng_Latn": 3}
    assert ds.meta["skipped"] == [{"file": str(sheet), "line": 3, "record_id": "2",
                                   "reason": err.message}]


def test_bad_english_cell_keeps_the_language_record(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Hindi.csv"
    rows = _rows(sheet)
    rows[1][1] = "not json"
    _write_rows(sheet, rows)
    ds = load_dataset(folder, skip_bad_rows=True)
    # English id 1 still comes from Tamil.csv
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 3, "eng_Latn": 3}
    assert ds.origin("eng_Latn", "1") == (str(folder / "Tamil.csv"), 2)
    assert ds.meta["skipped"][0]["line"] == 2


def test_english_must_be_parallel_across_sheets(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Tamil.csv"
    rows = _rows(sheet)
    eng = json.loads(rows[3][1])
    eng["indian_context_instruction"] = "Something else entirely."
    rows[3][1] = json.dumps(eng)
    _write_rows(sheet, rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    err = info.value
    assert (err.path, err.line, err.record_id) == (str(sheet), 4, "3")
    assert "English source (instruction) differs from Hindi.csv line 4" in str(err)
    # Two versions, one each: the tie goes to the first sheet (Hindi); Tamil loses id 3.
    ds = load_dataset(folder, skip_bad_rows=True)
    assert ds.counts() == {"hin_Deva": 3, "tam_Taml": 2, "eng_Latn": 3}
    assert ds.by_language("eng_Latn")[2].instruction.startswith("Suggest ways to sleep")
    assert len(ds.meta["parallel_mismatches"]) == 1


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        (3, "Mostly Agree", "expert_1 rating 'Mostly Agree' is not one of"),
        (0, "", "empty id"),
    ],
)
def test_bad_cells(copy_fixture: Callable[[str], Path], column: int, value: str,
                   needle: str) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Hindi.csv"
    rows = _rows(sheet)
    rows[3][column] = value
    _write_rows(sheet, rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert info.value.path == str(sheet) and info.value.line == 4
    assert needle in str(info.value)


def test_misaligned_id_in_the_json(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Hindi.csv"
    rows = _rows(sheet)
    obj = json.loads(rows[1][2])
    obj["id"] = 99
    rows[1][2] = json.dumps(obj, ensure_ascii=False)
    _write_rows(sheet, rows)
    with pytest.raises(DatasetError, match="carries id 99 but the row's id is '1'"):
        load_dataset(folder)


def test_short_row_and_missing_column(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    sheet = folder / "Hindi.csv"
    rows = _rows(sheet)
    rows[2] = rows[2][:4]
    _write_rows(sheet, rows)
    with pytest.raises(DatasetError) as info:
        load_dataset(folder)
    assert info.value.line == 3 and "row has 4 cells but the header has 5" in str(info.value)

    rows = [row[:4] for row in _rows(folder / "Tamil.csv")]
    _write_rows(folder / "Tamil.csv", rows)
    with pytest.raises(DatasetError) as info:
        load_validation_csvs(folder / "Tamil.csv")
    assert info.value.line == 1 and "lacks column(s) expert_2" in str(info.value)


def test_sheet_with_unknown_language_name(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    (folder / "Tamil.csv").rename(folder / "Tamill.csv")
    with pytest.raises(DatasetError, match="cannot tell the sheet's language"):
        load_dataset(folder)


def test_upstream_file_names_are_understood(copy_fixture: Callable[[str], Path]) -> None:
    folder = copy_fixture("validation")
    (folder / "Tamil.csv").rename(folder / "Nirdesha_Multilingual_Validation - Tamil.csv")
    assert "tam_Taml" in load_dataset(folder).counts()


needs_real = pytest.mark.skipif(not REAL_VALIDATION.is_dir(),
                                reason="shared validation sheets not present")


@needs_real
def test_real_sheets_load_with_skip() -> None:
    ds = load_dataset(REAL_VALIDATION, skip_bad_rows=True)
    counts = ds.counts()
    assert len(counts) == 13
    assert counts["eng_Latn"] == 150
    assert counts["pan_Guru"] == 149
    assert all(n == 150 for code, n in counts.items() if code != "pan_Guru")
    assert "4" not in {r.pair_id for r in ds.by_language("pan_Guru")}
    assert ds.meta["parallel_mismatches"] == []  # English identical in all 12 sheets
    [skipped] = ds.meta["skipped"]
    assert skipped["file"].endswith("Punjabi.csv") and skipped["line"] == 5


@needs_real
def test_real_sheets_without_skip_name_the_punjabi_row() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(REAL_VALIDATION)
    message = str(info.value)
    assert "Punjabi.csv" in message and "line 5" in message and "(record 4)" in message


@needs_real
def test_real_sheets_full_agreement_everywhere() -> None:
    ds = load_dataset(REAL_VALIDATION, skip_bad_rows=True, agreement="full-every-language")
    assert len(ds.pair_ids()) == 11
