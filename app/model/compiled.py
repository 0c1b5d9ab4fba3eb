"""The compiled backend: a fitted Pipeline's arithmetic in plain NumPy, for single rows and batches.

scikit-learn spends milliseconds per call on input validation, per-step checks and thread pools;
the model's own arithmetic for one row takes microseconds. ``compile_pipeline`` reads the fitted
parameters of the supported steps and replays exactly that arithmetic in float64 (trees compare
float32-rounded inputs, as scikit-learn does), so results match scikit-learn to rounding error.
Anything it does not recognise raises ``Unsupported`` and the caller keeps scikit-learn; the
registry also checks every compiled model against scikit-learn before serving it.

Input is the matrix the decoder (app/model/decoding.py) produces: one float64 column per feature in schema order, NaN for
a gap, and for a category feature the category's index in the schema's list.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.special import expit, softmax
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from .contract import CATEGORY, Decoded, Schema

Transform = Callable[[np.ndarray], np.ndarray]


class Unsupported(Exception):
    """The Pipeline has a step or setting the compiled backend does not replicate."""


@dataclass(frozen=True)
class CompiledPipeline:
    transform: Transform  # decoded matrix -> the classifier's input
    classify: Transform  # classifier input -> class probabilities
    kind: str

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return self.classify(self.transform(matrix))


def compile_pipeline(pipeline, schema: Schema) -> CompiledPipeline:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise Unsupported("expected Pipeline([preprocess, classifier])")
    preprocess, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    transform = _compile_preprocess(preprocess, schema)
    classify, kind = _compile_classifier(classifier)
    return CompiledPipeline(transform=transform, classify=classify, kind=kind)


# ---- preprocessing ----------------------------------------------------------------------------
def _compile_preprocess(transformer, schema: Schema) -> Transform:
    if not isinstance(transformer, ColumnTransformer) or transformer.remainder not in ("drop",):
        raise Unsupported("expected a ColumnTransformer that drops the remainder")
    position = {name: i for i, name in enumerate(schema.names)}
    parts: list[Transform] = []
    for name, step, columns in transformer.transformers_:
        if name == "remainder" or step == "drop":
            continue
        if not all(c in position for c in columns):
            raise Unsupported(f"transformer {name!r} uses columns outside the schema")
        indices = np.array([position[c] for c in columns])
        kinds = {schema.features[i].kind for i in indices}
        if kinds == {CATEGORY}:
            parts.append(_compile_categories(step, [schema.features[i] for i in indices], indices))
        elif CATEGORY not in kinds:
            parts.append(_compile_numbers(step, indices))
        else:
            raise Unsupported(f"transformer {name!r} mixes numbers and categories")
    if not parts:
        raise Unsupported("no transformers")
    if len(parts) == 1:
        return parts[0]
    return lambda matrix: np.hstack([part(matrix) for part in parts])


def _compile_numbers(step, indices: np.ndarray) -> Transform:
    steps = step.steps if isinstance(step, Pipeline) else [("only", step)]
    fill = None
    mean = scale = None
    for _, transformer in steps:
        if isinstance(transformer, SimpleImputer) and fill is None and mean is None:
            if transformer.add_indicator or not _nan_marker(transformer.missing_values):
                raise Unsupported("imputer with an indicator or a non-NaN marker")
            fill = np.asarray(transformer.statistics_, dtype="float64")
        elif isinstance(transformer, StandardScaler) and mean is None:
            mean = transformer.mean_ if transformer.with_mean else np.zeros(len(indices))
            scale = transformer.scale_ if transformer.with_std else np.ones(len(indices))
        else:
            raise Unsupported(f"numeric step {type(transformer).__name__}")

    contiguous = bool(np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))))
    columns = slice(int(indices[0]), int(indices[0]) + len(indices)) if contiguous else indices

    def transform(matrix: np.ndarray) -> np.ndarray:
        values = matrix[:, columns]
        if fill is not None:
            gaps = np.isnan(values)
            if gaps.any():
                values = np.where(gaps, fill, values)
        if mean is not None:
            values = (values - mean) / scale
        return values

    return transform


def _compile_categories(step, features: Sequence, indices: np.ndarray) -> Transform:
    steps = step.steps if isinstance(step, Pipeline) else [("only", step)]
    fill_value = None
    encoder = None
    for _, transformer in steps:
        if isinstance(transformer, SimpleImputer) and encoder is None and transformer.strategy == "constant":
            if transformer.add_indicator:
                raise Unsupported("imputer with an indicator")
            fill_value = transformer.fill_value
        elif isinstance(transformer, OneHotEncoder) and encoder is None:
            encoder = transformer
        else:
            raise Unsupported(f"category step {type(transformer).__name__}")
    if encoder is None or encoder.drop is not None or encoder.handle_unknown != "ignore":
        raise Unsupported("expected OneHotEncoder(handle_unknown='ignore') without drop")
    if getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("infrequent categories")
    # For each feature: a lookup from the schema's category index (last slot: a gap) to the
    # one-hot column it lights up, or -1 for none (an unseen category is all zeros, as in sklearn).
    lookups, offset = [], 0
    for feature, categories in zip(features, encoder.categories_):
        where = {str(c): i for i, c in enumerate(categories)}
        table = [where.get(c, -1) for c in feature.categories]
        gap = where.get(str(fill_value), -1) if fill_value is not None else -1
        lookups.append(np.array(table + [gap]) + np.where(np.array(table + [gap]) >= 0, offset, 0))
        offset += len(categories)
    width = offset

    def transform(matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((matrix.shape[0], width))
        rows = np.arange(matrix.shape[0])
        for lookup, column in zip(lookups, indices):
            codes = matrix[:, column]
            codes = np.where(np.isnan(codes), len(lookup) - 1, codes).astype(np.intp)
            hot = lookup[codes]
            lit = hot >= 0
            out[rows[lit], hot[lit]] = 1.0
        return out

    return transform


def _nan_marker(value) -> bool:
    return isinstance(value, float) and np.isnan(value)


# ---- classifiers ------------------------------------------------------------------------------
def _compile_classifier(classifier) -> tuple[Transform, str]:
    if isinstance(classifier, CalibratedClassifierCV):
        return _compile_calibrated_svm(classifier), "calibrated-svm"
    if isinstance(classifier, LogisticRegression):
        return _compile_logistic(classifier), "logistic-regression"
    if isinstance(classifier, RandomForestClassifier):
        return _compile_forest(classifier), "random-forest"
    raise Unsupported(f"classifier {type(classifier).__name__}")


def _compile_calibrated_svm(classifier: CalibratedClassifierCV) -> Transform:
    if len(classifier.classes_) != 2 or len(classifier.calibrated_classifiers_) != 1:
        raise Unsupported("only a two-class CalibratedClassifierCV with ensemble=False")
    calibrated = classifier.calibrated_classifiers_[0]
    svc = calibrated.estimator
    if calibrated.method != "sigmoid" or not isinstance(calibrated.calibrators[0], _SigmoidCalibration):
        raise Unsupported("only sigmoid calibration")
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or len(svc.classes_) != 2:
        raise Unsupported("only a two-class RBF SVC")
    vectors = np.ascontiguousarray(svc.support_vectors_, dtype="float64")
    coefficients = svc.dual_coef_[0].astype("float64")
    intercept = float(svc.intercept_[0])
    gamma = float(svc._gamma)
    a, b = float(calibrated.calibrators[0].a_), float(calibrated.calibrators[0].b_)
    gamma_norms = gamma * np.einsum("ij,ij->i", vectors, vectors)
    scaled_vectors_t = np.ascontiguousarray((2.0 * gamma) * vectors.T)

    def classify(features: np.ndarray) -> np.ndarray:
        if len(features) == 1:  # the common case: fewer, cheaper NumPy calls
            difference = vectors - features[0]
            decision = float(np.exp(np.einsum("ij,ij->i", difference, difference) * -gamma) @ coefficients) + intercept
            exponent = a * decision + b
            positive = 0.0 if exponent > 700.0 else 1.0 / (1.0 + math.exp(exponent))  # expit(-exponent)
            return np.array([[1.0 - positive, positive]])
        # exp(-gamma * |x - v|^2) with |x - v|^2 = |x|^2 + |v|^2 - 2 x.v, computed in place
        kernel = features @ scaled_vectors_t
        kernel -= gamma * np.einsum("ij,ij->i", features, features)[:, None]
        kernel -= gamma_norms
        np.minimum(kernel, 0.0, out=kernel)
        np.exp(kernel, out=kernel)
        decision = kernel @ coefficients + intercept
        positive = expit(-(a * decision + b))
        return np.column_stack([1.0 - positive, positive])

    return classify


def _compile_logistic(classifier: LogisticRegression) -> Transform:
    coef = classifier.coef_.astype("float64")
    intercept = classifier.intercept_.astype("float64")
    binary = len(classifier.classes_) == 2
    if binary and coef.shape[0] != 1:
        raise Unsupported("unexpected binary coefficients")

    def classify(features: np.ndarray) -> np.ndarray:
        decision = features @ coef.T + intercept
        if binary:
            positive = expit(decision[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(decision, axis=1)

    return classify


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


# ---- verification -----------------------------------------------------------------------------
TOLERANCE = 1e-9  # far inside the 1e-5 the service promises; rounding differences are ~1e-13


class Mismatch(Exception):
    """The compiled backend disagrees with scikit-learn; the model is served by scikit-learn."""


def verify(compiled: CompiledPipeline, pipeline, schema: Schema, matrix: np.ndarray) -> float:
    """Compare with scikit-learn on ``matrix``; return the largest probability difference."""
    expected = np.asarray(pipeline.predict_proba(Decoded(matrix, [], schema).frame), dtype="float64")
    got = compiled.predict_proba(matrix)
    if got.shape != expected.shape:
        raise Mismatch(f"shape {got.shape} instead of {expected.shape}")
    difference = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not difference <= TOLERANCE:
        raise Mismatch(f"probabilities differ by up to {difference:.3g}")
    if not np.array_equal(got.argmax(axis=1), expected.argmax(axis=1)):
        raise Mismatch("labels differ")
    return difference


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
