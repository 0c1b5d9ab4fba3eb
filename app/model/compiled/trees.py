"""Decision trees and their ensembles (forests, gradient boosting, histogram gradient boosting),
flattened into one node table per model and walked in NumPy.

Every model here is a sum of trees: ``raw = start + tree_1(x) + tree_2(x) + ...`` (a forest then
divides by its size, a boosted model applies its link). Each tree's leaf holds a vector over the
model's outputs (classes, or one value), so a multiclass booster's per-class trees add zeros to
the other classes. The sum runs in scikit-learn's order, one tree after the other
(``np.add.accumulate``, never NumPy's pairwise ``sum``), so results are bit for bit scikit-learn's
and a tie (two classes at 0.5) breaks the same way.

How a node sends a row (scikit-learn's Cython, replayed exactly):

- sklearn trees (DecisionTree*, RandomForest*, ExtraTrees*): the input cast to float32, compared
  with a float64 threshold, ``x <= t`` goes left; NaN follows ``missing_go_to_left``.
- GradientBoosting*: the same cast, but its Cython ignores ``missing_go_to_left``: NaN goes right
  (it cannot be fitted with gaps, but scikit-learn called with ``assume_finite`` routes them so).
- HistGradientBoosting*: float64 inputs (no cast), ``x <= num_threshold`` goes left, NaN follows
  ``missing_go_to_left``. With categorical features its own OrdinalEncoder first maps each
  category value to a code (unknown: NaN); a categorical node goes left for the codes in its
  bitset, right for other known ones, and treats NaN, negative and unknown codes as missing.

Left to scikit-learn (``Unsupported``): multi-output trees, a GradientBoosting init estimator
other than the Dummy ones or 'zero' (or a random DummyClassifier), HistGradientBoosting that
encodes category names (strings, pandas categories) itself, and any link not listed in
``_boosted``.

Each node is compiled to a single test ``value <= threshold`` whose failure (NaN included) picks
its "second" child. A node whose NaN goes right tests ``x <= t`` (first: left); one whose NaN goes
left tests ``-x <= -nextafter(t, inf)``, i.e. ``x > t`` (first: right, second: left). A
categorical node tests a 0/1 value looked up from the row's category (``0 <= 0.5``: left). So a
row is extended once to ``[x, -x, category lookups]`` and every node is one compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.special import expit
from sklearn._loss.link import HalfLogitLink, IdentityLink, LogitLink, LogLink, MultinomialLogit
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.preprocessing import OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from .program import Estimator, Transform, Unsupported, compiles

CELLS = 1 << 18  # rows x trees (x outputs) handled at once: bounds memory, keeps a chunk in cache
MISSING = 256  # a categorical node's lookup slot for NaN / unknown categories (codes are 0..255)


# ---- the estimators -----------------------------------------------------------------------------
@compiles(DecisionTreeClassifier, ExtraTreeClassifier, RandomForestClassifier, ExtraTreesClassifier)
def tree_classifier(model: Any) -> Estimator:
    """A tree's probability is its leaf's class fractions (stored normalised since scikit-learn
    1.4, used as they are); a forest's is the mean over its trees, summed in order."""
    _single_output(model)
    trees = _trees_of(model)
    k = len(model.classes_)
    tables = [_sklearn_tree(t.tree_, t.tree_.value[:, 0, :k], nan_follows_flag=True) for t in trees]
    ensemble = _Ensemble(tables, model.n_features_in_, float32=True)
    count = float(len(trees))
    return Estimator(kind=_kind(model), products=False, probabilities=ensemble.compile(lambda total: total / count),
                     terms=TreeSum(ensemble, 1 / count, "mean"))


@compiles(DecisionTreeRegressor, ExtraTreeRegressor, RandomForestRegressor, ExtraTreesRegressor)
def tree_regressor(model: Any) -> Estimator:
    _single_output(model)
    trees = _trees_of(model)
    tables = [_sklearn_tree(t.tree_, t.tree_.value[:, 0, :1], nan_follows_flag=True) for t in trees]
    ensemble = _Ensemble(tables, model.n_features_in_, float32=True)
    count = float(len(trees))
    return Estimator(kind=_kind(model), products=False, values=ensemble.compile(lambda total: total[:, 0] / count),
                     terms=TreeSum(ensemble, 1 / count, "mean"))


