"""Which input feature each column of the estimator's input is computed from.

Explanations name the features a client sends: a category one-hot encoded into five columns is one
feature, not five. So every column the Pipeline's steps hand the estimator must come from one
feature alone, whatever the steps are (scalers, imputers, encoders, steps scikit-learn runs). It is
found by asking the steps themselves: on valid rows over and past the training range, with gaps
where the contract allows them, each feature in turn takes other rows' values, and the columns
that move are that feature's.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..compiled import synthetic_rows
from ..contract import Schema

NOBODY = -1  # a column no feature moves (a constant)


class NotAdditive(Exception):
    """A column of the estimator's input mixes several features (interactions, a projection)."""


def owners(transform: Callable[[np.ndarray], np.ndarray], schema: Schema) -> np.ndarray:
    """For each column of ``transform``'s output, the index of the feature it is computed from
    (``NOBODY`` for a constant column); NotAdditive when one moves with two features."""
    rows = synthetic_rows(schema, rows=256, seed=1)
    before = transform(rows)
    owner = np.full(before.shape[1], NOBODY, dtype=np.intp)
    for index, feature in enumerate(schema.features):
        changed = rows.copy()
        changed[:, index] = np.roll(rows[:, index], 1)
        after = transform(changed)
        moved = ((after != before) & ~(np.isnan(after) & np.isnan(before))).any(axis=0)
        shared = moved & (owner != NOBODY)
        if shared.any():
            other = schema.features[owner[np.flatnonzero(shared)[0]]].name
            raise NotAdditive(f"a column of the estimator's input depends on both {other} and {feature.name}")
        owner[moved] = index
    return owner
