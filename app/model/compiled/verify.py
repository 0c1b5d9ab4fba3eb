"""The compiled backend is used only where it gives scikit-learn's answer: checked here.

Labels must be identical; probabilities and values may differ by rounding only (``TOLERANCE``,
relative to the value, or absolute below 1). ``synthetic_rows`` makes valid inputs over and a
little past the training range, with gaps where the contract allows them, for the registry's
check at every load.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..contract import CATEGORY, Decoded, Schema
from ..output import REGRESSION, from_scikit_learn, rows_for
from ..tiles import pad_rows
from .program import CompiledPipeline

TOLERANCE = 1e-9  # rounding differences are ~1e-13


class Mismatch(Exception):
    """The compiled backend disagrees with scikit-learn; the model is served by scikit-learn."""


def verify(compiled: CompiledPipeline, model: Any, schema: Schema, matrix: np.ndarray,
           task: str, classes: list[Any]) -> float:
    """Compare with scikit-learn on ``matrix``, as the scikit-learn backend computes it (the rows
    padded to whole tiles: app/model/tiles.py); return the largest difference found."""
    frame = Decoded(pad_rows(matrix), [], schema).frame
    expected = from_scikit_learn(model, rows_for(model, frame), task, classes).head(len(matrix))
    got = compiled.predict(matrix)
    if task == REGRESSION:
        return _close("values", got.values, expected.values)
    if got.winners is None or not np.array_equal(np.asarray(got.winners), np.asarray(expected.winners)):
        raise Mismatch("labels differ")
    if expected.probabilities is None:
        return 0.0
    return _close("probabilities", got.probabilities, expected.probabilities)


def _close(what: str, got: np.ndarray | None, expected: np.ndarray) -> float:
    if got is None:
        raise Mismatch(f"no {what}")
    got, expected = np.asarray(got, dtype="float64"), np.asarray(expected, dtype="float64")
    if got.shape != expected.shape:
        raise Mismatch(f"{what} of shape {got.shape} instead of {expected.shape}")
    if not got.size:
        return 0.0
    difference = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    largest = float(np.max(difference))
    if not largest <= TOLERANCE:  # NaN fails too
        raise Mismatch(f"{what} differ by up to {largest:.3g} (relative)")
    return largest


def synthetic_rows(schema: Schema, rows: int = 256, seed: int = 0) -> np.ndarray:
    """Valid inputs spread over (and a little past) the training range, with gaps where allowed."""
    rng = np.random.default_rng(seed)
    columns = []
    for feature in schema.features:
        if feature.kind == CATEGORY:
            column = rng.integers(0, max(1, len(feature.categories)), rows).astype("float64")
        else:
            low = feature.minimum if feature.minimum is not None else 0.0
            high = feature.maximum if feature.maximum is not None else 1.0
            span = (high - low) or 1.0
            column = rng.uniform(low - 0.2 * span, high + 0.2 * span, rows)
            if feature.integer:
                column = np.round(column)
        if feature.allow_missing:
            column[rng.random(rows) < 0.15] = np.nan
        columns.append(column)
    return np.column_stack(columns)
