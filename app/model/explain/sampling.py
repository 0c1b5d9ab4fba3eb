"""Any other model, approximately: Shapley values against a sample of training rows.

A coalition S of features is worth the model's output averaged over the background rows (up to
100 training rows stored with the version, reference.py) with the features in S set to the
row's own values ("interventional" Shapley values). The baseline, the worth of knowing nothing, is
the output averaged over the background rows. The contributions add up exactly to the row's output
minus the baseline, whatever the sample; what is approximate is the sample standing for the
training data and, with many features, the sampled orders.

With few features every coalition is scored (``2**features`` coalitions x background rows, at most
``BUDGET`` rows scored per explained row, fewer background rows used when needed, at least
``FEWEST_ROWS``); beyond that, features join in random orders, each order with its reverse
(antithetic sampling), fixed once per model so a row always gets the same explanation.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .attribution import Attribution

BUDGET = 16_384  # rows scored per explained row
FEWEST_ROWS = 8  # background rows below which coalitions are sampled instead of enumerated
SAMPLED_ROWS = 16  # background rows used when coalitions are sampled


class SampledContributions:
    exact = False

    def __init__(self, score: Callable[[np.ndarray], np.ndarray], background: np.ndarray, seed: int = 0):
        """``score``: decoded rows -> the explained outputs (rows, outputs); ``background``:
        decoded rows."""
        self.score = score
        features = background.shape[1]
        self.features = features
        usable = BUDGET // 2 ** features if features < 30 else 0
        if usable >= min(len(background), FEWEST_ROWS):
            self.method = "background-shapley"
            self.background = background[:max(1, min(len(background), usable))]
            self._plan_coalitions(features)
        else:
            self.method = "permutation-shapley"
            self.background = background[:SAMPLED_ROWS]
            orders = max(1, BUDGET // ((features + 1) * len(self.background)) // 2)
            self._plan_orders(features, orders, seed)
        self.background_scores = score(self.background)
        self.baseline = self.background_scores.mean(axis=0)

    def _plan_coalitions(self, features: int) -> None:
        """Every coalition but the empty and the full one (their worth is known), and the Shapley
        weight of each coalition's worth in each feature's value."""
        count = 2 ** features
        members = (np.arange(count)[:, None] >> np.arange(features)) & 1  # (coalitions, features)
        size = members.sum(axis=1)
        weight = [math.factorial(s) * math.factorial(features - s - 1) / math.factorial(features)
                  for s in range(features)]
        # phi_i = sum over S without i of w(|S|) (v(S + i) - v(S)): +w(|S| - 1) where i is in S, -w(|S|) where not
        self.shapley = np.where(members.T == 1, np.array([weight[s - 1] if s else 0.0 for s in size]),
                                -np.array([weight[s] if s < features else 0.0 for s in size]))
        self.members = members[1:-1].astype(bool)

    def _plan_orders(self, features: int, orders: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        forward = np.array([rng.permutation(features) for _ in range(orders)])
        self.orders = np.concatenate([forward, forward[:, ::-1]])  # (orders, features)
        # after k features of an order joined: which features are the row's
        joined = np.zeros((len(self.orders), features + 1, features), dtype=bool)
        for k in range(1, features + 1):
            joined[np.arange(len(self.orders))[:, None], k, self.orders[:, :k]] = True
        self.joined = joined[:, 1:-1]  # the first and the last step's worth are known

    def attribute(self, matrix: np.ndarray) -> Attribution:
        rows = [self._one(row) for row in matrix]
        return Attribution(self.baseline, np.stack(rows))

    def _worth(self, row: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(masks..., outputs): the output averaged over the background with the masked features
        set to the row's values."""
        shape = masks.shape[:-1]
        if not masks.size:  # one feature: no coalition between the empty and the full one
            return np.zeros((*shape, len(self.baseline)))
        flat = masks.reshape(-1, 1, self.features)
        hybrids = np.where(flat, row, self.background[None]).reshape(-1, self.features)
        scores = self.score(hybrids).reshape(len(flat), len(self.background), -1).mean(axis=1)
        return scores.reshape(*shape, -1)

    def _one(self, row: np.ndarray) -> np.ndarray:
        """(features, outputs) for one decoded row."""
        own = self.score(row[None])[0]
        if self.method == "background-shapley":
            worth = np.concatenate([self.baseline[None], self._worth(row, self.members), own[None]])
            return self.shapley @ worth
        steps = self._worth(row, self.joined)  # (orders, features - 1, outputs)
        outputs = len(own)
        path = np.concatenate([np.broadcast_to(self.baseline, (len(self.orders), 1, outputs)), steps,
                               np.broadcast_to(own, (len(self.orders), 1, outputs))], axis=1)
        gains = np.diff(path, axis=1)  # (orders, features, outputs): what each joining feature added
        contributions = np.zeros((self.features, outputs))
        np.add.at(contributions, self.orders.reshape(-1), gains.reshape(-1, outputs))
        return contributions / len(self.orders)
