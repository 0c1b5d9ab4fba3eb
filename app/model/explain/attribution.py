"""What every explainer computes: a baseline and each feature's contribution, per output column.

``values = baseline + contributions.sum(axis=1)``: the explained output is the baseline plus the
contributions, by construction, for every method. An explainer computes the output columns it was
built for (one for a binary classifier or a regressor, one per class for several classes); the
explanation then keeps, per row, the column of the class it explains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Attribution:
    baseline: np.ndarray  # (outputs,): the output expected over the training rows
    contributions: np.ndarray  # (rows, features, outputs)

    @property
    def values(self) -> np.ndarray:
        """(rows, outputs): the explained output of each row."""
        return self.baseline + self.contributions.sum(axis=1)


class PerFeature:
    """Sums terms (columns of the estimator's input, or (leaf, feature) pairs) per the feature each
    belongs to: a gather and one ``add.reduceat`` (a matrix product with a 0/1 matrix would call
    BLAS, whose threads cost milliseconds on a busy machine for this small a product)."""

    def __init__(self, owner: np.ndarray, features: int):
        owned = np.flatnonzero(owner >= 0)
        self.order = owned[np.argsort(owner[owned], kind="stable")]
        present, self.starts = np.unique(owner[self.order], return_index=True)
        self.present = present.astype(np.intp)
        self.features = features

    def __call__(self, terms: np.ndarray) -> np.ndarray:
        """(rows, terms, outputs) -> (rows, features, outputs)."""
        out = np.zeros((terms.shape[0], self.features, terms.shape[2]))
        if len(self.order):
            out[:, self.present] = np.add.reduceat(terms[:, self.order], self.starts, axis=1)
        return out
