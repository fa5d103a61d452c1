"""Tests for personalign.build.agreement: hand-computed tables, cross-checks against
scikit-learn and the krippendorff package, and the published PI-Indic-Align table."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from personalign.build.agreement import (
    BOOTSTRAPPED,
    LABELS,
    agreement_report,
    agreement_table,
    bootstrap_tables,
    cohen_kappa,
    compare_to_published,
    contingency,
    gwet_ac1,
    gwet_ac1_paper,
    kappa_ci_paper,
    kappa_se_paper,
    krippendorff_alpha,
    krippendorff_alpha_package,
    language_of_file,
    parse_rating,
    raw_agreement,
    read_ratings,
)
from personalign.data.errors import DatasetError

PUBLISHED = Path(__file__).resolve().parents[3] / "shared" / "data" / "pi-indic-align-validation"
needs_published = pytest.mark.skipif(
    not (PUBLISHED / "agreement_metrics_results.csv").is_file(),
    reason=f"published validation sheets not found at {PUBLISHED} (../shared of the repo)",
)

# Fixture A (rows rater 1, columns rater 2; order DNA, PA, CA), N = 10, symmetric margins.
A = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 2]])
# Fixture B: rater 1 never says "Do Not Agree" (the published pattern), N = 10.
B = np.array([[0, 0, 0], [1, 2, 0], [2, 1, 4]])


def items(table: np.ndarray) -> tuple[list[int], list[int]]:
    r1: list[int] = []
    r2: list[int] = []
    for i in range(3):
        for j in range(3):
            r1 += [i] * int(table[i, j])
            r2 += [j] * int(table[i, j])
    return r1, r2


def test_fixture_a_by_hand() -> None:
    # p_o = 7/10; r = c = (.3, .4, .3); p_e = .34 -> kappa = .36/.66 = 6/11
    assert raw_agreement(A) == pytest.approx(0.7)
    assert cohen_kappa(A) == pytest.approx(6 / 11)
    # linear: observed .2, expected .42 -> 11/21; quadratic: .15 / .30 -> .5
    assert cohen_kappa(A, "linear") == pytest.approx(11 / 21)
    assert cohen_kappa(A, "quadratic") == pytest.approx(0.5)
    # pi = (.3, .4, .3); p_e = .66 / 2 = .33 -> AC1 = .37 / .67
    assert gwet_ac1(A) == pytest.approx(37 / 67)
    # o = t + t^T, n_c = (6, 8, 6), n = 20: nominal 1 - 19 * 6 / 264 = 25/44
    assert krippendorff_alpha(A, "nominal") == pytest.approx(25 / 44)
    # ordinal d01 = d12 = 49, d02 = 196: 1 - 19 * 588 / 23520 = .525
    assert krippendorff_alpha(A, "ordinal") == pytest.approx(0.525)
    # se = sqrt(.7 * .3 / (10 * .66^2))
    se = math.sqrt(0.21 / (10 * 0.66**2))
    assert kappa_se_paper(A) == pytest.approx(se)
    assert kappa_ci_paper(A) == pytest.approx((6 / 11 - 1.96 * se, 6 / 11 + 1.96 * se))


def test_fixture_b_gwet_variants_differ() -> None:
    # r = (0, .3, .7), c = (.3, .3, .4), p_o = .6
    # Gwet 2008: pi = (.15, .3, .55), p_e = .585 / 2 -> (.6 - .2925) / .7075
    assert gwet_ac1(B) == pytest.approx(0.3075 / 0.7075)
    # published variant: pi = r, q = 3 used -> p_e = .42 / 2 = .21 -> .39 / .79
    assert gwet_ac1_paper(B) == pytest.approx(0.39 / 0.79)
    # p_e = .3 * .3 + .7 * .4 = .37 -> kappa = .23 / .63
    assert cohen_kappa(B) == pytest.approx(0.23 / 0.63)


def test_paper_ci_is_clipped() -> None:
    perfect = np.diag([3, 3, 4])
    assert kappa_ci_paper(perfect) == (1.0, 1.0)  # se = 0 at p_o = 1
    tiny = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])  # kappa = -1/2, large se
    lo, hi = kappa_ci_paper(tiny)
    assert lo == -1.0 and hi < 1.0


def test_one_category_only_is_undefined_not_an_error() -> None:
    t = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 5]])
    assert math.isnan(cohen_kappa(t))
    assert math.isnan(krippendorff_alpha(t))
    assert math.isnan(krippendorff_alpha_package(t))
    assert gwet_ac1(t) == pytest.approx(1.0)  # p_e = 0 under Gwet's chance model
    assert math.isnan(gwet_ac1_paper(t))
    report = agreement_report(*items(t), n_boot=20)
    assert report["raw_agreement"] == 1.0
    assert report["interpretation"] == "Undefined"
    assert math.isnan(report["cohen_kappa_boot_lower"])


def test_cross_check_sklearn_and_krippendorff_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(5, 60))
        r1 = rng.integers(0, 3, n)
        # correlated second rater: copy with noise
        r2 = np.where(rng.random(n) < 0.6, r1, rng.integers(0, 3, n))
        t, _ = contingency(r1.tolist(), r2.tolist())
        if len(set(r1) | set(r2)) < 2:
            continue
        for weights in (None, "linear", "quadratic"):
            expected = cohen_kappa_score(r1, r2, labels=[0, 1, 2], weights=weights)
            assert cohen_kappa(t, weights) == pytest.approx(expected, abs=1e-12), (trial, weights)
        for level in ("nominal", "ordinal"):
            assert krippendorff_alpha(t, level) == pytest.approx(
                krippendorff_alpha_package(t, level), abs=1e-12
            ), (trial, level)


def test_missing_ratings_are_left_out_like_krippendorff_does() -> None:
    import krippendorff

    r1 = ["Completely Agree", "Partially Agree", None, "Do Not Agree", "Completely Agree", 2]
    r2 = ["Completely Agree", "Completely Agree", "Partially Agree", "Do Not Agree", "", "1"]
    report = agreement_report(r1, r2, n_boot=50)
    assert report["n_items"] == 4 and report["n_incomplete"] == 2
    data = np.array([[2, 1, np.nan, 0, 2, 2], [2, 2, 1, 0, np.nan, 1]])
    levels = (("nominal", "krippendorff_alpha"), ("ordinal", "krippendorff_alpha_ordinal"))
    for level, key in levels:
        assert report[key] == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                               value_domain=[0, 1, 2])
        )


def test_parse_rating() -> None:
    assert parse_rating("Completely Agree") == 2
    assert parse_rating("  partially agree ") == 1
    assert parse_rating("DO NOT AGREE") == 0
    assert [parse_rating(v) for v in (2, 1, 0, "2", "1", "0", "2.0", np.int64(1))] == [
        2, 1, 0, 2, 1, 0, 2, 1]
    assert parse_rating("") is None and parse_rating(None) is None
    assert parse_rating(float("nan")) is None
    for bad in ("Agree", "3", 3, -1, True, "Strongly Agree"):
        with pytest.raises(ValueError, match="unknown rating"):
            parse_rating(bad)


def test_contingency_names_the_item() -> None:
    with pytest.raises(ValueError, match=r"item 1 \(0-based\), rater 2"):
        contingency(["Completely Agree", "Completely Agree"], ["Completely Agree", "Yes"])
    with pytest.raises(ValueError, match="different numbers"):
        contingency([2], [2, 2])


def test_bootstrap_matches_naive_loop_and_is_seeded() -> None:
    r1, r2 = items(A)
    tables = bootstrap_tables(A, n_boot=30, seed=3)
    assert tables.shape == (30, 3, 3)
    assert (tables.sum(axis=(1, 2)) == 10).all()
    # the same draws done item by item: the cells of A in row-major order, as items
    rng = np.random.default_rng(3)
    draws = rng.integers(0, 10, size=(30, 10))
    for b in range(30):
        t, _ = contingency([r1[k] for k in draws[b]], [r2[k] for k in draws[b]])
        assert (t == tables[b]).all()
    first = agreement_report(r1, r2, n_boot=200, seed=11)
    again = agreement_report(r1, r2, n_boot=200, seed=11)
    other = agreement_report(r1, r2, n_boot=200, seed=12)
    assert first == again
    assert first["cohen_kappa_boot_lower"] != other["cohen_kappa_boot_lower"]
    for key in BOOTSTRAPPED:
        lo, hi = first[f"{key}_boot_lower"], first[f"{key}_boot_upper"]
        assert lo <= first[key] + 1e-12 and first[key] <= hi + 1e-12, key


def test_bootstrap_of_a_constant_statistic_is_a_point() -> None:
    report = agreement_report(*items(np.diag([4, 3, 3])), n_boot=100)
    assert report["raw_agreement_boot_lower"] == pytest.approx(1.0, abs=1e-12)
    assert report["raw_agreement_boot_upper"] == pytest.approx(1.0, abs=1e-12)
    assert report["both_completely_agree_boot_lower"] < report["both_completely_agree_boot_upper"]


def test_report_fields() -> None:
    report = agreement_report(*items(A), n_boot=10)
    assert report["table"] == A.tolist()
    assert report["counts_rater_1"] == {LABELS[0]: 3, LABELS[1]: 4, LABELS[2]: 3}
    assert report["agreement_percentage"] == pytest.approx(70.0)
    assert report["both_completely_agree"] == pytest.approx(0.2)
    assert report["interpretation"] == "Moderate agreement"  # kappa = 0.545


def test_language_of_file() -> None:
    assert language_of_file(Path("hin_Deva.csv")) == "hin_Deva"
    assert language_of_file(Path("Odia.csv")) == "ory_Orya"
    assert language_of_file(Path("Nirdesha_Multilingual_Validation - Punjabi.csv")) == "pan_Guru"
    with pytest.raises(DatasetError, match=r"ratings\.csv: cannot tell the language"):
        language_of_file(Path("ratings.csv"))


def test_read_ratings_reports_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "Hindi.csv"
    path.write_text(
        "id,expert_1,expert_2\n1,Completely Agree,2\n2,Partially Agree,Maybe\n",
        encoding="utf-8",
    )
    with pytest.raises(
        DatasetError,
        match=r"Hindi\.csv, line 3 \(record 2\): data row 2, column 'expert_2': unknown rating",
    ):
        read_ratings(path)
    # a quoted cell spanning two lines moves the next row's start line
    path.write_text('id,expert_1,expert_2,note\n1,2,0,"two\nlines"\n1,2,1,x\n',
                    encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 4 \(record 1\): .*already in data row 1"):
        read_ratings(path)
    path.write_text("id,a,b\n1,2,0\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not a rating sheet"):
        read_ratings(path)


def test_agreement_table_on_a_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text("x,y\n1,2\n", encoding="utf-8")  # skipped
    (tmp_path / "Tamil.csv").write_text(
        "id,expert_1,expert_2\n1,Completely Agree,Completely Agree\n"
        "2,Partially Agree,Do Not Agree\n3,Completely Agree,Partially Agree\n"
        "4,Partially Agree,Partially Agree\n",
        encoding="utf-8",
    )
    (tmp_path / "hin_Deva.csv").write_text(
        "pair_id,rater_1,rater_2\na,2,2\nb,1,1\nc,0,2\nd,,1\n", encoding="utf-8-sig")
    rows = agreement_table(tmp_path, n_boot=10)
    assert [(r["language"], r["file"], r["n_items"]) for r in rows] == [
        ("hin_Deva", "hin_Deva.csv", 3), ("tam_Taml", "Tamil.csv", 4)]
    assert rows[0]["n_incomplete"] == 1
    assert rows[0]["raw_agreement"] == pytest.approx(2 / 3)
    assert rows[1]["raw_agreement"] == pytest.approx(0.5)
    (tmp_path / "Hindi.csv").write_text("id,expert_1,expert_2\n1,2,2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="both sheets for hin_Deva"):
        agreement_table(tmp_path)
    (tmp_path / "Hindi.csv").unlink()
    (tmp_path / "Tamil.csv").write_text("id,expert_1,expert_2\n1,2,\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"Tamil\.csv: no row is rated by both"):
        agreement_table(tmp_path)


# ------------------------------------------------------------- the published table


@needs_published
def test_reproduces_published_table_to_1e6() -> None:
    rows = agreement_table(PUBLISHED, n_boot=50)
    assert len(rows) == 12
    diffs = compare_to_published(rows, PUBLISHED / "agreement_metrics_results.csv")
    assert len(diffs) == 12 * 6
    worst = max(diffs, key=lambda d: d["abs_diff"])
    assert worst["abs_diff"] < 1e-6, worst
    with (PUBLISHED / "agreement_metrics_results.csv").open(encoding="utf-8") as fh:
        words = {r["file_name"].rsplit(" - ", 1)[-1][:-4]: r["interpretation"]
                 for r in csv.DictReader(fh)}
    assert {r["name"]: r["interpretation"] for r in rows} == words


@needs_published
def test_published_method_choices() -> None:
    rows = {r["language"]: r for r in agreement_table(PUBLISHED, n_boot=10)}
    # Own alpha equals the package on the real data, both levels.
    for row in rows.values():
        t = np.array(row["table"])
        assert krippendorff_alpha(t) == pytest.approx(row["krippendorff_alpha"], abs=1e-12)
        assert krippendorff_alpha(t, "ordinal") == pytest.approx(
            row["krippendorff_alpha_ordinal"], abs=1e-12)
    # The published AC1 is the rater-1-margin variant, not Gwet 2008 (differs by > 1e-3).
    assert max(abs(r["gwet_ac1"] - r["gwet_ac1_paper"]) for r in rows.values()) > 1e-3
    # The Punjabi row with invalid JSON is included: 133/150; without it 132/149 != 88.667%.
    pan = read_ratings(PUBLISHED / "Punjabi.csv")
    assert rows["pan_Guru"]["n_items"] == 150
    without = [r for r in pan if r[0] != "4"]
    assert agreement_report([r[1] for r in without], [r[2] for r in without],
                            n_boot=1)["agreement_percentage"] == pytest.approx(100 * 132 / 149)
    # Gujarati and Kannada: identical published rows because the rating columns are
    # identical in the data, row by row (the translated texts differ).
    assert read_ratings(PUBLISHED / "Gujarati.csv") == read_ratings(PUBLISHED / "Kannada.csv")
