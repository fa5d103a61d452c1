"""Tests for personalign.build.validation: stratified parallel sheets, import, report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from personalign.build.agreement import agreement_table
from personalign.build.validation import (
    SHEET_COLUMNS,
    allocate,
    export_sheets,
    import_sheets,
    select_pairs,
    validation_report,
)
from personalign.data.errors import DatasetError
from personalign.data.schema import Dataset, Record

PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "data" / "pi-indic-align-validation"

# 20 pairs: health x10, food x6, law x4; English, Hindi, Tamil for all of them.
DOMAINS = ["health"] * 10 + ["food"] * 6 + ["law"] * 4


def make_dataset(domains: list[str | None] | None = None, sources: list[str | None] | None = None,
                 langs: tuple[str, ...] = ("eng_Latn", "hin_Deva", "tam_Taml")) -> Dataset:
    domains = DOMAINS if domains is None else domains
    records = []
    for i, domain in enumerate(domains):
        for lang in langs:
            records.append(Record(
                pair_id=f"p{i:02d}", lang=lang, persona=f"persona {i} {lang}",
                instruction=f"instruction {i} {lang}", domain=domain,
                source=None if sources is None else sources[i],
            ))
    return Dataset("toy", records)


def read_sheet(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_allocate_by_hand() -> None:
    assert allocate({"a": 5, "b": 3, "c": 2}, 5) == {"a": 3, "b": 1, "c": 1}
    assert allocate({"health": 10, "food": 6, "law": 4}, 10) == {"health": 5, "food": 3, "law": 2}
    # 7 of (10, 6, 4): exact (3.5, 2.1, 1.4) -> floors (3, 2, 1) + 1 to health (.5 largest)
    assert allocate({"health": 10, "food": 6, "law": 4}, 7) == {"health": 4, "food": 2, "law": 1}
    assert allocate({"x": 3}, 3) == {"x": 3}
    with pytest.raises(ValueError, match="cannot draw 4 of 3"):
        allocate({"x": 3}, 4)


def test_allocate_invariants() -> None:
    sizes = {"a": 1, "b": 2, "c": 7, "d": 13, "e": 0}
    for n in range(sum(sizes.values()) + 1):
        got = allocate(sizes, n)
        assert sum(got.values()) == n
        assert all(0 <= got[s] <= sizes[s] for s in sizes)
        assert all(abs(got[s] - n * sizes[s] / 23) < 1 for s in sizes)


def test_export_writes_parallel_stratified_sheets(tmp_path: Path) -> None:
    ds = make_dataset()
    paths = export_sheets(ds, tmp_path, n=10, seed=42)
    assert [p.name for p in paths] == ["hin_Deva.csv", "tam_Taml.csv"]  # English: no sheet
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "hin_Deva.csv", "manifest.json", "tam_Taml.csv"]  # no temporary files left
    assert paths[0].read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheets
    hin, tam = read_sheet(paths[0]), read_sheet(paths[1])
    assert list(hin[0]) == list(SHEET_COLUMNS)
    assert [r["pair_id"] for r in hin] == [r["pair_id"] for r in tam]  # same ids, same order
    counts: dict[str, int] = {}
    for row in hin:
        counts[row["domain"]] = counts.get(row["domain"], 0) + 1
        i = int(row["pair_id"][1:])
        assert row["domain"] == DOMAINS[i]
        assert row["english_persona"] == f"persona {i} eng_Latn"
        assert row["english_instruction"] == f"instruction {i} eng_Latn"
        assert row["persona"] == f"persona {i} hin_Deva"
        assert row["instruction"] == f"instruction {i} hin_Deva"
        assert row["rater_1"] == row["rater_2"] == row["comment"] == ""
    assert counts == {"health": 5, "food": 3, "law": 2}
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fingerprint"] == ds.fingerprint()
    assert manifest["stratify_by"] == "domain"
    assert manifest["strata"]["food"] == {"population": 6, "sample": 3}
    assert manifest["pair_ids"] == [r["pair_id"] for r in hin]


def test_sample_is_seeded_and_nested() -> None:
    ds = make_dataset(domains=[None] * 20)
    a = select_pairs(ds, n=8, seed=1)
    assert a == select_pairs(ds, n=8, seed=1)
    assert set(a["pair_ids"]) != set(select_pairs(ds, n=8, seed=2)["pair_ids"])
    # one stratum: the sample of 5 is the first 5 by key, hence inside the sample of 8
    assert set(select_pairs(ds, n=5, seed=1)["pair_ids"]) < set(a["pair_ids"])
    assert a["stratify_by"] is None and a["strata"] == {"": {"population": 20, "sample": 8}}


def test_stratify_by_source_when_no_domain() -> None:
    sources = ["nirdesha:0-shot"] * 15 + ["nirdesha:2-shot"] * 5
    sample = select_pairs(make_dataset(domains=[None] * 20, sources=sources), n=8)
    assert sample["stratify_by"] == "source"
    assert sample["strata"] == {"nirdesha:0-shot": {"population": 15, "sample": 6},
                                "nirdesha:2-shot": {"population": 5, "sample": 2}}


def test_languages_and_eligibility(tmp_path: Path) -> None:
    ds = make_dataset()
    # drop p00 and p01 in Tamil: they are not eligible when Tamil is exported
    ds = Dataset("toy", [r for r in ds.records
                         if not (r.lang == "tam_Taml" and r.pair_id in ("p00", "p01"))])
    assert select_pairs(ds, n=5, languages=["Hindi"])["eligible"] == 20
    both = select_pairs(ds, n=18)
    assert both["eligible"] == 18 and not {"p00", "p01"} & set(both["pair_ids"])
    with pytest.raises(DatasetError, match="asked for n=19 pairs but only 18"):
        select_pairs(ds, n=19)
    with pytest.raises(DatasetError, match="no records in ben_Beng"):
        select_pairs(ds, n=5, languages=["bn"])
    with pytest.raises(ValueError, match="unknown language"):
        select_pairs(ds, n=5, languages=["Klingon"])
    paths = export_sheets(ds, tmp_path, n=4, languages=["eng", "tam"])
    assert [p.name for p in paths] == ["tam_Taml.csv", "eng_Latn.csv"]


def test_export_without_english_leaves_english_columns_empty(tmp_path: Path) -> None:
    ds = make_dataset(langs=("hin_Deva",))
    (path,) = export_sheets(ds, tmp_path, n=3)
    rows = read_sheet(path)
    assert len(rows) == 3 and all(r["english_persona"] == "" for r in rows)


def test_duplicate_record_is_an_error() -> None:
    ds = make_dataset()
    ds.records.append(Record("p03", "hin_Deva", "again", "again"))
    with pytest.raises(DatasetError, match=r"record p03.*two hin_Deva records"):
        select_pairs(ds, n=3)


def fill(path: Path, ratings: list[tuple[str, str]]) -> None:
    rows = read_sheet(path)
    for row, (a, b) in zip(rows, ratings, strict=False):
        row["rater_1"], row["rater_2"] = a, b
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=SHEET_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_round_trip_import_and_report(tmp_path: Path) -> None:
    hin, tam = export_sheets(make_dataset(), tmp_path, n=4, seed=0)
    fill(hin, [("Completely Agree", "Completely Agree"), ("Partially Agree", "2"),
               ("0", "Do Not Agree"), ("completely agree", "")])
    fill(tam, [("2", "2"), ("2", "2"), ("1", "1"), ("1", "0")])
    got = import_sheets([hin, tam])
    ids = [r["pair_id"] for r in read_sheet(hin)]
    assert got["hin_Deva"] == [
        (ids[0], "Completely Agree", "Completely Agree"),
        (ids[1], "Partially Agree", "Completely Agree"),
        (ids[2], "Do Not Agree", "Do Not Agree"),
        (ids[3], "Completely Agree", None),
    ]
    report = validation_report(tmp_path, n_boot=20)
    assert [r["language"] for r in report] == ["hin_Deva", "tam_Taml"]
    h, t = report
    assert (h["n_rows"], h["n_items"], h["n_incomplete"], h["parallel"]) == (4, 3, 1, True)
    assert h["raw_agreement"] == pytest.approx(2 / 3)
    # Tamil: table [[0,0,0],[1,1,0],[0,0,2]], p_o = 3/4, r = (0, .5, .5), c = (.25, .25, .5)
    # p_e = .125 + .25 = .375 -> kappa = .375 / .625 = .6
    assert t["cohen_kappa"] == pytest.approx(0.6)
    assert t["both_completely_agree"] == pytest.approx(0.5)


def test_import_errors_name_file_and_row(tmp_path: Path) -> None:
    hin, tam = export_sheets(make_dataset(), tmp_path, n=3, seed=0)
    fill(hin, [("2", "2"), ("Agree", "2"), ("1", "1")])
    pid = read_sheet(hin)[1]["pair_id"]
    with pytest.raises(DatasetError, match=(
            rf"hin_Deva\.csv, line 3 \(record {pid}\): data row 2, column 'rater_1': "
            r"unknown rating 'Agree'")):
        import_sheets([hin])
    with pytest.raises(DatasetError, match="both sheets for tam_Taml"):
        import_sheets([tam, tmp_path / "tam_Taml.csv"])
    other = tmp_path / "ratings.csv"
    other.write_text("pair_id,rater_1,rater_2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="cannot tell the language"):
        import_sheets([other])


def test_report_flags_sheets_that_are_not_parallel(tmp_path: Path) -> None:
    export_sheets(make_dataset(), tmp_path / "a", n=3, seed=0, languages=["hin"])
    export_sheets(make_dataset(), tmp_path / "b", n=3, seed=5, languages=["tam"])
    for sub, code in (("a", "hin_Deva"), ("b", "tam_Taml")):
        path = tmp_path / sub / f"{code}.csv"
        fill(path, [("2", "2"), ("1", "2"), ("2", "1")])
        path.rename(tmp_path / f"{code}.csv")
    report = validation_report(tmp_path, n_boot=5)
    assert [r["parallel"] for r in report] == [False, False]


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason=f"published sheets not found at {PUBLISHED}")
def test_validation_report_reads_the_published_format() -> None:
    ours = validation_report(PUBLISHED, n_boot=30)
    ref = agreement_table(PUBLISHED, n_boot=30)
    assert len(ours) == 12 and all(r["parallel"] for r in ours)
    for a, b in zip(ours, ref, strict=True):
        assert {k: a[k] for k in b} == b


# ------------------------------------------------------------------------------- CLI


def test_cli_export_and_agreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from personalign.build import cli_validate

    ds = make_dataset()
    monkeypatch.setattr(cli_validate, "_load", lambda spec, skip_bad_rows: ds)
    runner = CliRunner()
    sheets = tmp_path / "sheets"
    result = runner.invoke(cli_validate.validate_app, [
        "export", "toy", "--out", str(sheets), "--n", "10", "--languages", "tam,Hindi"])
    assert result.exit_code == 0, result.output
    assert "stratified by domain" in result.output
    assert sorted(p.name for p in sheets.glob("*.csv")) == ["hin_Deva.csv", "tam_Taml.csv"]
    result = runner.invoke(cli_validate.validate_app, [
        "export", "toy", "--out", str(sheets), "--n", "30"])
    assert result.exit_code == 2 and "asked for n=30 pairs but only 20" in result.output

    fill(sheets / "hin_Deva.csv", [("2", "2"), ("1", "1"), ("2", "1")])
    fill(sheets / "tam_Taml.csv", [("2", "2"), ("0", "0"), ("2", "2")])
    out = tmp_path / "agreement.json"
    result = runner.invoke(cli_validate.validate_app, [
        "agreement", str(sheets), "--out", str(out), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["language"] for r in doc["rows"]] == ["hin_Deva", "tam_Taml"]
    assert doc["rows"][1]["raw_agreement"] == 1.0
    assert doc["rows"][0]["n_incomplete"] == 7 and doc["published_comparison"] is None
    out_csv = tmp_path / "agreement.csv"
    result = runner.invoke(cli_validate.validate_app, [
        "agreement", str(sheets), "--out", str(out_csv), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert rows[0]["counts_rater_1.Completely Agree"] == "2"
    assert json.loads(rows[0]["table"]) == [[0, 0, 0], [0, 1, 0], [0, 1, 1]]

    fill(sheets / "tam_Taml.csv", [("2", "yes")])
    result = runner.invoke(cli_validate.validate_app, ["agreement", str(sheets)])
    assert result.exit_code == 2 and "unknown rating 'yes'" in result.output
    result = runner.invoke(cli_validate.validate_app, [
        "agreement", str(sheets), "--out", str(tmp_path / "x.txt")])
    assert result.exit_code == 2 and "use a .json or .csv" in result.output
