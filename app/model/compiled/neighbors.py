"""k-nearest neighbours: distances to every training row (brute force on ``_fit_X``).

Distances are computed as scikit-learn's search computes them, so they round alike: as sums over
the differences for every metric and search (a KD or ball tree, or brute force), except
euclidean by brute force, which scikit-learn computes as |x|^2 - 2 x.y + |y|^2 with a matrix
product (replayed here, equal only up to rounding).

Which rows are the k nearest is then unambiguous except when the k-th and the next distance are
equal, or too close for rounding to order them the same way (or, with distance weights, a
matrix-product distance too small to invert precisely). scikit-learn resolves such ties by the
order of its search (a tree's traversal, or its heap and threads), which depends on the batch.
A batch with such a row is answered by the scikit-learn estimator itself on the compiled
features (no Pipeline, no validation), so the answer stays scikit-learn's; data where ties are
the rule (e.g. Chebyshev distances over one-hot columns) therefore gain less.

With ``weights="distance"`` a row at distance 0 from training rows gets exactly those rows'
labels, as scikit-learn's rule does.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import sklearn
from scipy import sparse
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from ..tiles import whole_tiles
from .program import Estimator, Unsupported, compiles

DISTANCE_CELLS = 1 << 17  # numbers held at once while measuring distances: a batch's memory stays in cache
RELATIVE_TIE = 1e-12  # distances this close (relatively) are treated as a tie: a few roundings apart
Search = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, bool]]  # features -> distances, indices, tied


@compiles(KNeighborsClassifier)
def k_neighbors_classifier(model: KNeighborsClassifier) -> Estimator:
    if getattr(model, "outputs_2d_", False):
        raise Unsupported("a k-nearest-neighbours classifier with several outputs")
    search = _search(model)
    labels = np.asarray(model._y, dtype=np.intp)
    n_classes = len(model.classes_)
    weigh = _weights(model)

    def probabilities(features: np.ndarray) -> np.ndarray:
        distances, indices, tied = search(features)
        if tied:
            return _scikit_learn(model.predict_proba, features)
        votes = labels[indices]
        weights = weigh(distances)
        out = np.zeros((len(features), n_classes))
        rows = np.arange(len(features))
        for place in range(votes.shape[1]):  # in order of distance, as scikit-learn adds them
            out[rows, votes[:, place]] += weights[:, place]
        out /= out.sum(axis=1)[:, None]
        return out
    return Estimator(kind="k-nearest-neighbours", probabilities=probabilities)


@compiles(KNeighborsRegressor)
def k_neighbors_regressor(model: KNeighborsRegressor) -> Estimator:
    targets = np.asarray(model._y, dtype="float64")
    if targets.ndim != 1:
        raise Unsupported("a k-nearest-neighbours regressor with several outputs")
    search = _search(model)
    uniform = model.weights == "uniform"
    weigh = _weights(model)

    def values(features: np.ndarray) -> np.ndarray:
        distances, indices, tied = search(features)
        if tied:
            return np.asarray(_scikit_learn(model.predict, features), dtype="float64").reshape(len(features))
        if uniform:
            return np.mean(targets[indices][:, :, None], axis=1)[:, 0]
        weights = weigh(distances)
        return np.sum(targets[indices] * weights, axis=1) / np.sum(weights, axis=1)
    return Estimator(kind="k-nearest-neighbours", values=values)


def _scikit_learn(method: Callable[[np.ndarray], Any], features: np.ndarray) -> np.ndarray:
    """The estimator's own answer on the compiled features, for a batch with a tie."""
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fitted with feature names: these are the same columns
        return np.asarray(method(features), dtype="float64")


