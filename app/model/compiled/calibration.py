"""CalibratedClassifierCV: probabilities calibrated over a base classifier's decision."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.svm import SVC

from .program import Estimator, Transform, Unsupported, compiles


@compiles(CalibratedClassifierCV)
def calibrated(classifier: CalibratedClassifierCV) -> Estimator:
    return Estimator(kind="calibrated-svm", probabilities=_compile_calibrated_svm(classifier))


def _compile_calibrated_svm(classifier: CalibratedClassifierCV) -> Transform:
    if len(classifier.classes_) != 2 or len(classifier.calibrated_classifiers_) != 1:
        raise Unsupported("only a two-class CalibratedClassifierCV with ensemble=False")
    calibrated = classifier.calibrated_classifiers_[0]
    svc = calibrated.estimator
    if calibrated.method != "sigmoid" or not isinstance(calibrated.calibrators[0], _SigmoidCalibration):
        raise Unsupported("only sigmoid calibration")
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or len(svc.classes_) != 2:
        raise Unsupported("only a two-class RBF SVC")
    vectors = np.ascontiguousarray(svc.support_vectors_, dtype="float64")
    coefficients = svc.dual_coef_[0].astype("float64")
    intercept = float(svc.intercept_[0])
    gamma = float(svc._gamma)
    a, b = float(calibrated.calibrators[0].a_), float(calibrated.calibrators[0].b_)
    gamma_norms = gamma * np.einsum("ij,ij->i", vectors, vectors)
    scaled_vectors_t = np.ascontiguousarray((2.0 * gamma) * vectors.T)

    def classify(features: np.ndarray) -> np.ndarray:
        if len(features) == 1:  # the common case: fewer, cheaper NumPy calls
            difference = vectors - features[0]
            decision = float(np.exp(np.einsum("ij,ij->i", difference, difference) * -gamma) @ coefficients) + intercept
            exponent = a * decision + b
            positive = 0.0 if exponent > 700.0 else 1.0 / (1.0 + math.exp(exponent))  # expit(-exponent)
            return np.array([[1.0 - positive, positive]])
        # exp(-gamma * |x - v|^2) with |x - v|^2 = |x|^2 + |v|^2 - 2 x.v, computed in place
        kernel = features @ scaled_vectors_t
        kernel -= gamma * np.einsum("ij,ij->i", features, features)[:, None]
        kernel -= gamma_norms
        np.minimum(kernel, 0.0, out=kernel)
        np.exp(kernel, out=kernel)
        decision = kernel @ coefficients + intercept
        positive = expit(-(a * decision + b))
        return np.column_stack([1.0 - positive, positive])

    return classify
