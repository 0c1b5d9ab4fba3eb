"""Linear models: a matrix product and a link function."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression

from .program import Estimator, Transform, Unsupported, compiles


@compiles(LogisticRegression)
def logistic(classifier: LogisticRegression) -> Estimator:
    return Estimator(kind="logistic-regression", probabilities=_compile_logistic(classifier))


def _compile_logistic(classifier: LogisticRegression) -> Transform:
    coef = classifier.coef_.astype("float64")
    intercept = classifier.intercept_.astype("float64")
    binary = len(classifier.classes_) == 2
    if binary and coef.shape[0] != 1:
        raise Unsupported("unexpected binary coefficients")

    def classify(features: np.ndarray) -> np.ndarray:
        decision = features @ coef.T + intercept
        if binary:
            positive = expit(decision[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(decision, axis=1)

    return classify
