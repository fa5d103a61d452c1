"""Calibrators: closed-form fixtures (temperature, Platt), bin averages, isotonic PAV."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from personalign.analysis.calibration import (
    CALIBRATORS,
    HistogramBinning,
    IdentityCalibrator,
    IsotonicCalibrator,
    PlattScaling,
    TemperatureScaling,
    make_calibrator,
)

# Logit +2 with 3 of 4 positive, logit -2 with 1 of 4 positive. The likelihood equation
# sum (sigmoid(2 beta) - y) * 2 over the symmetric groups is 0 at sigmoid(2 beta) = 3/4,
# so beta = ln(3) / 2, T = 2 / ln 3, and the calibrated probabilities are exactly 3/4, 1/4.
P_SYM = np.array([expit(2.0)] * 4 + [expit(-2.0)] * 4)
Y_SYM = np.array([1, 1, 1, 0, 1, 0, 0, 0])


def test_temperature_closed_form() -> None:
    ts = TemperatureScaling().fit(P_SYM, Y_SYM)
    assert ts.temperature == pytest.approx(2 / math.log(3), rel=1e-10)
    assert ts.predict(np.array([expit(2.0), expit(-2.0)])) == pytest.approx([0.75, 0.25])


def test_temperature_recovers_a_known_scale() -> None:
    # Labels drawn from sigmoid(z); the model reports sigmoid(3 z): T should come out ~3.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, 100_000)
    y = (rng.random(z.size) < expit(z)).astype(int)
    ts = TemperatureScaling().fit(expit(3.0 * z), y)
    assert ts.temperature == pytest.approx(3.0, rel=0.03)


def test_temperature_hits_the_documented_bounds() -> None:
    separable = TemperatureScaling().fit(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert separable.temperature == pytest.approx(1e-3)
    reversed_ = TemperatureScaling().fit(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0]))
    assert reversed_.temperature == pytest.approx(1e3)


def test_platt_closed_form() -> None:
    # Two groups, two parameters: the MLE reproduces each group's positive share exactly.
    # p = .5 (z = 0) with 1/4 positive -> b = -ln 3; p = .9 (z = ln 9) with 3/4 -> a = 1.
    p = np.array([0.5] * 4 + [0.9] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    platt = PlattScaling().fit(p, y)
    assert platt.slope == pytest.approx(1.0, abs=1e-5)
    assert platt.intercept == pytest.approx(-math.log(3), abs=1e-5)
    assert platt.predict(np.array([0.5, 0.9])) == pytest.approx([0.25, 0.75], abs=1e-6)


def test_histogram_bins_average_labels() -> None:
    p = np.array([0.01, 0.02, 0.03, 0.5, 0.51])
    y = np.array([0, 0, 1, 1, 1])
    hb = HistogramBinning(n_bins=15).fit(p, y)
    # bin 0 = [0, 1/15): labels 0, 0, 1 -> 1/3; bin 7 = [7/15, 8/15): 1, 1 -> 1;
    # 0.9 and 1.0 fall in bins with no calibration data -> returned unchanged.
    out = hb.predict(np.array([0.04, 0.52, 0.9, 1.0]))
    assert out == pytest.approx([1 / 3, 1.0, 0.9, 1.0])
    assert hb.bin_counts.tolist()[:8] == [3, 0, 0, 0, 0, 0, 0, 2]


def test_isotonic_pools_adjacent_violators() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0, 1, 0, 1])
    iso = IsotonicCalibrator().fit(p, y)
    # PAV pools (.2: 1, .3: 0) into 0.5; outside the fit range values are clipped.
    assert iso.predict(p) == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert iso.predict(np.array([0.0, 0.25, 0.35, 0.95])) == pytest.approx([0, 0.5, 0.75, 1])
    ref = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    grid = np.linspace(0, 1, 21)
    assert iso.predict(grid) == pytest.approx(ref.predict(grid))


def test_identity() -> None:
    p = np.array([0.0, 0.3, 1.0])
    assert IdentityCalibrator().fit(p, np.array([0, 1, 1])).predict(p).tolist() == p.tolist()


def test_registry_and_common_behaviour() -> None:
    assert list(CALIBRATORS) == ["none", "temperature", "histogram", "isotonic", "platt"]
    p = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])  # 0 and 1 are clipped inside, stay finite
    y = np.array([0, 0, 1, 0, 1, 1])
    for name in CALIBRATORS:
        cal = make_calibrator(name).fit(p, y)
        out = cal.predict(p)
        assert out.shape == p.shape and np.isfinite(out).all(), name
        assert ((out >= 0) & (out <= 1)).all(), name
        json.dumps(cal.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="unknown calibration method"):
        make_calibrator("beta")


@pytest.mark.parametrize("name", ["temperature", "histogram", "isotonic", "platt"])
def test_fit_errors_are_explicit(name: str) -> None:
    with pytest.raises(ValueError, match="both classes"):
        make_calibrator(name).fit(np.array([0.2, 0.7]), np.array([1, 1]))
    with pytest.raises(ValueError, match="not logits"):
        make_calibrator(name).fit(np.array([-1.5, 2.0]), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        make_calibrator(name).predict(np.array([0.5]))
