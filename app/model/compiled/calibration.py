"""CalibratedClassifierCV: a compiled base classifier's scores, calibrated.

As scikit-learn 1.9 does it: each calibrated classifier takes its base estimator's
decision_function if it has one, else its predict_proba (for two classes, the column of
classes_[1]); method "sigmoid" or "isotonic" maps each class's score through its calibrator and
normalises, method "temperature" divides the logits by a temperature before a softmax. With
ensemble=True the calibrated classifiers' probabilities are averaged.

The default model (two classes, one RBF SVC, sigmoid) keeps a dedicated single-row path: it is
the service's most common request, and every NumPy call saved there shows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression

from .linear import softmax
from .program import Estimator, Transform, Unsupported, compile_estimator, compiles

try:
    from sklearn.calibration import _TemperatureScaling
except ImportError:  # before scikit-learn 1.8
    _TemperatureScaling = None


@compiles(FrozenEstimator)
def frozen(model: FrozenEstimator) -> Estimator:
    """cv="prefit"'s replacement wraps the fitted base estimator; it predicts as the estimator."""
    return compile_estimator(model.estimator)


@compiles(CalibratedClassifierCV)
def calibrated(model: CalibratedClassifierCV) -> Estimator:
    classes = np.asarray(model.classes_)
    members = [_calibrated_member(member) for member in model.calibrated_classifiers_]
    kind = "calibrated-" + members[0][0]
    parts = [probabilities for _, probabilities in members]
    if len(parts) == 1:
        probabilities = parts[0]
    else:
        def probabilities(features: np.ndarray) -> np.ndarray:
            total = np.zeros((len(features), len(classes)))
            for part in parts:  # in order, as scikit-learn sums them
                total += part(features)
            total /= len(parts)
            return total
    return Estimator(kind=kind, probabilities=probabilities)


def _calibrated_member(member: Any) -> tuple[str, Transform]:
    """One _CalibratedClassifier's predict_proba: (the base's kind, the function)."""
    estimator = member.estimator
    base = compile_estimator(estimator)
    n_classes = len(member.classes)
    if hasattr(estimator, "decision_function"):
        if base.decision is None:
            raise Unsupported(f"calibration over {base.kind} needs its decision function")
        scores = base.decision
        from_probabilities = False
    elif hasattr(estimator, "predict_proba"):
        if base.probabilities is None:
            raise Unsupported(f"calibration over {base.kind} needs its probabilities")
        scores = base.probabilities
        from_probabilities = True
    else:
        raise Unsupported("calibration over a classifier without decision_function or predict_proba")
    estimator_classes = np.asarray(estimator.classes_)
    binary_base = len(estimator_classes) == 2
    if from_probabilities and binary_base:
        probabilities_of = scores
        scores = lambda features: probabilities_of(features)[:, 1]  # noqa: E731 - classes_[1]'s column
    positions = np.searchsorted(np.sort(np.asarray(member.classes)), estimator_classes)  # LabelEncoder

    if member.method in ("sigmoid", "isotonic"):
        calibrators = [_calibrator(c) for c in member.calibrators]
        targets = [int(p) + (1 if n_classes == 2 else 0) for p in positions][:len(calibrators)]

        def calibrate(features: np.ndarray) -> np.ndarray:
            predictions = scores(features)
            if predictions.ndim == 1:
                predictions = predictions.reshape(-1, 1)
            proba = np.zeros((len(features), n_classes))
            for target, column, calibrator in zip(targets, predictions.T, calibrators):
                proba[:, target] = calibrator(column)
            if n_classes == 2:
                proba[:, 0] = 1.0 - proba[:, 1]
            else:
                denominator = np.sum(proba, axis=1)[:, np.newaxis]
                uniform = np.full_like(proba, 1 / n_classes)
                proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
            return _clip_above_one(proba)
    elif member.method == "temperature":
        scaling = member.calibrators[0]
        if _TemperatureScaling is None or type(scaling) is not _TemperatureScaling:
            raise Unsupported("an unknown temperature calibrator")
        beta = scaling.beta_
        pad_probabilities = n_classes == 2 and from_probabilities and binary_base

        def calibrate(features: np.ndarray) -> np.ndarray:
            predictions = scores(features)
            if predictions.ndim == 1:
                predictions = predictions.reshape(-1, 1)
            if pad_probabilities:
                predictions = np.concatenate([1 - predictions, predictions], axis=1)
            return _clip_above_one(softmax(beta * _logits(predictions)))
    else:
        raise Unsupported(f"calibration method {member.method!r}")
    return base.kind, calibrate


def _calibrator(calibrator: Any) -> Transform:
    if type(calibrator) is _SigmoidCalibration:
        a, b = calibrator.a_, calibrator.b_
        return lambda scores: expit(-(a * scores + b))
    if type(calibrator) is IsotonicRegression:
        return _isotonic(calibrator)
    raise Unsupported(f"calibrator {type(calibrator).__name__}")


def _isotonic(regression: IsotonicRegression) -> Transform:
    """IsotonicRegression.predict: clipped to the fitted range, then scipy's interp1d arithmetic."""
    if regression.out_of_bounds != "clip":
        raise Unsupported("isotonic calibration that does not clip")
    x = np.asarray(regression.X_thresholds_, dtype="float64")
    y = np.asarray(regression.y_thresholds_, dtype="float64")
    low, high = regression.X_min_, regression.X_max_
    if len(y) == 1:
        return lambda scores: np.full(len(scores), y[0])

    def interpolate(scores: np.ndarray) -> np.ndarray:
        clipped = np.minimum(np.maximum(scores, low), high)  # np.clip, without its Python wrapper
        upper = np.minimum(np.maximum(np.searchsorted(x, clipped), 1), len(x) - 1)
        lower = upper - 1
        slope = (y[upper] - y[lower]) / (x[upper] - x[lower])
        return slope * (clipped - x[lower]) + y[lower]
    return interpolate


def _logits(predictions: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """sklearn.calibration._convert_to_logits: probabilities (the whole batch in [0, 1], rows
    summing to 1) become their logs; a single column becomes (-x, x); decisions stay."""
    if predictions.shape[1] > 1:
        in_unit_range = np.all((predictions >= 0) & (predictions <= 1))
        rows_sum_to_one = np.all(np.isclose(np.sum(predictions, axis=1), 1.0, rtol=1e-05, atol=1e-08))
        return np.log(predictions + eps) if in_unit_range and rows_sum_to_one else predictions
    return np.concatenate([-predictions, predictions], axis=1)


def _clip_above_one(proba: np.ndarray) -> np.ndarray:
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba
