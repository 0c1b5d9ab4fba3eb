"""Predict and encode: decoded rows -> class probabilities -> the documents the API answers with.

The compiled backend (app/model/compiled.py) answers when it compiled and matched scikit-learn at
load time; otherwise scikit-learn does. The label is the class with the highest probability,
exactly as ``predict`` computes it for the calibrated SVM, the forest and logistic regression.
The HTTP routes, the direct path and (later) batch scoring all encode through these functions, so
a row gets the same answer whichever way it arrives.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .contract import Decoded
from .registry import LoadedModel


def predict_proba(model: LoadedModel, decoded: Decoded) -> np.ndarray:
    if model.compiled is not None:
        return model.compiled.predict_proba(decoded.matrix)
    return np.asarray(model.model.predict_proba(decoded.frame), dtype="float64")


def most_probable(probabilities: np.ndarray) -> list[int]:
    """Each row's most probable class, as an index into the model's classes (the first on a tie)."""
    return probabilities.argmax(axis=1).tolist()


def labels(model: LoadedModel, winners: list[int]) -> list:
    return [model.classes[i] for i in winners]


def prediction_document(model: LoadedModel, decoded: Decoded, probabilities: np.ndarray,
                        winners: list[int]) -> dict[str, Any]:
    """``{"model": {...}, "predictions": [{"label", "probabilities", "warnings"}, ...]}``, rows in input order."""
    found = labels(model, winners)
    rows = probabilities.tolist()
    if len(model.classes) == 2:  # the common case, built without a zip per row
        first, second = (str(c) for c in model.classes)
        predictions = [{"label": label, "probabilities": {first: p, second: q}, "warnings": warnings}
                       for label, (p, q), warnings in zip(found, rows, decoded.warnings)]
    else:
        keys = [str(c) for c in model.classes]
        predictions = [{"label": label, "probabilities": dict(zip(keys, row)), "warnings": warnings}
                       for label, row, warnings in zip(found, rows, decoded.warnings)]
    return {"model": {"name": model.name, "version": model.version}, "predictions": predictions}


def labels_document(model: LoadedModel, winners: list[int]) -> dict[str, Any]:
    """MLflow's scoring-server answer: ``{"predictions": [label, ...]}``."""
    return {"predictions": labels(model, winners)}