@compiles(GradientBoostingClassifier, GradientBoostingRegressor)
def gradient_boosting(model: Any) -> Estimator:
    """The init estimator's raw prediction (constant: computed once by scikit-learn itself), then
    ``learning_rate * leaf`` per stage and tree, as ``predict_stages`` adds them."""
    start = _gradient_boosting_start(model)
    stages, per_stage = model.estimators_.shape
    tables = [_constant_tree(start)]
    for stage in range(stages):
        for k in range(per_stage):
            tree = model.estimators_[stage, k].tree_
            leaf = np.zeros((tree.node_count, per_stage))
            leaf[:, k] = model.learning_rate * tree.value[:, 0, 0]
            tables.append(_sklearn_tree(tree, leaf, nan_follows_flag=False))
    return _boosted(model, _Ensemble(tables, model.n_features_in_, float32=True))


@compiles(HistGradientBoostingClassifier, HistGradientBoostingRegressor)
def hist_gradient_boosting(model: Any) -> Estimator:
    """``_baseline_prediction`` plus every predictor's leaf (shrinkage is already in the leaves)."""
    encoding = _HistEncoding(model)
    per_stage = model.n_trees_per_iteration_
    known = encoding.known_bitsets
    tables = [_constant_tree(np.asarray(model._baseline_prediction, dtype="float64").reshape(-1))]
    for stage in model._predictors:
        for k, predictor in enumerate(stage):
            tables.append(_hist_tree(predictor, k, per_stage, encoding, known))
    return _boosted(model, _Ensemble(tables, encoding.width, float32=False, categories=encoding.columns))


def _boosted(model: Any, ensemble: _Ensemble) -> Estimator:
    """The raw sum through the loss's inverse link; ``decision`` is the raw sum as
    decision_function returns it (one column squeezed)."""
    link = type(model._loss.link)
    if hasattr(model, "classes_"):
        decision = ensemble.compile(lambda raw: raw[:, 0] if raw.shape[1] == 1 else raw)
        if link is LogitLink:
            probabilities = ensemble.compile(lambda raw: _two_columns(expit(raw[:, 0])))
            terms = TreeSum(ensemble, 1.0, "logit")
        elif link is HalfLogitLink:  # exponential loss: the log-odds are twice the raw sum
            probabilities = ensemble.compile(lambda raw: _two_columns(expit(2 * raw[:, 0])))
            terms = TreeSum(ensemble, 2.0, "logit")
        elif link is MultinomialLogit:
            probabilities = ensemble.compile(_softmax)
            terms = TreeSum(ensemble, 1.0, "multinomial")
        else:
            raise Unsupported(f"classifier link {link.__name__}")
        return Estimator(kind=_kind(model), products=False, probabilities=probabilities, decision=decision,
                         terms=terms)
    if link is IdentityLink:
        return Estimator(kind=_kind(model), products=False, values=ensemble.compile(lambda raw: raw[:, 0]),
                         terms=TreeSum(ensemble, 1.0, "identity"))
    if link is LogLink:  # poisson, gamma
        return Estimator(kind=_kind(model), products=False, values=ensemble.compile(lambda raw: np.exp(raw[:, 0])),
                         terms=TreeSum(ensemble, 1.0, "log"))
    raise Unsupported(f"regressor link {link.__name__}")


def _two_columns(positive: np.ndarray) -> np.ndarray:
    """HalfBinomialLoss.predict_proba: [1 - p, p]."""
    return np.column_stack([1 - positive, positive])


def _softmax(raw: np.ndarray) -> np.ndarray:
    """sklearn.utils.extmath.softmax, the same operations without its array-API dispatch."""
    shifted = raw - raw.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def _kind(model: Any) -> str:
    return {
        RandomForestClassifier: "random-forest", RandomForestRegressor: "random-forest",
        ExtraTreesClassifier: "extra-trees", ExtraTreesRegressor: "extra-trees",
        GradientBoostingClassifier: "gradient-boosting", GradientBoostingRegressor: "gradient-boosting",
        HistGradientBoostingClassifier: "hist-gradient-boosting",
        HistGradientBoostingRegressor: "hist-gradient-boosting",
    }.get(type(model), "decision-tree")


def _single_output(model: Any) -> None:
    if model.n_outputs_ != 1:
        raise Unsupported("multi-output trees")


