"""Labels and class probabilities for a decoded batch.

The label is the class with the highest probability, so the two always agree; for the
calibrated SVM and the forest this is exactly what ``predict`` computes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Prediction:
    label: Any
    probabilities: dict[str, float]


def predict(model: Any, classes: list[Any], frame: pd.DataFrame) -> list[Prediction]:
    probabilities = np.asarray(model.predict_proba(frame), dtype="float64")
    best = probabilities.argmax(axis=1)
    keys = [str(c) for c in classes]
    return [
        Prediction(label=classes[i], probabilities=dict(zip(keys, row)))
        for i, row in zip(best.tolist(), probabilities.tolist())
    ]
