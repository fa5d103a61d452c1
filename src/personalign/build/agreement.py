"""Inter-rater agreement for two raters on the three-level compatibility scale.

Scale (ordinal, code = position): 0 "Do Not Agree", 1 "Partially Agree",
2 "Completely Agree". Ratings may be given as these labels (case and surrounding space are
ignored) or as the codes 0/1/2 (int or string).

Every statistic here is a function of the q x q contingency table ``t`` (rows: rater 1,
columns: rater 2, q = 3, N = total count) of the items both raters rated; items with a
missing rating are left out of every statistic and counted in ``n_incomplete``.

Notation: p_ij = t_ij / N, r_i = row share, c_j = column share.

- raw agreement        p_o = sum_i p_ii
- Cohen's kappa        kappa = (p_o - p_e) / (1 - p_e), p_e = sum_i r_i c_i   (Cohen 1960)
- weighted kappa       kappa_w = 1 - sum_ij w_ij p_ij / sum_ij w_ij r_i c_j, disagreement
                       weights w_ij = |i - j| / (q - 1) (linear) or (i - j)^2 / (q - 1)^2
                       (quadratic)
- kappa SE, paper      se = sqrt(p_o (1 - p_o) / (N (1 - p_e)^2))  (Cohen 1960's simple
                       approximation, which treats p_e as known); the published CI is
                       kappa +- 1.96 se, clipped to [-1, 1]
- Krippendorff alpha   for two raters and no missing values the coincidence matrix is
                       o = t + t^T with n = 2N pairable values and n_c = sum_k o_ck;
                       alpha = 1 - (n - 1) sum_ck o_ck d_ck / sum_ck n_c n_k d_ck,
                       nominal d_ck = [c != k], ordinal
                       d_ck = (sum_{g=min(c,k)}^{max(c,k)} n_g - (n_c + n_k) / 2)^2
                       (Krippendorff 2011, "Computing Krippendorff's alpha-reliability")
- Gwet's AC1           AC1 = (p_o - p_e) / (1 - p_e), p_e = sum_k pi_k (1 - pi_k) / (q - 1),
                       pi_k = (r_k + c_k) / 2, q = 3 categories of the scale (Gwet 2008)
- Gwet's AC1, paper    the variant in the published table: pi_k = r_k (rater 1's shares
                       only) and q = number of categories used by either rater
- both complete        share of items that both raters rated "Completely Agree" (t_22 / N)

Bootstrap CIs resample items with replacement (``n_boot`` resamples of N items drawn from a
seeded numpy PCG64 generator), recompute every statistic on each resampled table, and take
the 2.5th and 97.5th percentiles (numpy's default linear interpolation) of the resamples
where the statistic is defined. A statistic is undefined (NaN) when its chance term makes
the denominator zero, e.g. kappa when both raters use one and the same category.

How the published table (repository aryashah2k/PI-Indic-Align, annotator_validation/
agreement_metrics_results.csv) was computed, as far as the numbers show: kappa, raw
agreement and nominal alpha are the standard statistics above; its ``gwet_ac1`` is the
"paper" variant; its kappa CI is the "paper" SE interval above (the reference script asks
statsmodels for a ``kappa_ci`` attribute its result does not have, and falls back to this
formula; its comment cites Fleiss, Cohen & Everitt 1969, but the formula is the simpler
one). The statistics are invariant to the reference's alphabetical label coding.
All 150 rows of every sheet are included, also the Punjabi row with invalid JSON text.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from personalign.data.errors import DatasetError
from personalign.languages import ALL_CODES, resolve

LABELS: tuple[str, ...] = ("Do Not Agree", "Partially Agree", "Completely Agree")
Q = len(LABELS)
COMPLETE = 2  # code of "Completely Agree"

_LABEL_CODES: dict[str, int] = {label.lower(): code for code, label in enumerate(LABELS)}
for _code in range(Q):
    _LABEL_CODES[str(_code)] = _code
    _LABEL_CODES[f"{_code}.0"] = _code  # a spreadsheet may save integer codes as floats

Weights = Literal["linear", "quadratic"]
AlphaLevel = Literal["nominal", "ordinal"]

# Statistics with a bootstrap CI, in report order.
BOOTSTRAPPED: tuple[str, ...] = (
    "raw_agreement",
    "cohen_kappa",
    "kappa_linear",
    "kappa_quadratic",
    "krippendorff_alpha",
    "krippendorff_alpha_ordinal",
    "gwet_ac1",
    "gwet_ac1_paper",
    "both_completely_agree",
)

# Published column -> report key; the published agreement_percentage is 100 * raw agreement.
PUBLISHED_COLUMNS: dict[str, str] = {
    "kappa_score": "cohen_kappa",
    "agreement_percentage": "agreement_percentage",
    "krippendorff_alpha": "krippendorff_alpha",
    "gwet_ac1": "gwet_ac1_paper",
    "kappa_ci_lower": "kappa_ci_lower",
    "kappa_ci_upper": "kappa_ci_upper",
}

RATER_COLUMNS: tuple[tuple[str, str], ...] = (("rater_1", "rater_2"), ("expert_1", "expert_2"))
ID_COLUMNS: tuple[str, ...] = ("pair_id", "id")


# ----------------------------------------------------------------------------- parsing


def parse_rating(value: object) -> int | None:
    """Return the code (0, 1, 2) of one rating; None for an empty cell (None, "", NaN).

    Raises ValueError for anything else, listing the accepted labels and codes.
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool):
        raise ValueError(f"unknown rating {value!r}")
    if isinstance(value, int | np.integer):
        if 0 <= int(value) < Q:
            return int(value)
        raise ValueError(_unknown(value))
    text = str(value).strip()
    if not text:
        return None
    code = _LABEL_CODES.get(text.lower())
    if code is None:
        raise ValueError(_unknown(value))
    return code


