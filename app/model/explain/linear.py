"""Linear models, exactly: a feature's contribution is its columns' ``coef * (x - training mean)``.

A linear model over columns that each come from one feature (players.py) is a sum of one function
per feature, so each feature's Shapley value against the training rows is exactly its own terms
minus their training mean, and the baseline is the output at the training mean of the columns.
"""
from __future__ import annotations

import numpy as np

from ..compiled.linear import LinearSum
from .attribution import Attribution, PerFeature


class LinearContributions:
    method = "linear"
    exact = True

    def __init__(self, terms: LinearSum, owner: np.ndarray, features: int, input_mean: np.ndarray,
                 columns: list[int] | None):
        coef = terms.coef if columns is None else terms.coef[:, columns]
        intercept = terms.intercept if columns is None else terms.intercept[columns]
        self.mean = np.asarray(input_mean, dtype="float64")
        if self.mean.shape != (coef.shape[0],):
            raise ValueError(f"the training mean has {self.mean.size} columns, the model {coef.shape[0]}")
        self.coef = coef
        self.baseline = self.mean @ coef + intercept
        self.per_feature = PerFeature(owner, features)

    def attribute(self, matrix: np.ndarray) -> Attribution:
        """``matrix``: the estimator's input rows."""
        centered = matrix - self.mean  # (rows, columns)
        return Attribution(self.baseline, self.per_feature(centered[:, :, None] * self.coef[None]))
