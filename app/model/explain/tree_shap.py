"""Trees, forests and boosting, exactly: TreeSHAP, vectorised over every leaf of every tree.

TreeSHAP (Lundberg et al., 2020) gives each feature its Shapley value in the game where a coalition
S of features is worth the trees' output expected when only S is known: at a split on a feature in
S the row goes its own way, at any other split both ways, weighted by how many training samples
went each way (the node's cover). The players are the client's features (players.py): a feature's
splits, one-hot columns included, are one player. The baseline, the worth of knowing nothing, is
the output averaged over the training samples as the trees saw them.

The game is a sum over leaves. A leaf is reached with weight ``prod_j (o_j if j in S else z_j)``
over the features j split on its path: ``z_j`` the product of the cover fractions of j's splits,
``o_j`` 1 if the row takes the path at all of them, else 0. Feature i's Shapley value in one leaf's
game is ``value * (o_i - z_i) * integral_0^1 prod_{j != i} (t o_j + (1 - t) z_j) dt`` (the Shapley
weights are that Beta integral), a polynomial in t integrated exactly by Gauss-Legendre quadrature
with half as many points as the path has features. So a row costs a few NumPy operations over all
(leaf, feature) pairs at once; the routing of the row through every split is the compiled
backend's own (app/model/compiled/trees.py), so a gap or a category goes where the prediction
sends it.
"""
from __future__ import annotations

import math

import numpy as np

from ..compiled.trees import TreeSum
from .attribution import Attribution, PerFeature

CELLS = 1 << 17  # rows x (leaf, feature) pairs x quadrature points at once: 1 MB arrays stay in cache


class TreeContributions:
    method = "tree-shap"
    exact = True

    def __init__(self, terms: TreeSum, owner: np.ndarray, features: int, columns: list[int] | None):
        ensemble = self.ensemble = terms.ensemble
        splits, nodes = ensemble.splits, len(ensemble.source)
        values = ensemble.leaf if columns is None else ensemble.leaf[:, columns]
        values = values * terms.scale  # (nodes, outputs); only the leaves' rows are used
        if not (ensemble.cover > 0).all():
            raise ValueError("a tree has a node no training sample reached (zero cover)")
        parent = np.full(nodes, -1, dtype=np.intp)
        parent[ensemble.children[:splits, 0]] = np.arange(splits)
        parent[ensemble.children[:splits, 1]] = np.arange(splits)
        leaves = np.arange(splits, nodes)

        # every (leaf, split above it, the child the leaf's path takes there), from the leaves up
        at_leaf, at_node, took = [], [], []
        position, child = np.arange(len(leaves)), leaves.copy()
        while len(child):
            above = parent[child]
            keep = above >= 0
            position, child, above = position[keep], child[keep], above[keep]
            at_leaf.append(position), at_node.append(above), took.append(child)
            child = above
        at_leaf, at_node, took = (np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
                                  for parts in (at_leaf, at_node, took))
        player = owner[ensemble.source[at_node]]
        if (player < 0).any():
            raise ValueError("a split reads a column no feature moves")
        fraction = ensemble.cover[took] / ensemble.cover[at_node]

        # (leaf, feature) pairs: a feature split several times on a path is one player there
        key = at_leaf * features + player
        order = np.argsort(key, kind="stable")
        pair_key, pair_start = np.unique(key[order], return_index=True)
        self.split_node, self.split_child, self.pair_start = at_node[order], took[order], pair_start
        self.zero = np.multiply.reduceat(fraction[order], pair_start) if len(order) else np.zeros(0)
        pair_leaf, self.pair_player = pair_key // features, pair_key % features
        active, self.leaf_start, self.pair_leaf = np.unique(pair_leaf, return_index=True, return_inverse=True)
        self.pair_value = values[leaves[pair_leaf]]  # (pairs, outputs)

        # the baseline: each leaf's value weighted by the share of training samples that reach it
        reach = np.ones(len(leaves))
        if len(active):
            reach[active] = np.multiply.reduceat(self.zero, self.leaf_start)
        self.baseline = reach @ values[leaves]

        longest = int(np.bincount(pair_leaf).max()) if len(pair_leaf) else 0
        points, weights = np.polynomial.legendre.leggauss(max(1, math.ceil(longest / 2)))
        t = (points + 1) / 2
        self.weights = weights / 2
        self.known = t + (1 - t) * self.zero[:, None]  # (pairs, points): the factor where o = 1
        self.unknown = (1 - t) * self.zero[:, None]  # where o = 0
        self.per_feature = PerFeature(self.pair_player, features)
        self.features, self.outputs = features, values.shape[1]
        self.chunk = max(1, CELLS // max(1, len(pair_key) * len(t)))

    def attribute(self, matrix: np.ndarray) -> Attribution:
        """``matrix``: the estimator's input rows."""
        if not len(self.zero):  # every tree is a single leaf
            return Attribution(self.baseline, np.zeros((len(matrix), self.features, self.outputs)))
        parts = [self._contributions(matrix[i:i + self.chunk]) for i in range(0, len(matrix), self.chunk)]
        return Attribution(self.baseline, parts[0] if len(parts) == 1 else np.concatenate(parts))

    def _contributions(self, rows: np.ndarray) -> np.ndarray:
        ensemble, splits = self.ensemble, self.ensemble.splits
        goes_first = ensemble.goes_first(rows)  # (rows, splits)
        routed = ensemble.second[:splits] + goes_first * ensemble.step[:splits]  # each split's next node
        on_path = routed[:, self.split_node] == self.split_child  # (rows, path steps)
        known = np.logical_and.reduceat(on_path, self.pair_start, axis=1)  # o per (leaf, feature) pair
        factor = np.where(known[:, :, None], self.known, self.unknown)  # (rows, pairs, points): t o + (1 - t) z
        whole = np.multiply.reduceat(factor, self.leaf_start, axis=1)  # product over each leaf's pairs
        integral = (whole[:, self.pair_leaf, :] / factor) @ self.weights  # the product without the pair itself
        weight = (known - self.zero) * integral  # (rows, pairs)
        return self.per_feature(weight[:, :, None] * self.pair_value)  # (rows, features, outputs)