def _trees_of(model: Any) -> list[Any]:
    return list(model.estimators_) if hasattr(model, "estimators_") else [model]


def _gradient_boosting_start(model: Any) -> np.ndarray:
    """The init estimator's raw prediction for any row. Only constant init estimators (the
    defaults, 'zero') are accepted; scikit-learn computes the value, so its clipping and link
    are reproduced bit for bit."""
    init = model.init_
    if isinstance(init, str):
        if init != "zero":
            raise Unsupported(f"init {init!r}")
    elif type(init) is DummyClassifier:
        if init.strategy == "stratified":  # random
            raise Unsupported("a DummyClassifier(strategy='stratified') init")
    elif type(init) is not DummyRegressor:
        raise Unsupported(f"an init estimator {type(init).__name__}")
    probe = np.zeros((1, model.n_features_in_), dtype=np.float32)
    return np.asarray(model._raw_predict_init(probe), dtype="float64")[0]


@dataclass(frozen=True)
class TreeSum:
    """A tree model as explanations (app/model/explain/) read it: ``scale`` times the ordered sum
    of its trees' leaf vectors, and what that is (``link``): "mean" (a forest's probabilities or
    values), "logit" (a binary classifier's log-odds of classes_[1]), "multinomial" (each class's
    score before a softmax), "identity" (a value) or "log" (the log of a value)."""
    ensemble: "_Ensemble"
    scale: float
    link: str


# ---- one tree as node arrays --------------------------------------------------------------------
@dataclass
class _Tree:
    """One tree, its nodes as tests ``row[feature] <= threshold`` (first child when true, second
    otherwise); a leaf has ``first == second == itself``. ``leaf`` holds each node's output vector.
    ``feature`` indexes the extended row ``[x, -x, category lookups]``; a categorical node's is
    set when the ensemble numbers its lookups (``categorical``: (node, index of its column among
    the categorical columns, 257-slot table: 0.0 left / 1.0 right per code, last slot missing))."""
    feature: np.ndarray
    threshold: np.ndarray
    first: np.ndarray
    second: np.ndarray
    leaf: np.ndarray
    depth: int
    categorical: list[tuple[int, int, np.ndarray]]
    is_leaf: np.ndarray
    # For explanations (TreeShap): each node's two children as fitted (left, right; a leaf's are
    # itself, whichever one the test picks), the input column a split reads, and how many
    # training samples (weighted) reached the node.
    children: np.ndarray  # (nodes, 2)
    source: np.ndarray  # (nodes,), -1 for a leaf
    cover: np.ndarray  # (nodes,)


def _constant_tree(value: np.ndarray) -> _Tree:
    """A one-leaf tree: how the ensemble's starting value enters the ordered sum."""
    zero = np.zeros(1, dtype=np.intp)
    return _Tree(zero, np.zeros(1), zero, zero, np.asarray(value, dtype="float64").reshape(1, -1), 0, [],
                 np.ones(1, dtype=bool), np.zeros((1, 2), dtype=np.intp), np.full(1, -1, dtype=np.intp), np.ones(1))


