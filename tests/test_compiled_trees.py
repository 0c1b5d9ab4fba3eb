"""The compiled trees give scikit-learn's answer: decision trees, forests, gradient boosting and
histogram gradient boosting, as classifiers (two classes and three) and regressors, with gaps the
trees learned to route and native categories.

Estimators are checked on float64 matrices (what the compiled preprocessing hands them), and
whole Pipelines through ``compiled.verify`` as the registry checks them. scikit-learn is called
as the service calls it (``assume_finite``), so a gap reaches even the estimators that cannot be
fitted with gaps, and the routes of both agree there too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor, GradientBoostingClassifier,
                              GradientBoostingRegressor, HistGradientBoostingClassifier,
                              HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from app.model import compiled
from app.model.describe import describe_frame, matrix_from_frame
from tests.strategies import valid_rows

COLUMNS = 5  # a, b, c: numbers with gaps; d: small integers (a native category for some HGBs); e: wide range
CATEGORY_COLUMN = 3


def numeric_data(rows: int = 240, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(0, 1, rows), rng.normal(5, 2, rows), rng.uniform(-1, 1, rows),
                         rng.integers(0, 5, rows).astype(float), rng.lognormal(3, 2, rows)])
    score = x[:, 0] + 0.5 * x[:, 1] - 2.5 + (x[:, 3] == 2) - 0.8 * (x[:, 3] == 4) + rng.normal(0, 0.7, rows)
    targets = {
        "binary": np.where(score > 0, "yes", "no"),
        "three classes": np.digitize(score, [-0.8, 0.8]),
        "regression": np.exp(0.3 * score) + 0.1,  # positive: poisson and gamma losses fit it too
    }
    gaps = rng.random(x.shape) < 0.12
    gaps[:, 4] = False
    x[gaps] = np.nan
    return x, targets


def numeric_models() -> dict[str, list]:
    """(name, estimator, whether it is fitted on gaps) per task; small, so the module stays fast."""
    def classifiers() -> list:  # fresh estimators for each task
        return [
            ("decision tree", DecisionTreeClassifier(max_depth=7, random_state=0), True),
            ("random forest", RandomForestClassifier(15, min_samples_leaf=2, random_state=0), True),
            ("extra trees", ExtraTreesClassifier(15, random_state=0), True),
            ("gradient boosting", GradientBoostingClassifier(n_estimators=20, random_state=0), False),
            ("hist gradient boosting", HistGradientBoostingClassifier(max_iter=20, random_state=0), True),
            ("hist gradient boosting, native category", HistGradientBoostingClassifier(
                max_iter=20, categorical_features=[CATEGORY_COLUMN], random_state=0), True),
        ]

    regressors = [
        ("decision tree", DecisionTreeRegressor(max_depth=8, random_state=0), True),
        ("random forest", RandomForestRegressor(15, random_state=0), True),
        ("extra trees", ExtraTreesRegressor(15, random_state=0), True),
        *[(f"gradient boosting, {loss}", GradientBoostingRegressor(loss=loss, n_estimators=20, random_state=0), False)
          for loss in ("squared_error", "absolute_error", "huber", "quantile")],
        ("gradient boosting, zero init", GradientBoostingRegressor(init="zero", n_estimators=20, random_state=0), False),
        *[(f"hist gradient boosting, {loss}", HistGradientBoostingRegressor(
            loss=loss, max_iter=20, categorical_features=[CATEGORY_COLUMN], random_state=0), True)
          for loss in ("squared_error", "absolute_error", "poisson", "gamma")],
        ("hist gradient boosting, quantile", HistGradientBoostingRegressor(
            loss="quantile", quantile=0.8, max_iter=20, random_state=0), True),
    ]
    return {
        "binary": classifiers() + [("gradient boosting, exponential loss", GradientBoostingClassifier(
            loss="exponential", n_estimators=20, random_state=0), False)],
        "three classes": classifiers(),
        "regression": regressors,
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """HistGradientBoosting fits and predicts with OpenMP threads, which crawl when the machine
    is busy; one thread keeps this module fast (the answers are the same)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fitted(one_thread):
    """Every family fitted on the same numbers: a list of (task, name, model, compiled estimator)."""
    x, targets = numeric_data()
    models = []
    for task, entries in numeric_models().items():
        for name, model, takes_gaps in entries:
            model.fit(x if takes_gaps else np.nan_to_num(x, nan=0.0), targets[task])
            models.append((task, name, model, compiled.compile_estimator(model)))
    return models