def _unknown(value: object) -> str:
    accepted = ", ".join(f"{label!r} ({code})" for code, label in enumerate(LABELS))
    return f"unknown rating {value!r}; use one of {accepted}, or leave the cell empty"


def contingency(r1: Sequence[object], r2: Sequence[object]) -> tuple[np.ndarray, int]:
    """Parse two parallel rating lists into the 3 x 3 table of complete items.

    Returns (table, n_incomplete): table[i, j] = #items rater 1 rated i and rater 2 rated j;
    n_incomplete = #items where at least one rating is missing.
    """
    if len(r1) != len(r2):
        raise ValueError(f"the raters rated different numbers of items: {len(r1)} vs {len(r2)}")
    table = np.zeros((Q, Q), dtype=np.int64)
    incomplete = 0
    for item, (a, b) in enumerate(zip(r1, r2, strict=True)):
        codes = []
        for rater, value in ((1, a), (2, b)):
            try:
                codes.append(parse_rating(value))
            except ValueError as exc:
                raise ValueError(f"item {item} (0-based), rater {rater}: {exc}") from None
        ca, cb = codes
        if ca is None or cb is None:
            incomplete += 1
        else:
            table[ca, cb] += 1
    return table, incomplete


# ------------------------------------------------------------- statistics of tables
# Each function takes a table of shape (..., q, q) and returns an array of shape (...):
# one value for one table, or one per resample for a stack of bootstrap tables.


