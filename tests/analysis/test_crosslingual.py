"""Cross-lingual analyses on hand-built per-query hit arrays (4 aligned queries)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from personalign.analysis.crosslingual import (
    crosslingual_analysis,
    crosslingual_drop,
    direction_asymmetry,
    forward_reverse,
    transfer_gaps,
)
from personalign.analysis.stats import bootstrap_ci_groups

HIN, MAR, TAM, BEN, URD = "hin_Deva", "mar_Deva", "tam_Taml", "ben_Beng", "urd_Arab"


def v(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=float)


# T1 means: hin 1, mar .75, tam .75 -> 2.5/3. T2 means: .5 .25 0 .25 .25 0 -> 1.25/6.
FORWARD = {
    (HIN, HIN): v(1, 1, 1, 1),
    (MAR, MAR): v(1, 1, 1, 0),
    (TAM, TAM): v(1, 1, 0, 1),
    (HIN, MAR): v(1, 1, 0, 0),
    (MAR, HIN): v(1, 0, 0, 0),
    (HIN, TAM): v(0, 0, 0, 0),
    (TAM, HIN): v(1, 0, 0, 0),
    (MAR, TAM): v(1, 0, 0, 0),
    (TAM, MAR): v(0, 0, 0, 0),
}


def test_drop_by_hand() -> None:
    res = crosslingual_drop(FORWARD, n_resamples=200)
    assert res.mono_mean == pytest.approx(2.5 / 3)
    assert res.cross_mean == pytest.approx(1.25 / 6)
    assert res.drop.point == pytest.approx(1 - (1.25 / 6) / (2.5 / 3))  # = 0.75
    assert res.drop.lo <= res.drop.point <= res.drop.hi
    assert (res.n_languages, res.n_pairs, res.n_queries) == (3, 6, 4)


def test_drop_interval_equals_the_general_joint_bootstrap() -> None:
    rng = np.random.default_rng(0)
    values = {k: (rng.random(50) < 0.6).astype(float) for k in FORWARD}
    res = crosslingual_drop(values, n_resamples=300, seed=4)
    mono = np.stack([a for k, a in values.items() if k[0] == k[1]], axis=1)
    cross = np.stack([a for k, a in values.items() if k[0] != k[1]], axis=1)
    ref = bootstrap_ci_groups(
        [mono, cross], lambda m, c: 1 - c.mean(axis=(1, 2)) / m.mean(axis=(1, 2)),
        n_resamples=300, seed=4,
    )
    assert (res.drop.point, res.drop.lo, res.drop.hi) == pytest.approx(ref, abs=1e-12)


def test_drop_is_exactly_zero_in_every_resample_when_arrays_coincide() -> None:
    base = v(1, 0, 1, 1, 0, 1)
    values = {k: base.copy() for k in [(HIN, HIN), (HIN, TAM), (TAM, HIN), (TAM, TAM)]}
    res = crosslingual_drop(values)
    assert (res.drop.point, res.drop.lo, res.drop.hi) == pytest.approx((0.0, 0.0, 0.0))


def test_drop_without_cross_pairs_is_nan_and_serialises() -> None:
    res = crosslingual_drop({(HIN, HIN): v(1, 0)})
    assert np.isnan(res.drop.point)
    assert json.loads(json.dumps(res.to_dict(), allow_nan=False))["point"] is None


def test_transfer_gaps_by_hand() -> None:
    values = {
        (HIN, MAR): v(1, 1, 1, 1),  # same script, script group, family
        (HIN, BEN): v(1, 1, 0, 0),  # same script group and family
        (HIN, TAM): v(0, 0, 0, 0),  # shares nothing
        (HIN, URD): v(1, 0, 0, 0),  # same family only
    }
    gaps = transfer_gaps(values, n_resamples=200)
    assert gaps["script"].gap.point == pytest.approx(1.0 - (0.5 + 0 + 0.25) / 3)
    assert gaps["script_group"].gap.point == pytest.approx(0.75 - 0.125)
    assert gaps["family"].gap.point == pytest.approx((1 + 0.5 + 0.25) / 3 - 0.0)
    assert gaps["script"].shared_pairs == [(HIN, MAR)]
    assert gaps["family"].n_other_pairs == 1
    for g in gaps.values():
        assert g.gap.lo <= g.gap.point <= g.gap.hi


def test_transfer_gap_with_an_empty_group_is_nan() -> None:
    gaps = transfer_gaps({(HIN, TAM): v(1, 0), (TAM, HIN): v(0, 0)})
    assert np.isnan(gaps["script"].gap.point) and gaps["script"].shared_pairs == []
    assert gaps["script"].other_mean == pytest.approx(0.25)
    out = json.loads(json.dumps(gaps["family"].to_dict(), allow_nan=False))
    assert out["point"] is None and out["n_shared_pairs"] == 0


def test_transfer_gap_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        transfer_gaps({(HIN, "xx"): v(1.0)})


def test_direction_asymmetry_by_hand() -> None:
    res = direction_asymmetry(FORWARD, n_resamples=200)
    assert [(r.lang_a, r.lang_b) for r in res] == [(HIN, MAR), (HIN, TAM), (MAR, TAM)]
    assert [r.diff.point for r in res] == pytest.approx([0.25, -0.25, 0.25])
    assert [(r.forward_mean, r.backward_mean) for r in res] == [(0.5, 0.25), (0.0, 0.25),
                                                                (0.25, 0.0)]
    for r in res:
        assert r.diff.p_value is not None and r.diff.p_value <= r.p_holm <= 1.0


def test_forward_reverse_by_hand() -> None:
    forward = {(HIN, HIN): v(1, 1, 1, 1), (HIN, MAR): v(1, 1, 0, 0)}
    # reverse (MAR, HIN) = instruction in mar -> persona in hin: matches forward (HIN, MAR).
    reverse = {(HIN, HIN): v(1, 1, 0, 0), (MAR, HIN): v(1, 0, 0, 0), (TAM, TAM): v(1, 1, 1, 1)}
    res = forward_reverse(forward, reverse, n_resamples=200)
    assert res["all"].diff.point == pytest.approx(0.75 - 0.375)
    assert res["mono"].diff.point == pytest.approx(0.5)
    assert res["cross"].diff.point == pytest.approx(0.25)
    assert res["all"].n_pairs == 2 and res["mono"].n_pairs == 1


def test_misaligned_arrays_are_rejected() -> None:
    with pytest.raises(ValueError, match="aligned"):
        crosslingual_drop({(HIN, HIN): v(1, 0), (HIN, TAM): v(1, 0, 1)})


def test_analysis_aligns_by_ids_and_is_json_ready() -> None:
    hits = {
        "t1": {(HIN, HIN): v(1, 1, 0), (TAM, TAM): v(1, 0, 1)},
        "t2": {(HIN, TAM): v(0, 1, 0), (TAM, HIN): v(1, 0, 0)},
        "t3": {(HIN, HIN): v(1, 0, 1), (TAM, HIN): v(0, 0, 1)},
    }
    # Ids in different orders; id "c" is missing from one array and is dropped everywhere.
    ids = {
        "t1": {(HIN, HIN): ["a", "b", "c"], (TAM, TAM): ["b", "a", "c"]},
        "t2": {(HIN, TAM): ["a", "b", "c"], (TAM, HIN): ["c", "b", "a"]},
        "t3": {(HIN, HIN): ["a", "b", "x"], (TAM, HIN): ["b", "a", "c"]},
    }
    out = crosslingual_analysis(hits, ids, n_resamples=100, seed=42)
    json.dumps(out, allow_nan=False)
    assert out["n_queries"] == 2 and out["n_dropped_ids"] == 2  # "c" and "x"
    # Aligned on [a, b]: t1 hin [1,1], tam [0,1]; t2 hin->tam [0,1], tam->hin [0,0].
    drop = out["crosslingual_drop"]
    assert drop["mono_mean"] == pytest.approx(0.75) and drop["cross_mean"] == pytest.approx(0.25)
    assert drop["point"] == pytest.approx(1 - 0.25 / 0.75)
    assert set(out) >= {"transfer_gaps", "asymmetry", "forward_reverse",
                        "reverse_crosslingual_drop", "reverse_asymmetry"}
    # forward (HIN, TAM) [0,1] vs reverse (TAM, HIN) on [a, b] = [0, 0]: cross diff 0.5
    assert out["forward_reverse"]["cross"]["point"] == pytest.approx(0.5)