def _weights(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    if model.weights == "uniform":
        return np.ones_like
    if model.weights != "distance":
        raise Unsupported("k-nearest neighbours with a weight function")

    def by_distance(distances: np.ndarray) -> np.ndarray:
        """1/d, except that a row with any neighbour at distance 0 weighs those 1 and the rest 0."""
        with np.errstate(divide="ignore"):
            weights = 1.0 / distances
        infinite = np.isinf(weights)
        touching = infinite.any(axis=1)
        if touching.any():
            weights[touching] = infinite[touching]
        return weights
    return by_distance


def _search(model: Any) -> Search:
    """features -> (distances, indices) of the k nearest training rows, nearest first, and
    whether any row's k nearest are ambiguous (see the module's docstring)."""
    method = model._fit_method
    if method not in ("brute", "kd_tree", "ball_tree"):
        raise Unsupported(f"k-nearest neighbours searched by {method!r}")
    training = model._fit_X
    training = np.ascontiguousarray(training.toarray() if sparse.issparse(training) else training, dtype="float64")
    if training.ndim != 2:
        raise Unsupported("k-nearest neighbours fitted on something else than rows of numbers")
    k = int(model.n_neighbors)
    if not 0 < k <= len(training):
        raise Unsupported("more neighbours than training rows")
    metric = _Metric(model, training, method)
    chunk = whole_tiles(DISTANCE_CELLS // metric.cells_per_row)  # app/model/tiles.py

    def search(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        if len(features) <= chunk:
            return _nearest(metric, features, k)
        parts = [_nearest(metric, features[i:i + chunk], k) for i in range(0, len(features), chunk)]
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                any(p[2] for p in parts))
    return search


class _Metric:
    """Distances from rows of features to every training row, as scikit-learn's search computes
    them, with how far scikit-learn's own numbers may be from them.

    ``rounding`` (brute-force euclidean only) bounds, per row, the error of scikit-learn's
    matrix-product squared distances; elsewhere its distances are the same sums as these, up to
    the order of a few additions (``RELATIVE_TIE`` covers that)."""

    def __init__(self, model: Any, training: np.ndarray, method: str):
        metric = model.effective_metric_
        params = {key: value for key, value in (model.effective_metric_params_ or {}).items() if value is not None}
        p = params.pop("p", None)
        if params:
            raise Unsupported(f"k-nearest neighbours with metric parameters {sorted(params)}")
        if metric == "minkowski" and p in (1, 2, np.inf):
            metric = {1: "manhattan", 2: "euclidean", np.inf: "chebyshev"}[p]
        if metric == "minkowski" and not (p is not None and 1 <= p < np.inf):
            raise Unsupported(f"k-nearest neighbours with Minkowski p={p}")
        if metric not in ("euclidean", "manhattan", "chebyshev", "minkowski"):
            raise Unsupported(f"k-nearest neighbours with metric {metric!r}")
        self.metric, self.p = metric, p
        self.training = training
        self.training_t = np.ascontiguousarray(training.T)
        self.training_norms = np.einsum("ij,ij->i", training, training)
        self.largest_norm = float(self.training_norms.max())
        self.by_product = metric == "euclidean" and method == "brute"
        # every product x.y sums `features` terms: a generous bound on the rounding of |x - y|^2
        self.unit_rounding = 16 * max(1, training.shape[1]) * np.finfo("float64").eps
        self.weighs_by_distance = model.weights == "distance"
        self.cells_per_row = len(training) * (1 if metric == "euclidean" else max(1, training.shape[1]))

    def many(self, features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(rows, training rows) distances, exact wherever they can matter, and the bound."""
        if np.isnan(features).any():  # scikit-learn's answer is its own: leave it to it
            return np.full((len(features), len(self.training)), np.nan), None
        if self.metric != "euclidean":
            differences = features[:, None, :] - self.training[None, :, :]
            np.abs(differences, out=differences)
            if self.metric == "manhattan":
                return differences.sum(axis=2), None
            if self.metric == "chebyshev":
                return differences.max(axis=2), None
            np.power(differences, self.p, out=differences)
            return differences.sum(axis=2) ** (1.0 / self.p), None
        norms = np.einsum("ij,ij->i", features, features)
        squared = features @ self.training_t  # in place from here: large temporaries cost page faults
        squared *= -2.0
        squared += norms[:, None]  # |x|^2 + (-2 x.y), then + |y|^2, as scikit-learn adds them
        squared += self.training_norms
        np.maximum(squared, 0.0, out=squared)
        rounding = (self.unit_rounding * (norms + self.largest_norm))[:, None]
        if self.by_product:
            return np.sqrt(squared, out=squared), rounding
        # A tree's distances are direct sums: the product only finds the rows that can be among
        # the k + 1 nearest (within the rounding bound); those are measured directly.
        if k < squared.shape[1]:
            bound = np.partition(squared, k, axis=1)[:, k:k + 1] + 2 * rounding
            rows, columns = np.nonzero(squared <= bound)
        else:
            rows, columns = np.divmod(np.arange(squared.size), squared.shape[1])
        difference = features[rows] - self.training[columns]
        distances = np.full(squared.shape, np.inf)
        distances[rows, columns] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
        return distances, None


def _nearest(metric: _Metric, features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The k smallest distances per row, nearest first, and whether any row's choice or weights
    could differ from scikit-learn's (then the batch is scikit-learn's, so how equal distances
    at the k-th place are split here does not matter)."""
    distances, rounding = metric.many(features, k)
    if np.isnan(distances).any():
        return distances[:, :k], np.zeros((len(distances), k), dtype=np.intp), True
    tied = False
    if k < distances.shape[1]:
        split = np.argpartition(distances, (k - 1, k), axis=1)
        indices = split[:, :k]
        kth = np.take_along_axis(distances, split[:, k - 1:k], axis=1)
        following = np.take_along_axis(distances, split[:, k:k + 1], axis=1)
        tied = bool(np.any(following - kth <= RELATIVE_TIE * following))
        if not tied and rounding is not None:
            tied = bool(np.any(following * following - kth * kth <= 2 * rounding))
    else:
        indices = np.broadcast_to(np.arange(distances.shape[1]), distances.shape)
    nearest = np.take_along_axis(distances, indices, axis=1)
    order = np.argsort(nearest, axis=1, kind="stable")
    nearest = np.take_along_axis(nearest, order, axis=1)
    if not tied and rounding is not None and metric.weighs_by_distance:
        tied = bool(np.any(nearest[:, :1] ** 2 <= rounding * 1e10))
    return nearest, np.take_along_axis(indices, order, axis=1), tied