def scikit_learn(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """What scikit-learn answers, called as the service calls it."""
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        if not hasattr(model, "classes_"):
            return {"values": model.predict(x)}
        answer = {"probabilities": model.predict_proba(x)}
        if hasattr(model, "decision_function"):
            answer["decision"] = model.decision_function(x)
        return answer


def compiled_answer(estimator: compiled.Estimator, x: np.ndarray) -> dict[str, np.ndarray]:
    answer = {}
    for what in ("values", "probabilities", "decision"):
        function = getattr(estimator, what)
        if function is not None:
            answer[what] = function(x)
    return answer


def assert_same(model, estimator: compiled.Estimator, x: np.ndarray, single_rows: int = 3) -> None:
    """Same labels, and values within the registry's tolerance, for the batch and single rows."""
    expected = scikit_learn(model, x)
    got = compiled_answer(estimator, x)
    singles = [compiled_answer(estimator, x[i:i + 1]) for i in range(min(single_rows, len(x)))]
    assert set(got) == set(expected)
    for what, want in expected.items():
        for answer, rows in [(got, slice(None)), *[(one, slice(i, i + 1)) for i, one in enumerate(singles)]]:
            have = answer[what]
            assert have.shape == want[rows].shape, what
            difference = np.abs(have - want[rows]) / np.maximum(1.0, np.abs(want[rows]))
            assert difference.max(initial=0.0) <= compiled.TOLERANCE, what
            if what == "probabilities":
                assert np.array_equal(have.argmax(axis=1), want[rows].argmax(axis=1))


def test_every_tree_family_compiles_as_a_classifier_or_a_regressor(fitted):
    for task, name, model, estimator in fitted:
        if task == "regression":
            assert estimator.values is not None and estimator.probabilities is None, name
        else:
            assert estimator.probabilities is not None and estimator.values is None, name
    kinds = {estimator.kind for *_, estimator in fitted}
    assert kinds == {"decision-tree", "random-forest", "extra-trees", "gradient-boosting", "hist-gradient-boosting"}


def test_compiled_trees_equal_scikit_learn_bit_for_bit_on_rows_with_gaps(fitted):
    """Bit for bit, not just within tolerance: the trees are summed in scikit-learn's order, so a
    tie (two classes at 0.5) breaks the same way."""
    x, _ = numeric_data(rows=400, seed=1)
    x[:5, CATEGORY_COLUMN] = [2.5, 7.0, -1.0, 300.0, -0.0]  # categories unknown, negative, not integers
    for task, name, model, estimator in fitted:
        expected, got = scikit_learn(model, x), compiled_answer(estimator, x)
        for what in expected:
            assert np.array_equal(got[what], expected[what]), f"{task}, {name}: {what}"
            for i in range(0, len(x), 37):
                assert np.array_equal(compiled_answer(estimator, x[i:i + 1])[what], expected[what][i:i + 1]), name


def test_inputs_are_rounded_to_float32_where_scikit_learn_rounds_them_and_not_elsewhere():
    """sklearn's trees compare float32(x) with a float64 threshold; HistGradientBoosting compares
    x itself. Just above a threshold of 0.5, float32 rounding sends a row left."""
    x = np.array([[0.0]] * 10 + [[1.0]] * 10)
    y = [0] * 10 + [1] * 10
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    threshold = tree.tree_.threshold[0]
    rows = np.array([[threshold + 1e-12], [threshold], [np.nextafter(threshold, -1.0)], [threshold + 1e-6]])
    expected = scikit_learn(tree, rows)["probabilities"]
    assert expected[0].tolist() == [1.0, 0.0]  # left: float32(0.5 + 1e-12) == 0.5
    assert np.array_equal(compiled.compile_estimator(tree).probabilities(rows), expected)
    hist = HistGradientBoostingClassifier(max_iter=3, min_samples_leaf=2).fit(x, y)
    threshold = hist._predictors[0][0].nodes["num_threshold"][0]
    rows = np.array([[threshold], [threshold + 1e-12], [np.nextafter(threshold, 2.0)], [np.nan]])
    expected = scikit_learn(hist, rows)["probabilities"]
    assert expected[1, 1] > expected[0, 1]  # right: no rounding
    assert np.array_equal(compiled.compile_estimator(hist).probabilities(rows), expected)


@pytest.fixture(scope="module")
def near_thresholds(fitted) -> list[list[float]]:
    """Per column: the models' thresholds and their float64 / float32 neighbours, where a
    rounding slip would send a row the other way."""
    values = [set() for _ in range(COLUMNS)]
    for _, _, model, _ in fitted:
        trees = []
        if hasattr(model, "tree_"):
            trees = [model]
        elif hasattr(model, "estimators_"):
            trees = list(np.ravel(model.estimators_))
        for tree in trees[:3]:
            t = tree.tree_
            for feature, threshold in zip(t.feature, t.threshold):
                if feature >= 0:
                    values[feature].add(float(threshold))
        for predictor in getattr(model, "_predictors", [])[:3]:
            nodes = predictor[0].nodes
            for feature, threshold, leaf in zip(nodes["feature_idx"], nodes["num_threshold"], nodes["is_leaf"]):
                if not leaf and np.isfinite(threshold):
                    values[feature].add(float(threshold))
    out = []
    for column in values:
        around = set()
        for v in sorted(column)[:40]:
            around |= {v, float(np.nextafter(v, np.inf)), float(np.nextafter(v, -np.inf)),
                       float(np.float32(v)), float(np.nextafter(np.float32(v), np.float32(np.inf)))}
        out.append(sorted(around))
    return out


def matrices(near: list[list[float]]):
    """Rows over and past the training range, gaps, huge numbers, and values next to thresholds."""
    columns = []
    for column, (low, high) in enumerate([(-4, 4), (-3, 13), (-1.5, 1.5), (-2, 8), (0, 5000)]):
        plain = st.floats(low, high, allow_nan=False)
        choices = [plain, plain, st.just(float("nan")), st.floats(-1e15, 1e15, allow_nan=False)]
        if near[column]:
            choices.append(st.sampled_from(near[column]))
        if column == CATEGORY_COLUMN:
            choices.append(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, -1.0, 2.5, 255.0, 256.0, 1e10]))
        columns.append(st.one_of(*choices))
    return st.lists(st.tuples(*columns), min_size=1, max_size=40).map(lambda rows: np.array(rows, dtype="float64"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_compiled_trees_equal_scikit_learn_on_any_input(fitted, near_thresholds, data):
    x = data.draw(matrices(near_thresholds))
    for task, name, model, estimator in fitted:
        assert_same(model, estimator, x)


# ---- whole Pipelines: native categories through an OrdinalEncoder ---------------------------------
def mixed_frame(rows: int = 260, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue", "grey"], rows).astype(object),
        "size": rng.choice(["S", "M", "L"], rows).astype(object),
        "weight": rng.normal(70, 12, rows).round(1),
        "age": rng.integers(18, 80, rows).astype(float),
    })
    score = ((frame["colour"] == "red") * 1.2 - (frame["size"] == "S") * 0.9 + (frame["weight"] - 70) / 12
             + rng.normal(0, 0.6, rows))
    frame.loc[rng.random(rows) < 0.1, "colour"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "weight"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "age"] = np.nan
    targets = {"binary": (score > 0.2).astype(int).to_numpy(),
               "three classes": np.array(["low", "mid", "high"])[np.digitize(score, [-0.5, 0.6])],
               "regression": (score * 10 + 50).to_numpy()}
    return frame, targets


def native_pipelines(task: str) -> list[tuple[str, Pipeline]]:
    kind = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    remainder = Pipeline([
        ("encode", ColumnTransformer([("categories", encoder, ["colour", "size"])], remainder="passthrough")),
        ("model", kind(categorical_features=[0, 1], max_iter=25, random_state=0)),
    ])
    as_trained = Pipeline([  # the layout app/model/training.py builds for estimator "hgb"
        ("preprocess", ColumnTransformer([("numbers", "passthrough", ["weight", "age"]),
                                          ("categories", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                                        unknown_value=np.nan,
                                                                        encoded_missing_value=np.nan),
                                           ["colour", "size"])], remainder="drop")),
        ("model", kind(categorical_features=[False, False, True, True], max_iter=25, random_state=0)),
    ])
    return [("OrdinalEncoder with the remainder passed through", remainder), ("training's layout", as_trained)]