def _shares(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    n = t.sum(axis=(-2, -1))
    p = t / n[..., None, None]
    return p, p.sum(axis=-1), p.sum(axis=-2), n


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 and x/0 -> NaN: the statistic is undefined for that table.
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    ok = np.abs(den) > 1e-15
    np.divide(num, den, out=out, where=ok)
    return out


def raw_agreement(t: np.ndarray) -> np.ndarray:
    """p_o = sum_i t_ii / N (a share in [0, 1])."""
    p, _, _, _ = _shares(t)
    return np.trace(p, axis1=-2, axis2=-1)


def cohen_kappa(t: np.ndarray, weights: Weights | None = None) -> np.ndarray:
    """Cohen's kappa; with ``weights`` the weighted kappa (disagreement weights).

    kappa_w = 1 - sum_ij w_ij p_ij / sum_ij w_ij r_i c_j, w_ij = [i != j] (unweighted, equal
    to (p_o - p_e) / (1 - p_e)), |i - j| / (q - 1) (linear) or (i - j)^2 / (q - 1)^2
    (quadratic), over the full 3-level scale.
    """
    p, r, c, _ = _shares(t)
    q = p.shape[-1]
    i, j = np.indices((q, q))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights == "linear":
        w = np.abs(i - j) / (q - 1)
    elif weights == "quadratic":
        w = (i - j) ** 2 / (q - 1) ** 2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")
    observed = (w * p).sum(axis=(-2, -1))
    expected = (w * (r[..., :, None] * c[..., None, :])).sum(axis=(-2, -1))
    return 1.0 - _ratio(observed, expected)


def kappa_se_paper(t: np.ndarray) -> np.ndarray:
    """se = sqrt(p_o (1 - p_o) / (N (1 - p_e)^2)): Cohen's (1960) simple approximation, the
    one behind the published kappa CI. It ignores the sampling error of p_e, so it is not
    the Fleiss-Cohen-Everitt (1969) asymptotic SE; prefer the bootstrap CI."""
    p, r, c, n = _shares(t)
    po = np.trace(p, axis1=-2, axis2=-1)
    pe = (r * c).sum(axis=-1)
    return np.sqrt(_ratio(po * (1.0 - po), n * (1.0 - pe) ** 2))


def kappa_ci_paper(t: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """(max(-1, kappa - z se), min(1, kappa + z se)) with ``kappa_se_paper``."""
    kappa = float(cohen_kappa(t))
    se = float(kappa_se_paper(t))
    return max(-1.0, kappa - z * se), min(1.0, kappa + z * se)


def krippendorff_alpha(t: np.ndarray, level: AlphaLevel = "nominal") -> np.ndarray:
    """Krippendorff's alpha from the table of two raters without missing values.

    o = t + t^T, n_c = sum_k o_ck, n = 2N; alpha = 1 - (n - 1) sum o d / sum n_c n_k d with
    nominal d_ck = [c != k] or ordinal d_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2.
    """
    t = np.asarray(t, dtype=np.float64)
    o = t + np.swapaxes(t, -1, -2)
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    q = o.shape[-1]
    if level == "nominal":
        d = np.broadcast_to((np.arange(q)[:, None] != np.arange(q)[None, :]).astype(float),
                            o.shape)
    elif level == "ordinal":
        cum = np.cumsum(nc, axis=-1)
        lo = np.minimum(np.arange(q)[:, None], np.arange(q)[None, :])
        hi = np.maximum(np.arange(q)[:, None], np.arange(q)[None, :])
        # sum_{g=lo..hi} n_g = cum[hi] - cum[lo] + n_lo
        between = cum[..., hi] - cum[..., lo] + nc[..., lo]
        d = (between - (nc[..., :, None] + nc[..., None, :]) / 2.0) ** 2
    else:
        raise ValueError(f"level must be 'nominal' or 'ordinal', not {level!r}")
    observed = (o * d).sum(axis=(-2, -1))
    expected = (nc[..., :, None] * nc[..., None, :] * d).sum(axis=(-2, -1))
    return 1.0 - (n - 1.0) * _ratio(observed, expected)


def gwet_ac1(t: np.ndarray) -> np.ndarray:
    """Gwet's (2008) AC1: p_e = sum_k pi_k (1 - pi_k) / (q - 1), pi_k = (r_k + c_k) / 2,
    q = 3 (the scale's categories)."""
    p, r, c, _ = _shares(t)
    po = np.trace(p, axis1=-2, axis2=-1)
    pi = (r + c) / 2.0
    pe = (pi * (1.0 - pi)).sum(axis=-1) / (p.shape[-1] - 1)
    return _ratio(po - pe, 1.0 - pe)


def gwet_ac1_paper(t: np.ndarray) -> np.ndarray:
    """AC1 as in the published table: pi_k = r_k (rater 1's category shares only) and
    q = #categories used by either rater. It departs from Gwet (2008), who averages both
    raters' shares and uses the scale's q; it is kept only to reproduce the published
    numbers. NaN when fewer than two categories are used."""
    p, r, c, _ = _shares(t)
    po = np.trace(p, axis1=-2, axis2=-1)
    used = ((r + c) > 0).sum(axis=-1)
    pe = _ratio((r * (1.0 - r)).sum(axis=-1), used - 1.0)
    return _ratio(po - pe, 1.0 - pe)


def both_completely_agree(t: np.ndarray) -> np.ndarray:
    """Share of items both raters rated "Completely Agree": t_22 / N."""
    p, _, _, _ = _shares(t)
    return p[..., COMPLETE, COMPLETE]


def _all_statistics(t: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "raw_agreement": raw_agreement(t),
        "cohen_kappa": cohen_kappa(t),
        "kappa_linear": cohen_kappa(t, "linear"),
        "kappa_quadratic": cohen_kappa(t, "quadratic"),
        "krippendorff_alpha": krippendorff_alpha(t, "nominal"),
        "krippendorff_alpha_ordinal": krippendorff_alpha(t, "ordinal"),
        "gwet_ac1": gwet_ac1(t),
        "gwet_ac1_paper": gwet_ac1_paper(t),
        "both_completely_agree": both_completely_agree(t),
    }


def krippendorff_alpha_package(t: np.ndarray, level: AlphaLevel = "nominal") -> float:
    """Alpha from the ``krippendorff`` package (reliability data rebuilt from the table),
    the reference that ``krippendorff_alpha`` is checked against."""
    import krippendorff  # the optional "build" extra

    t = np.asarray(t, dtype=np.int64)
    if np.count_nonzero((t + t.T).sum(axis=1)) < 2:
        return math.nan  # one value only: alpha is undefined (the package raises)
    rows, cols = np.nonzero(t)
    counts = t[rows, cols]
    data = np.array([np.repeat(rows, counts), np.repeat(cols, counts)], dtype=np.float64)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                     value_domain=list(range(Q))))


