"""Class probabilities for a decoded batch, by the fastest path that gives scikit-learn's answer.

The compiled NumPy path (app/fastpath.py) serves a model when it compiled and matched
scikit-learn at load time; otherwise scikit-learn does.
The label is the class with the highest probability, exactly as ``predict`` computes it for the
calibrated SVM, the forest and logistic regression.
"""
from __future__ import annotations

import numpy as np

from .registry import LoadedModel
from .schema import Decoded


def predict_proba(model: LoadedModel, decoded: Decoded) -> np.ndarray:
    if model.fast is not None:
        return model.fast.predict_proba(decoded.matrix)
    return np.asarray(model.model.predict_proba(decoded.frame), dtype="float64")


def labels(model: LoadedModel, probabilities: np.ndarray) -> list:
    return [model.classes[i] for i in probabilities.argmax(axis=1).tolist()]