@pytest.fixture(scope="module")
def pipelines(one_thread):
    """(task, name, fitted Pipeline, schema, classes) over the mixed frame."""
    frame, targets = mixed_frame()
    schema = describe_frame(frame)
    fitted = []
    for task in ("binary", "three classes", "regression"):
        for name, pipeline in native_pipelines(task):
            pipeline.fit(frame, targets[task])
            classes = [] if task == "regression" else [c.item() for c in pipeline.classes_]
            fitted.append((task, name, pipeline, schema, classes))
    return fitted


def verify(pipeline, schema, classes, matrix) -> float:
    task = "regression" if not classes else "classification"
    return compiled.verify(compiled.compile_pipeline(pipeline, schema), pipeline, schema, matrix, task, classes)


def test_histogram_boosting_pipelines_with_native_categories_equal_scikit_learn_on_their_data(pipelines):
    frame, _ = mixed_frame(rows=300, seed=3)
    for task, name, pipeline, schema, classes in pipelines:
        matrix, usable = matrix_from_frame(schema, frame)
        assert usable.all()
        verify(pipeline, schema, classes, matrix)
        verify(pipeline, schema, classes, compiled.synthetic_rows(schema))
        for row in matrix[:25]:  # single rows, the service's common case
            verify(pipeline, schema, classes, row[None, :])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_histogram_boosting_pipelines_equal_scikit_learn_on_any_valid_input(pipelines, data):
    matrix = data.draw(valid_rows(pipelines[0][3], max_rows=30))
    for task, name, pipeline, schema, classes in pipelines:
        verify(pipeline, schema, classes, matrix)
        verify(pipeline, schema, classes, matrix[:1])


