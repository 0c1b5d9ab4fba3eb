"""Hypothesis strategies the property tests share."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from app.model.contract import Schema


def valid_rows(schema: Schema, max_rows: int = 70):
    """Any valid input: numbers anywhere in the accepted range (mostly near the training range)."""
    columns = []
    for feature in schema.features:
        if feature.kind == "category":
            values = st.integers(0, len(feature.categories) - 1).map(float)
        else:
            span = (feature.maximum - feature.minimum) or 1
            near = st.floats(feature.minimum - span, feature.maximum + span, allow_nan=False)
            if feature.integer:
                near = near.map(round).map(float)
            values = st.one_of(near, near, near, st.floats(-1e15, 1e15, allow_nan=False))
        if feature.allow_missing:
            values = st.one_of(values, st.just(float("nan")))
        columns.append(values)
    return st.lists(st.tuples(*columns), min_size=1, max_size=max_rows).map(lambda rows: np.array(rows, dtype="float64"))
