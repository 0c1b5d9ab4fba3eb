"""What explanations need from the training rows, kept in the version's metadata (signed with it).

Training and import store, under ``explanation_reference``: how many rows it was drawn from, the
mean of the estimator's input over all of them (a linear model's baseline), and up to
``BACKGROUND_ROWS`` of them, drawn with a fixed seed, as a client would send them (the sampling
approximation's background). A few kilobytes. Without it (a version from before, a model imported
without a sample) the schema's example row stands for the training rows, and the explanation's
baseline is the model's output for that row.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..compiled import Unsupported, compile_pipeline
from ..contract import CATEGORY, Schema
from ..decoding import Decoder
from ..describe import matrix_from_frame

BACKGROUND_ROWS = 100
KEY = "explanation_reference"


def reference(model: Any, schema: Schema, frame: pd.DataFrame, source: str) -> dict[str, Any] | None:
    """From the training rows (or an import's sample): ``source`` says which, for people. None
    when no row is one the service would accept (the example row then stands in)."""
    matrix, usable = matrix_from_frame(schema, frame)
    rows = matrix[usable]
    if not len(rows):
        return None
    picked = np.sort(np.random.default_rng(0).choice(len(rows), min(BACKGROUND_ROWS, len(rows)), replace=False))
    try:
        input_mean = [float(v) for v in compile_pipeline(model, schema).transform(rows).mean(axis=0)]
    except Unsupported:  # not a model explained exactly: the mean is not needed
        input_mean = None
    return {"source": source, "rows": int(len(rows)), "input_mean": input_mean,
            "background": {"columns": schema.names, "data": [_as_sent(schema, row) for row in rows[picked]]}}


def _as_sent(schema: Schema, row: np.ndarray) -> list[Any]:
    """A decoded row as a client sends it: numbers, category names, null for a gap."""
    values: list[Any] = []
    for feature, value in zip(schema.features, row.tolist()):
        if math.isnan(value):
            values.append(None)
        elif feature.kind == CATEGORY:
            values.append(feature.categories[int(value)])
        else:
            values.append(int(value) if feature.integer and value.is_integer() else value)
    return values


def background_of(metadata: dict[str, Any], decoder: Decoder) -> tuple[np.ndarray, str]:
    """The stored background rows decoded as a request's (or the example row), and where they came from."""
    stored = metadata.get(KEY) or {}
    background = stored.get("background")
    if background:
        decoded = decoder.columns(background["columns"], background["data"])
        return decoded.matrix, f"{len(decoded.matrix)} of {stored.get('rows')} {stored.get('source', 'training')} rows"
    return example_row(decoder), "the example row (no training rows stored with this version)"


def input_mean_of(metadata: dict[str, Any]) -> np.ndarray | None:
    stored = (metadata.get(KEY) or {}).get("input_mean")
    return None if stored is None else np.asarray(stored, dtype="float64")


def example_row(decoder: Decoder) -> np.ndarray:
    return decoder.records([decoder.schema.example()]).matrix