def _numeric_tests(feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                   nan_left: np.ndarray, leaf: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """``x <= t`` where NaN goes right; ``-x <= -nextafter(t, inf)`` (``x > t``, children swapped)
    where NaN goes left. ``width``: the input's columns (where ``-x`` starts in the extended row)."""
    nodes = np.arange(len(feature))
    threshold = np.asarray(threshold, dtype="float64")
    flip = nan_left & ~leaf
    # x > +inf never holds, and -x <= -inf would send x = +inf right: such a node always goes left.
    always_left = flip & (threshold == np.inf)
    flip &= ~always_left
    test_feature = np.where(leaf, 0, np.where(flip, feature + width, feature)).astype(np.intp)
    test_threshold = np.where(leaf, 0.0, np.where(flip, -np.nextafter(threshold, np.inf), threshold))
    first = np.where(leaf, nodes, np.where(flip, right, left)).astype(np.intp)
    second = np.where(leaf, nodes, np.where(flip | always_left, left, right)).astype(np.intp)
    return test_feature, test_threshold, first, second


def _sklearn_tree(tree: Any, leaf_values: np.ndarray, nan_follows_flag: bool) -> _Tree:
    """A ``sklearn.tree._tree.Tree``. Forest trees route NaN by ``missing_go_to_left``; the
    gradient-boosting Cython does not look at it (``x <= t`` is false: right)."""
    leaf = tree.children_left == -1
    nan_left = tree.missing_go_to_left.astype(bool) if nan_follows_flag else np.zeros(tree.node_count, dtype=bool)
    feature, threshold, first, second = _numeric_tests(
        tree.feature, tree.threshold, tree.children_left, tree.children_right, nan_left, leaf, tree.n_features)
    nodes = np.arange(tree.node_count)
    children = np.column_stack([np.where(leaf, nodes, tree.children_left), np.where(leaf, nodes, tree.children_right)])
    return _Tree(feature, threshold, first, second, np.array(leaf_values, dtype="float64").reshape(tree.node_count, -1),
                 int(tree.max_depth), [], leaf, children.astype(np.intp), np.where(leaf, -1, tree.feature).astype(np.intp),
                 np.asarray(tree.weighted_n_node_samples, dtype="float64"))


# ---- HistGradientBoosting -----------------------------------------------------------------------
class _HistEncoding:
    """What HistGradientBoosting does to its input before the trees: nothing without categorical
    features; with them, its own ``_preprocessor`` (a ColumnTransformer: an OrdinalEncoder on the
    categorical columns, placed first, then the rest unchanged). Here each tree feature is mapped
    back to its input column at compile time, and each categorical input column gets a lookup
    from value to the encoder's code (NaN, unknown values: ``MISSING``)."""

    def __init__(self, model: Any):
        self.width = model.n_features_in_
        self.input_column = np.arange(self.width)  # tree feature -> input column
        self.columns: list[tuple[int, np.ndarray]] = []  # (input column, sorted category values)
        self.column_of_feature: dict[int, int] = {}  # categorical tree feature -> index in columns
        known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
        self.known_bitsets, self.f_idx_map = known, f_idx_map
        preprocessor = model._preprocessor
        if preprocessor is None:
            return
        order = np.empty(self.width, dtype=np.intp)
        for name, step, selected in preprocessor.transformers_:
            indices = np.arange(self.width)[selected] if len(selected) else np.array([], dtype=np.intp)
            if name == "remainder":
                if step != "drop" or len(indices):
                    raise Unsupported("HistGradientBoosting preprocessor with a remainder")
                continue
            order[preprocessor.output_indices_[name]] = indices
            if name == "encoder":
                if (type(step) is not OrdinalEncoder or step.handle_unknown != "use_encoded_value"
                        or not _is_nan(step.unknown_value) or not _is_nan(step.encoded_missing_value)):
                    raise Unsupported("unexpected HistGradientBoosting category encoder")
                start = preprocessor.output_indices_[name].start
                for j, (column, categories) in enumerate(zip(indices, step.categories_)):
                    if categories.dtype.kind not in "fiub":
                        raise Unsupported("HistGradientBoosting encoding category names itself (categories from "
                                          "pandas dtypes): encode them before it, e.g. with an OrdinalEncoder")
                    values = np.asarray(categories, dtype="float64")
                    self.column_of_feature[start + j] = len(self.columns)
                    self.columns.append((int(column), values[~np.isnan(values)]))
            elif name != "numerical":
                raise Unsupported(f"unexpected HistGradientBoosting preprocessor part {name!r}")
        self.input_column = order


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _hist_tree(predictor: Any, k: int, per_stage: int, encoding: _HistEncoding, known: np.ndarray) -> _Tree:
    """A ``TreePredictor``'s node records, as ``_predict_one_from_raw_data`` walks them."""
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    categorical = nodes["is_categorical"].astype(bool) & ~leaf
    nan_left = nodes["missing_go_to_left"].astype(bool)
    tree_feature = nodes["feature_idx"].astype(np.intp)
    feature = np.where(leaf, 0, encoding.input_column[np.where(leaf, 0, tree_feature)])
    left, right = nodes["left"].astype(np.intp), nodes["right"].astype(np.intp)
    feature, threshold, first, second = _numeric_tests(
        feature, nodes["num_threshold"], left, right, nan_left, leaf | categorical, encoding.width)
    lookups = []
    for node in np.flatnonzero(categorical):
        f = int(tree_feature[node])
        if f not in encoding.column_of_feature:
            raise Unsupported("a categorical split without HistGradientBoosting's category encoder")
        codes = np.arange(256)
        in_left = _in_bitset(predictor.raw_left_cat_bitsets[nodes["bitset_idx"][node]], codes)
        is_known = _in_bitset(known[encoding.f_idx_map[f]], codes)
        goes_left = np.append(np.where(in_left, True, np.where(is_known, False, nan_left[node])), nan_left[node])
        lookups.append((int(node), encoding.column_of_feature[f], np.where(goes_left, 0.0, 1.0)))
        threshold[node], first[node], second[node] = 0.5, left[node], right[node]  # 0 <= 0.5: left
    values = np.zeros((len(nodes), per_stage))
    values[:, k] = nodes["value"]
    index = np.arange(len(nodes))
    children = np.column_stack([np.where(leaf, index, left), np.where(leaf, index, right)]).astype(np.intp)
    source = np.where(leaf, -1, encoding.input_column[np.where(leaf, 0, tree_feature)]).astype(np.intp)
    return _Tree(feature, threshold, first, second, values, int(nodes["depth"].max()), lookups, leaf, children, source,
                 nodes["count"].astype("float64"))


def _in_bitset(bitset: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """sklearn.utils._bitset.in_bitset: (bitset[v // 32] >> (v % 32)) & 1, for 8 uint32 words."""
    return ((bitset[codes // 32] >> (codes % 32).astype(np.uint32)) & 1).astype(bool)


# ---- the flattened ensemble ---------------------------------------------------------------------
class _Ensemble:
    """All trees in one node table. ``compile(finish)`` gives a Transform: rows -> the ordered
    sum of the trees' leaf vectors (``(rows, outputs)``) -> ``finish``.

    A single row (the service's common case) evaluates every split's test at once and turns it
    into each node's next node, so each level of all trees is then one look-up. Splits are
    numbered first, by the column of the extended row they test, so a row's value per split is
    a ``repeat`` rather than a gather; leaves come last and point to themselves. A batch walks
    all trees a level at a time, gathering only the nodes its rows are at, in chunks of rows."""

    def __init__(self, trees: list[_Tree], width: int, float32: bool,
                 categories: list[tuple[int, np.ndarray]] = ()):
        self.float32 = float32
        category_base = 2 * width  # the extended row: [x, -x, category lookups]
        offsets = np.cumsum([0] + [len(t.feature) for t in trees])
        features, tables, lookup_columns = [], [], []
        for tree in trees:
            feature = tree.feature.copy()
            for node, column, table in tree.categorical:
                feature[node] = category_base + len(tables)
                tables.append(table)
                lookup_columns.append(column)
            features.append(feature)
        feature = np.concatenate(features)
        is_leaf = np.concatenate([t.is_leaf for t in trees])
        splits = int(np.count_nonzero(~is_leaf))
        order = np.argsort(np.where(is_leaf, feature.max() + 1, feature), kind="stable")  # new node number -> old
        renumber = np.empty_like(order)
        renumber[order] = np.arange(len(order))
        first = renumber[np.concatenate([t.first + o for t, o in zip(trees, offsets)])][order]
        second = renumber[np.concatenate([t.second + o for t, o in zip(trees, offsets)])][order]
        self.feature = feature[order].astype(np.intp)
        self.splits = splits
        self.repeats = np.bincount(self.feature[:splits], minlength=category_base + len(tables))
        self.threshold = np.concatenate([t.threshold for t in trees])[order]
        self.second = second.astype(np.intp)
        self.step = (first - second).astype(np.intp)  # first = second + step
        self.leaf = np.ascontiguousarray(np.concatenate([t.leaf for t in trees])[order])
        self.roots = renumber[offsets[:-1]].astype(np.intp)
        self.depth = max(t.depth for t in trees)
        self.children = renumber[np.concatenate([t.children + o for t, o in zip(trees, offsets)])][order]
        self.source = np.concatenate([t.source for t in trees])[order]
        self.cover = np.concatenate([t.cover for t in trees])[order]
        self.outputs = self.leaf.shape[1]
        # categorical nodes: the row's code slot per categorical column -> a 0/1 per node
        self.categories = list(categories)
        self.lookup_table = np.concatenate(tables) if tables else np.zeros(0)
        self.lookup_base = (np.arange(len(tables)) * (MISSING + 1)).astype(np.intp)
        self.lookup_column = np.array(lookup_columns, dtype=np.intp)
        self.category_codes = [{float(v): i for i, v in enumerate(values)} for _, values in self.categories]
        self.category_input = np.array([c for c, _ in self.categories], dtype=np.intp)

    def compile(self, finish: Callable[[np.ndarray], np.ndarray]) -> Transform:
        feature, threshold, second, step, repeats = self.feature, self.threshold, self.second, self.step, self.repeats
        leaf, roots, depth = self.leaf, self.roots, self.depth
        split_threshold, split_second, split_step = threshold[:self.splits], second[:self.splits], step[:self.splits]
        leaves = np.arange(self.splits, len(second), dtype=np.intp)
        accumulate = np.add.accumulate  # in order, unlike sum()
        chunk = max(1, CELLS // (len(roots) * (self.outputs + 4)))
        extend_one, extend = self._extenders()

        def one(x: np.ndarray) -> np.ndarray:
            goes_first = extend_one(x).repeat(repeats) <= split_threshold
            next_of = np.concatenate((split_second + goes_first * split_step, leaves))
            node = roots
            for _ in range(depth):
                node = next_of[node]
            return finish(accumulate(leaf[node], axis=0)[-1:])

        def many(x: np.ndarray) -> np.ndarray:
            values = extend(x)
            rows, columns = values.shape
            flat = values.ravel()
            row_start = (np.arange(rows, dtype=np.intp) * columns)[:, None]
            node = np.broadcast_to(roots, (rows, len(roots)))
            for _ in range(depth):
                goes_first = flat.take(row_start + feature.take(node)) <= threshold.take(node)
                node = second.take(node) + goes_first * step.take(node)
            return accumulate(leaf.take(node, axis=0), axis=1)[:, -1]

        def run(rows: np.ndarray) -> np.ndarray:
            if len(rows) == 1:
                return one(rows[0])
            if len(rows) <= chunk:
                return finish(many(rows))
            return finish(np.concatenate([many(rows[i:i + chunk]) for i in range(0, len(rows), chunk)]))

        return run

    def goes_first(self, rows: np.ndarray) -> np.ndarray:
        """(rows, splits): whether each row passes each split's test (its next node is then
        ``second + step``, else ``second``), by the same tests as the prediction."""
        _, extend = self._extenders()
        return extend(rows)[:, self.feature[:self.splits]] <= self.threshold[:self.splits]

    def _extenders(self) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
        """Row(s) -> ``[x, -x, category lookups]`` in float64; x rounded to float32 first where
        the model casts it (float32 to float64 is exact, and compares as the Cython does)."""
        if not self.categories:
            if self.float32:
                def one(x: np.ndarray) -> np.ndarray:
                    x = x.astype(np.float32).astype(np.float64)
                    return np.concatenate((x, -x))

                def many(x: np.ndarray) -> np.ndarray:
                    x = x.astype(np.float32).astype(np.float64)
                    return np.concatenate((x, -x), axis=1)
            else:
                def one(x: np.ndarray) -> np.ndarray:
                    return np.concatenate((x, -x))

                def many(x: np.ndarray) -> np.ndarray:
                    return np.concatenate((x, -x), axis=1)
            return one, many
        if self.float32:
            raise Unsupported("category lookups with float32 inputs")  # only HistGradientBoosting has them

        codes, inputs = self.category_codes, self.category_input
        table, base, column = self.lookup_table, self.lookup_base, self.lookup_column
        sorted_values = [values for _, values in self.categories]

        def one(x: np.ndarray) -> np.ndarray:
            slots = np.array([c.get(v, MISSING) for c, v in zip(codes, x.take(inputs).tolist())], dtype=np.intp)
            return np.concatenate((x, -x, table.take(base + slots.take(column))))

        def many(x: np.ndarray) -> np.ndarray:
            slots = np.empty((len(x), len(codes)), dtype=np.intp)
            for j, (values, c) in enumerate(zip(sorted_values, inputs)):
                slots[:, j] = _slots(values, x[:, c])
            return np.concatenate((x, -x, table.take(base + slots[:, column])), axis=1)
        return one, many


def _slots(values: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Each value's position among the (sorted) known category values, or MISSING (NaN, unknown)."""
    if not len(values):
        return np.full(len(column), MISSING, dtype=np.intp)
    position = np.searchsorted(values, column).clip(0, len(values) - 1)
    return np.where(values[position] == column, position, MISSING)
