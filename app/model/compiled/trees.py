"""Decision trees and their ensembles, flattened into node tables."""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from .program import Estimator, Transform, Unsupported, compiles


@compiles(RandomForestClassifier)
def forest(classifier: RandomForestClassifier) -> Estimator:
    return Estimator(kind="random-forest", probabilities=_compile_forest(classifier))


FOREST_CELLS = 1 << 21  # rows x nodes compared at once; bounds the memory of a large batch


def _compile_forest(forest: RandomForestClassifier) -> Transform:
    """All trees flattened into one node table.

    A row's comparison is evaluated at every node at once (one vectorised compare), then each
    tree is walked a level per step by table look-ups; leaves point to themselves. A single row
    first turns the comparisons into each node's next node, so a level is one look-up.
    """
    if forest.n_outputs_ != 1:
        raise Unsupported("only single-output forests")
    n_classes = len(forest.classes_)
    features, thresholds, children, values, roots = [], [], [], [], []
    offset, depth = 0, 0
    for tree in forest.estimators_:
        t = tree.tree_
        if np.any(np.isnan(t.threshold)):
            raise Unsupported("trees with missing-value splits")
        leaf = t.children_left == -1
        nodes = np.arange(t.node_count)
        features.append(np.where(leaf, 0, t.feature))
        thresholds.append(np.where(leaf, np.inf, t.threshold))
        left = np.where(leaf, nodes, t.children_left) + offset
        right = np.where(leaf, nodes, t.children_right) + offset
        children.append(np.column_stack([right, left]).ravel())  # [2n] when x > t, [2n + 1] when x <= t
        proba = t.value[:, 0, :n_classes].astype("float64")
        totals = proba.sum(axis=1, keepdims=True)
        values.append(np.divide(proba, totals, out=np.zeros_like(proba), where=totals != 0))
        roots.append(offset)
        offset += t.node_count
        depth = max(depth, t.max_depth)
    feature_of = np.concatenate(features)
    threshold_of = np.concatenate(thresholds)
    child_of = np.concatenate(children)
    value_of = np.concatenate(values)
    start = np.array(roots)
    n_trees = len(roots)
    left_of, right_of = child_of[1::2], child_of[0::2]

    chunk = max(1, FOREST_CELLS // len(feature_of))

    def walk_one(x: np.ndarray) -> np.ndarray:
        next_of = np.where(x[feature_of] <= threshold_of, left_of, right_of)
        node = start
        for _ in range(depth):
            node = next_of[node]
        return (value_of.take(node, axis=0).sum(axis=0) / n_trees)[None, :]

    def walk(x: np.ndarray) -> np.ndarray:
        goes_left = (x[:, feature_of] <= threshold_of).view(np.int8)  # (rows, every node)
        node = np.broadcast_to(start, (len(x), n_trees)).copy()
        row_index = np.arange(len(x))[:, None]
        for _ in range(depth):
            node = child_of[2 * node + goes_left[row_index, node]]
        return value_of[node].sum(axis=1) / n_trees

    def classify(rows: np.ndarray) -> np.ndarray:
        x = rows.astype(np.float32)  # scikit-learn's trees compare float32 inputs (with float64 thresholds)
        if len(x) == 1:
            return walk_one(x[0])
        if len(x) <= chunk:
            return walk(x)
        return np.concatenate([walk(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    return classify
