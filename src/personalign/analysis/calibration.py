"""Post-hoc calibrators for the T4 compatibility probability, fitted on the calibration split.

One convention for every calibrator: ``fit(p, y)`` and ``predict(p)`` take *probabilities*
p = P(y = 1) in [0, 1] (1-d), never logits; methods that work on the logit compute it
internally as z = log(q / (1 - q)) with q = clip(p, EPS, 1 - EPS), EPS = 1e-7, so p = 0 or 1
stays finite. ``predict`` returns calibrated probabilities in [0, 1] of the same shape.

    none         identity: predict(p) = p
    temperature  predict(p) = sigmoid(z / T), T > 0 minimising the log-loss on the fit data
    histogram    15 equal-width bins over [0, 1] (same bins as the ECE); predict(p) = share
                 of positives among the fit examples in p's bin; p itself in bins that held
                 no fit example
    isotonic     scikit-learn IsotonicRegression(increasing, y in [0, 1], out_of_bounds="clip")
                 of y on p
    platt        predict(p) = sigmoid(a z + b), (a, b) by unpenalised 1-d logistic regression
                 (scikit-learn LogisticRegression, C = inf) of y on z

Fitting needs both classes in y (a calibration split with one class carries no information on
calibration); every calibrator except "none" raises ValueError otherwise. Fit them on the
calibration split only, never on test labels (DESIGN.md section 3).
"""

from __future__ import annotations

from typing import Any, Protocol, Self

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

EPS = 1e-7
# Inverse-temperature search interval of TemperatureScaling: T in [1e-3, 1e3].
_BETA_MIN, _BETA_MAX = 1e-3, 1e3


class Calibrator(Protocol):
    """What the classification task needs from a calibrator."""

    name: str

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self: ...

    def predict(self, p: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


def _probs(p: np.ndarray, what: str = "p") -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array of probabilities, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{what} must hold probabilities in [0, 1] (calibrators take probabilities, not "
            f"logits); position {i} holds {arr[i]!r}"
        )
    return arr


def _fit_data(p: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    p_arr = _probs(p)
    y_arr = np.asarray(y)
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"p and y differ in shape: {p_arr.shape} vs {y_arr.shape}")
    if ((y_arr != 0) & (y_arr != 1)).any():
        raise ValueError("y must hold labels 0 or 1")
    positives = int(np.sum(y_arr == 1))
    if positives in (0, y_arr.size):
        raise ValueError(
            f"cannot fit the {name!r} calibrator: the calibration split has {y_arr.size} "
            f"examples of which {positives} positive; it needs both classes"
        )
    return p_arr, y_arr.astype(np.float64)


def to_logit(p: np.ndarray) -> np.ndarray:
    """z = log(q / (1 - q)), q = clip(p, EPS, 1 - EPS)."""
    return np.asarray(logit(np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)))


class _Fitted:
    _fitted = False
    name = ""

    def _require_fit(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"{type(self).__name__} ({self.name!r}) is not fitted: call fit()")


class IdentityCalibrator(_Fitted):
    """No calibration: predict(p) = p. Fitting only checks the inputs."""

    name = "none"

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self:
        p_arr = _probs(p)
        if np.asarray(y).shape != p_arr.shape:
            raise ValueError(f"p and y differ in shape: {p_arr.shape} vs {np.asarray(y).shape}")
        self._fitted = True
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return _probs(p).copy()

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.name}


class TemperatureScaling(_Fitted):
    """predict(p) = sigmoid(logit(p) / T), one temperature T > 0 fitted by maximum likelihood.

    The log-loss L(beta) = sum_i [log(1 + exp(beta z_i)) - y_i beta z_i] of beta = 1/T is
    convex, so the optimum is the root of L'(beta) = sum_i (sigmoid(beta z_i) - y_i) z_i,
    found by Brent's method on [1e-3, 1e3]; if the root lies outside, the nearest end is
    taken (T = 1e3 when the scores are uninformative or reversed, T = 1e-3 when they
    separate the classes perfectly).
    """

    name = "temperature"

    def __init__(self) -> None:
        self.temperature: float = 1.0

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self:
        p_arr, y_arr = _fit_data(p, y, self.name)
        z = to_logit(p_arr)

        def grad(beta: float) -> float:
            return float(np.sum((expit(beta * z) - y_arr) * z))

        if grad(_BETA_MIN) >= 0.0:
            beta = _BETA_MIN
        elif grad(_BETA_MAX) <= 0.0:
            beta = _BETA_MAX
        else:
            beta = float(brentq(grad, _BETA_MIN, _BETA_MAX, xtol=1e-14, rtol=1e-14))
        self.temperature = 1.0 / beta
        self._fitted = True
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        self._require_fit()
        return np.asarray(expit(to_logit(_probs(p)) / self.temperature))

    def to_dict(self) -> dict[str, Any]:
        self._require_fit()
        return {"method": self.name, "temperature": self.temperature}


