from collections.abc import Callable
from pathlib import Path

import pytest

from personalign.data.errors import DatasetError
from personalign.data.loaders import load_dataset, save_dataset
from personalign.data.schema import Dataset, Record
from personalign.data.validate import (
    Issue,
    check_script,
    dominant_script,
    format_issues,
    validate_dataset,
    validate_path,
)

HI_P, HI_I = "दिल्ली की एक शिक्षिका", "गणित की योजना बनाइए"
UR_P, UR_I = "دہلی کی ایک استانی", "ریاضی کا منصوبہ بنائیے"


def _codes(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.severity, i.code) for i in issues]


def test_clean_dataset_has_no_issues() -> None:
    ds = Dataset("ok", [Record("1", "hin_Deva", HI_P, HI_I), Record("1", "urd_Arab", UR_P, UR_I),
                        Record("1", "eng_Latn", "A teacher in Delhi", "Plan a maths lesson")])
    assert validate_dataset(ds) == []


def test_script_shares_by_hand() -> None:
    # 10 Devanagari letters + 0 others -> share 1
    assert check_script("नमस्ते भारत", "hin_Deva") == (None, "")
    # Hindi text declared Urdu: 0% Perso-Arabic letters -> error naming Devanagari
    severity, why = check_script(HI_P, "urd_Arab")
    assert severity == "error" and "0%" in why and "most are in Devanagari" in why
    # English text declared Tamil (untranslated)
    severity, why = check_script("Plan a maths lesson", "tam_Taml")
    assert severity == "error" and "Latin" in why
    # Urdu with a Latin acronym: letters 'میں'(3) + 'UPI'(3) + 'سے'(2) -> 5/8 = 62% -> warning
    severity, why = check_script("میں UPI سے", "urd_Arab")
    assert severity == "warning" and "62%" in why
    # Urdu digits and full stop are not letters: 'ادا'(3) of 3 -> fine
    assert check_script("ادا ۱۲۳۔", "urd_Arab") == (None, "")
    # English with a quoted Hindi word: 'Diwali'(6)+'means'(5) Latin, 'दीवाली' 6 -> 11/17
    assert check_script("Diwali means दीवाली", "eng_Latn")[0] == "warning"
    assert check_script("12345", "hin_Deva") == ("warning", "has no letters")
    assert dominant_script("ਪੰਜਾਬ") == "Gurmukhi" and dominant_script("123") is None


def test_script_mismatch_is_an_error_with_location(tmp_path: Path) -> None:
    ds = Dataset("bad", [Record("1", "hin_Deva", HI_P, HI_I),
                         Record("2", "hin_Deva", HI_P + " २", UR_I)])
    path = save_dataset(ds, tmp_path / "bad.jsonl")
    loaded = load_dataset(path)
    with pytest.raises(DatasetError) as info:
        validate_dataset(loaded)
    err = info.value
    assert (err.path, err.line, err.record_id) == (str(path), 2, "2")
    assert "instruction only 0% of its letters are in Devanagari" in str(err)
    assert "most are in Perso-Arabic" in str(err)


def test_empty_fields_negative_and_duplicates() -> None:
    ds = Dataset("bad", [
        Record("1", "hin_Deva", " ", HI_I),
        Record("2", "hin_Deva", HI_P, HI_I, negative=HI_I),
        Record("3", "hin_Deva", HI_P, HI_I, domain=""),
        Record("3", "hin_Deva", HI_P, HI_I),
        Record("4", "xx_Yyyy", "a", "b"),
    ])
    issues = validate_dataset(ds, strict=False)
    assert _codes(issues) == [
        ("error", "empty-field"),
        ("error", "negative-is-gold"),
        ("error", "empty-field"),
        ("error", "duplicate"),
        ("error", "unknown-language"),
    ]
    # no file known: the message points into the records list instead
    assert issues[0].message == "persona is missing or empty (records[0], hin_Deva)"
    assert "also at (records[2], hin_Deva)" in issues[3].message
    with pytest.raises(DatasetError, match="persona is missing or empty"):
        validate_dataset(ds, strict=True)


def test_alignment_warnings_and_errors() -> None:
    ds = Dataset("x", [
        Record("1", "hin_Deva", HI_P, HI_I), Record("2", "hin_Deva", HI_P, HI_I),
        Record("1", "urd_Arab", UR_P, UR_I),
        Record("9", "eng_Latn", "A teacher", "Plan a lesson"),
    ])
    issues = validate_dataset(ds, strict=False)
    assert _codes(issues) == [
        ("warning", "missing-ids"),  # hin lacks 9
        ("warning", "missing-ids"),  # urd lacks 2, 9
        ("error", "unaligned-language"),  # eng shares nothing
        ("warning", "unaligned-pair"),  # hin-eng
        ("warning", "unaligned-pair"),  # urd-eng
    ]
    assert "urd_Arab lacks 2 of the 3 pair ids found in other languages (2, 9)" in (
        issues[1].message)
    with pytest.raises(DatasetError, match="eng_Latn shares no pair id"):
        validate_dataset(ds)
    # warnings alone never raise
    validate_dataset(ds.subset(languages=["hin_Deva", "urd_Arab"]))


def test_validate_path_reports_skipped_rows_and_record_issues(
    copy_fixture: Callable[[str], Path],
) -> None:
    folder = copy_fixture("hub")
    path = folder / "nirdesha_hin_Deva.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0][:-1]  # line 1 loses its closing brace
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds, issues = validate_path(folder)
    assert ds is not None
    assert _codes(issues) == [("error", "bad-row"), ("warning", "missing-ids")]
    assert issues[0].path == str(path) and issues[0].line == 1
    report = format_issues(issues)
    assert report.splitlines()[0] == "1 error(s), 1 warning(s)"
    assert f"error: {path}, line 1" in report


def test_validate_path_unreadable(tmp_path: Path) -> None:
    ds, issues = validate_path(tmp_path / "missing-folder")
    assert ds is None and _codes(issues) == [("error", "unreadable")]