# ---- what stays with scikit-learn ----------------------------------------------------------------
def test_multi_output_trees_are_left_to_scikit_learn():
    x = np.arange(20.0).reshape(10, 2)
    with pytest.raises(compiled.Unsupported, match="multi-output"):
        compiled.compile_estimator(RandomForestRegressor(3, random_state=0).fit(x, np.column_stack([x[:, 0], x[:, 1]])))
    with pytest.raises(compiled.Unsupported, match="multi-output"):
        compiled.compile_estimator(DecisionTreeClassifier().fit(x, np.column_stack([x[:, 0] > 5, x[:, 1] > 9])))


def test_gradient_boosting_with_an_init_estimator_of_its_own_is_left_to_scikit_learn():
    x, targets = numeric_data()
    x = np.nan_to_num(x)
    for init in (LogisticRegression(), DummyClassifier(strategy="stratified", random_state=0)):
        model = GradientBoostingClassifier(n_estimators=3, init=init, random_state=0).fit(x, targets["binary"])
        with pytest.raises(compiled.Unsupported, match="init"):
            compiled.compile_estimator(model)
    model = GradientBoostingClassifier(n_estimators=3, init=DummyClassifier(strategy="prior"), random_state=0)
    model.fit(x, targets["three classes"])
    assert_same(model, compiled.compile_estimator(model), x)


def test_histogram_boosting_that_encodes_category_names_itself_is_left_to_scikit_learn():
    frame, targets = mixed_frame()
    frame = frame.astype({"colour": "category", "size": "category"})
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame, targets["binary"])
    with pytest.raises(compiled.Unsupported, match="category names"):
        compiled.compile_estimator(model)


def test_a_batch_larger_than_a_chunk_and_an_empty_one_equal_scikit_learn(fitted, monkeypatch):
    from app.model.compiled import trees

    monkeypatch.setattr(trees, "CELLS", 3000)  # chunks of a few dozen rows
    x, _ = numeric_data(rows=500, seed=2)
    for task, name, model, _ in fitted:
        estimator = compiled.compile_estimator(model)
        expected, got = scikit_learn(model, x), compiled_answer(estimator, x)
        for what in expected:
            assert np.array_equal(got[what], expected[what]), f"{task}, {name}: {what}"
            assert compiled_answer(estimator, x[:0])[what].shape == expected[what][:0].shape