class HistogramBinning(_Fitted):
    """Equal-width histogram binning (Zadrozny & Elkan 2001) with ``n_bins`` bins over [0, 1].

    Bin b = [b / n_bins, (b + 1) / n_bins), the last bin closed (the ECE's bins).
    predict(p) = mean label of the fit examples in p's bin; p unchanged if that bin was empty.
    """

    name = "histogram"

    def __init__(self, n_bins: int = 15) -> None:
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = n_bins
        self.bin_values: np.ndarray = np.full(n_bins, np.nan)  # NaN = empty bin
        self.bin_counts: np.ndarray = np.zeros(n_bins, dtype=np.int64)

    def _ids(self, p: np.ndarray) -> np.ndarray:
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, self.n_bins - 1)

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self:
        p_arr, y_arr = _fit_data(p, y, self.name)
        ids = self._ids(p_arr)
        counts = np.bincount(ids, minlength=self.n_bins)
        positives = np.bincount(ids, weights=y_arr, minlength=self.n_bins)
        self.bin_values = np.where(counts > 0, positives / np.maximum(counts, 1), np.nan)
        self.bin_counts = counts.astype(np.int64)
        self._fitted = True
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        self._require_fit()
        p_arr = _probs(p)
        values = self.bin_values[self._ids(p_arr)]
        return np.where(np.isnan(values), p_arr, values)

    def to_dict(self) -> dict[str, Any]:
        self._require_fit()
        return {
            "method": self.name,
            "n_bins": self.n_bins,
            "bin_values": [None if np.isnan(v) else float(v) for v in self.bin_values],
            "bin_counts": [int(c) for c in self.bin_counts],
        }


class IsotonicCalibrator(_Fitted):
    """Monotone non-decreasing step map from p to P(y = 1) (pool-adjacent-violators).

    scikit-learn ``IsotonicRegression(y_min=0, y_max=1, increasing=True,
    out_of_bounds="clip")`` fitted on (p, y); between fit points it interpolates linearly.
    """

    name = "isotonic"

    def __init__(self) -> None:
        self.model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True,
                                        out_of_bounds="clip")

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self:
        p_arr, y_arr = _fit_data(p, y, self.name)
        self.model.fit(p_arr, y_arr)
        self._fitted = True
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        self._require_fit()
        return np.clip(np.asarray(self.model.predict(_probs(p)), dtype=np.float64), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        self._require_fit()
        return {
            "method": self.name,
            "x": [float(v) for v in self.model.X_thresholds_],
            "y": [float(v) for v in self.model.y_thresholds_],
        }


class PlattScaling(_Fitted):
    """predict(p) = sigmoid(a * logit(p) + b), (a, b) maximising the likelihood on the fit data.

    Fitted with scikit-learn ``LogisticRegression(C=inf)`` (no penalty, lbfgs, tol 1e-10) on
    the single feature z = logit(p). Unlike Platt (1999), labels are not smoothed.
    """

    name = "platt"

    def __init__(self) -> None:
        self.slope: float = 1.0
        self.intercept: float = 0.0

    def fit(self, p: np.ndarray, y: np.ndarray) -> Self:
        p_arr, y_arr = _fit_data(p, y, self.name)
        model = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
        model.fit(to_logit(p_arr)[:, None], y_arr.astype(np.int64))
        self.slope = float(model.coef_[0, 0])
        self.intercept = float(model.intercept_[0])
        self._fitted = True
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        self._require_fit()
        return np.asarray(expit(self.slope * to_logit(_probs(p)) + self.intercept))

    def to_dict(self) -> dict[str, Any]:
        self._require_fit()
        return {"method": self.name, "slope": self.slope, "intercept": self.intercept}


CALIBRATORS: dict[str, type[Any]] = {
    "none": IdentityCalibrator,
    "temperature": TemperatureScaling,
    "histogram": HistogramBinning,
    "isotonic": IsotonicCalibrator,
    "platt": PlattScaling,
}


def make_calibrator(name: str) -> Calibrator:
    """A fresh, unfitted calibrator by registry name (see :data:`CALIBRATORS`)."""
    try:
        cls = CALIBRATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown calibration method {name!r}; use one of: {', '.join(CALIBRATORS)}"
        ) from None
    calibrator: Calibrator = cls()
    return calibrator