def interpret_kappa(kappa: float) -> str:
    """Landis & Koch (1977) bands, as worded in the published table."""
    if math.isnan(kappa):
        return "Undefined"
    if kappa < 0:
        return "Poor agreement (less than chance)"
    for upper, words in ((0.2, "Slight"), (0.4, "Fair"), (0.6, "Moderate"), (0.8, "Substantial")):
        if kappa < upper:
            return f"{words} agreement"
    return "Almost perfect agreement"


# ------------------------------------------------------------------------------ report


def bootstrap_tables(t: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` resampled tables, shape (n_boot, q, q): items (cells of ``t``, one per
    item) drawn N times with replacement from numpy's default_rng(seed)."""
    t = np.asarray(t, dtype=np.int64)
    q = t.shape[0]
    cells = np.repeat(np.arange(q * q), t.ravel())  # one flat cell index per item
    rng = np.random.default_rng(seed)
    draws = cells[rng.integers(0, cells.size, size=(n_boot, cells.size))]
    flat = draws + (np.arange(n_boot) * q * q)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * q * q).reshape(n_boot, q, q)


def agreement_report(
    r1: Sequence[object],
    r2: Sequence[object],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """All agreement statistics for two parallel rating lists, with bootstrap CIs.

    Keys: n_items (rated by both), n_incomplete, table (rows rater 1, columns rater 2, order
    of ``LABELS``), counts_rater_1/2, raw_agreement (share), agreement_percentage (100 x),
    cohen_kappa, kappa_linear, kappa_quadratic, kappa_se / kappa_ci_lower / kappa_ci_upper
    (the published method: Cohen 1960 SE, +-1.96, clipped), interpretation (Landis & Koch),
    krippendorff_alpha (nominal) and krippendorff_alpha_ordinal (``krippendorff`` package),
    gwet_ac1 (Gwet 2008), gwet_ac1_paper (published variant), both_completely_agree, and for
    every key in BOOTSTRAPPED ``<key>_boot_lower`` / ``<key>_boot_upper`` (percentile CI at
    ``level``), n_boot, seed.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, not {n_boot}")
    t, incomplete = contingency(r1, r2)
    n = int(t.sum())
    if n == 0:
        raise ValueError("no item was rated by both raters; nothing to compute")
    point = {k: float(v) for k, v in _all_statistics(t).items()}
    # Point alphas from the krippendorff package; own implementation checked against it.
    point["krippendorff_alpha"] = krippendorff_alpha_package(t, "nominal")
    point["krippendorff_alpha_ordinal"] = krippendorff_alpha_package(t, "ordinal")
    lower, upper = kappa_ci_paper(t)
    report: dict[str, Any] = {
        "n_items": n,
        "n_incomplete": incomplete,
        "table": t.tolist(),
        "counts_rater_1": dict(zip(LABELS, t.sum(axis=1).tolist(), strict=True)),
        "counts_rater_2": dict(zip(LABELS, t.sum(axis=0).tolist(), strict=True)),
        "raw_agreement": point["raw_agreement"],
        "agreement_percentage": 100.0 * point["raw_agreement"],
        "cohen_kappa": point["cohen_kappa"],
        "kappa_linear": point["kappa_linear"],
        "kappa_quadratic": point["kappa_quadratic"],
        "kappa_se": float(kappa_se_paper(t)),
        "kappa_ci_lower": lower,
        "kappa_ci_upper": upper,
        "interpretation": interpret_kappa(point["cohen_kappa"]),
        "krippendorff_alpha": point["krippendorff_alpha"],
        "krippendorff_alpha_ordinal": point["krippendorff_alpha_ordinal"],
        "gwet_ac1": point["gwet_ac1"],
        "gwet_ac1_paper": point["gwet_ac1_paper"],
        "both_completely_agree": point["both_completely_agree"],
        "n_boot": n_boot,
        "seed": seed,
    }
    boot = _all_statistics(bootstrap_tables(t, n_boot, seed))
    tail = 100.0 * (1.0 - level) / 2.0
    for key in BOOTSTRAPPED:
        values = boot[key][~np.isnan(boot[key])]
        if values.size == 0:
            lo = hi = math.nan
        else:
            lo, hi = (float(x) for x in np.percentile(values, [tail, 100.0 - tail]))
        report[f"{key}_boot_lower"] = lo
        report[f"{key}_boot_upper"] = hi
    return report


# --------------------------------------------------------------------------- sheets


def language_of_file(path: Path) -> str:
    """Language code from a sheet's file name: "hin_Deva.csv", "Hindi.csv" or the published
    "Nirdesha_Multilingual_Validation - Hindi.csv". Raises DatasetError naming the file."""
    stem = path.stem
    for candidate in (stem, stem.rsplit(" - ", 1)[-1]):
        try:
            return resolve(candidate).code
        except ValueError:
            continue
    raise DatasetError(
        "cannot tell the language from the file name; name the sheet after a language "
        "code or name, e.g. hin_Deva.csv or Hindi.csv", path=path,
    )


def rating_columns(header: Sequence[str]) -> tuple[str, str, str] | None:
    """(id column, rater 1 column, rater 2 column) of a sheet header, or None when the file
    is not a rating sheet. Accepts our sheets (pair_id, rater_1, rater_2) and the published
    ones (id, expert_1, expert_2)."""
    fields = set(header)
    id_col = next((c for c in ID_COLUMNS if c in fields), None)
    for a, b in RATER_COLUMNS:
        if a in fields and b in fields and id_col is not None:
            return id_col, a, b
    return None


def read_ratings(path: Path) -> list[tuple[str, str | None, str | None]]:
    """Read one rating sheet: a list of (pair id, rating 1, rating 2) in file order, with
    ratings as canonical labels (LABELS) or None for an empty cell.

    Only the id and rating columns are read: text columns are not parsed, so a row whose
    text holds invalid JSON (one Punjabi row of the published sheets) still counts.
    Raises DatasetError (file, line where the row starts, pair id) for an unknown rating, a
    missing or duplicate id, or a header without rating columns.
    """
    path = Path(path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = rating_columns(reader.fieldnames or [])
        if columns is None:
            raise DatasetError(
                "not a rating sheet: expected columns pair_id, rater_1, rater_2 (or the "
                f"published id, expert_1, expert_2), found {reader.fieldnames}",
                path=path,
            )
        id_col, col1, col2 = columns
        out: list[tuple[str, str | None, str | None]] = []
        seen: dict[str, int] = {}
        end = reader.line_num  # the header's last line
        for row_no, row in enumerate(reader, start=1):
            line, end = end + 1, reader.line_num  # a quoted text cell may span lines
            pair_id = (row.get(id_col) or "").strip()
            if not pair_id:
                raise DatasetError(f"data row {row_no}: empty {id_col!r}; every row needs "
                                   "its pair id", path=path, line=line)
            if pair_id in seen:
                raise DatasetError(
                    f"data row {row_no}: pair id {pair_id!r} already in data row "
                    f"{seen[pair_id]}; keep one row per pair",
                    path=path, line=line, record_id=pair_id,
                )
            seen[pair_id] = row_no
            labels: list[str | None] = []
            for col in (col1, col2):
                try:
                    code = parse_rating(row.get(col))
                except ValueError as exc:
                    raise DatasetError(f"data row {row_no}, column {col!r}: {exc}",
                                       path=path, line=line, record_id=pair_id) from None
                labels.append(None if code is None else LABELS[code])
            out.append((pair_id, labels[0], labels[1]))
    return out


def rating_sheets(folder: Path) -> list[tuple[str, Path]]:
    """(language code, path) of every rating sheet (*.csv with rating columns) in
    ``folder``, in the order of the language table; other CSVs are skipped. Raises
    DatasetError when two sheets resolve to the same language or none is found."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError("not a folder; give the folder that holds the sheets", path=folder)
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
        if rating_columns(header) is None:
            continue
        lang = language_of_file(path)
        if lang in found:
            raise DatasetError(f"{found[lang].name} and {path.name} are both sheets for "
                               f"{lang}; keep one", path=folder)
        found[lang] = path
    if not found:
        raise DatasetError(
            "no rating sheet found (CSV files with columns pair_id, rater_1, rater_2 or "
            "id, expert_1, expert_2)", path=folder,
        )
    return [(code, found[code]) for code in ALL_CODES if code in found]


def agreement_table(
    folder: Path, *, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """One ``agreement_report`` row per rating sheet in ``folder`` (our filled sheets or the
    published format), in language-table order, each with ``language`` (code), ``name`` and
    ``file`` added in front."""
    rows: list[dict[str, Any]] = []
    for lang, path in rating_sheets(folder):
        report = sheet_agreement(path, read_ratings(path), n_boot=n_boot, seed=seed)
        rows.append({"language": lang, "name": resolve(lang).name, "file": path.name, **report})
    return rows


def sheet_agreement(
    path: Path,
    ratings: Sequence[tuple[str, str | None, str | None]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """``agreement_report`` of one sheet's (pair id, rating 1, rating 2) rows; a sheet with
    no row rated by both raters raises DatasetError naming the file."""
    if not any(a is not None and b is not None for _, a, b in ratings):
        raise DatasetError(
            "no row is rated by both raters yet; fill rater_1 and rater_2 (or move the "
            "sheet out of the folder)", path=path,
        )
    return agreement_report([r[1] for r in ratings], [r[2] for r in ratings],
                            n_boot=n_boot, seed=seed)


def read_published_table(path: Path) -> dict[str, dict[str, float]]:
    """The published agreement_metrics_results.csv as {language code: {column: value}} for
    the numeric columns in PUBLISHED_COLUMNS."""
    path = Path(path)
    out: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row_no, row in enumerate(csv.DictReader(fh), start=1):
            try:
                lang = language_of_file(Path(row["file_name"]))
                out[lang] = {col: float(row[col]) for col in PUBLISHED_COLUMNS}
            except (KeyError, ValueError, DatasetError) as exc:
                raise DatasetError(f"data row {row_no}: {exc}; expected the columns "
                                   f"file_name, {', '.join(PUBLISHED_COLUMNS)}",
                                   path=path) from None
    return out


def compare_to_published(
    rows: Sequence[dict[str, Any]], published_csv: Path
) -> list[dict[str, Any]]:
    """Per language and published column: ours, published, abs_diff (ours from
    ``agreement_table`` rows, mapped by PUBLISHED_COLUMNS). Languages missing on either side
    are left out."""
    published = read_published_table(published_csv)
    out: list[dict[str, Any]] = []
    for row in rows:
        pub = published.get(row["language"])
        if pub is None:
            continue
        for col, key in PUBLISHED_COLUMNS.items():
            ours = float(row[key])
            out.append({"language": row["language"], "column": col, "ours": ours,
                        "published": pub[col], "abs_diff": abs(ours - pub[col])})
    return out
