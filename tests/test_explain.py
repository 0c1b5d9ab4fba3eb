"""Explanations in the model core: they add up to the served output, and they are the Shapley
values they claim to be (checked against brute force, from the fitted models' own arrays)."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, softmax
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from app.model import explain, predict
from app.model.contract import Decoded
from app.model.explain.reference import KEY
from app.model.explain.sampling import SampledContributions
from app.model.importing import publish_model
from app.model.registry import load_version
from app.model.training import TrainingOptions, train
from tests.conftest import PIMA, REGRESSOR, ROOT
from tests.datasets import progression_like, titanic_like, write_csv

TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def trained(models_dir, tmp_path_factory) -> dict[str, object]:
    """Every estimator kind train.py makes, loaded as the server loads it: the session's default
    SVM, logistic regression (titanic: categories and gaps) and HistGradientBoosting regressor,
    and the others trained here with 2 folds."""
    folder = tmp_path_factory.mktemp("explained")
    progression = write_csv(progression_like(), folder / "progression.csv")
    for name, data, target, estimator in [
        ("pima-rf", ROOT / "data" / "training.csv", "Outcome", "rf"),
        ("pima-hgb", ROOT / "data" / "training.csv", "Outcome", "hgb"),
        ("progression-ridge", progression, "progression", "ridge"),
        ("progression-rf", progression, "progression", "rf"),
        ("progression-svr", progression, "progression", "svr"),
    ]:
        train(TrainingOptions(data=data, target=target, name=name, estimator=estimator, folds=2, models_dir=folder))
    loaded = {name: load_version(folder, name, 1) for name in
              ("pima-rf", "pima-hgb", "progression-ridge", "progression-rf", "progression-svr")}
    for name in (PIMA, "titanic", REGRESSOR):
        loaded[name] = load_version(models_dir, name, 1)
    return loaded


def rows_of(model, frame: pd.DataFrame) -> np.ndarray:
    """The rows decoded as a JSON request's (NaN becomes null)."""
    return model.decoder.records(json.loads(frame[model.schema.names].to_json(orient="records"))).matrix


@pytest.fixture(scope="module")
def inputs() -> dict[str, pd.DataFrame]:
    return {"pima": pd.read_csv(ROOT / "data" / "test.csv").head(40), "titanic": titanic_like(40, seed=3),
            "progression": progression_like(40, seed=3)}


KINDS = [  # name, its inputs, method, exact, output
    (PIMA, "pima", "background-shapley", False, "log-odds"),
    ("titanic", "titanic", "linear", True, "log-odds"),
    ("pima-rf", "pima", "tree-shap", True, "probability"),
    ("pima-hgb", "pima", "tree-shap", True, "log-odds"),
    ("progression-ridge", "progression", "linear", True, "value"),
    ("progression-rf", "progression", "tree-shap", True, "value"),
    (REGRESSOR, "progression", "tree-shap", True, "value"),
    ("progression-svr", "progression", "background-shapley", False, "value"),
]


@pytest.mark.parametrize("name, data, method, exact, output", KINDS, ids=[k[0] for k in KINDS])
def test_every_estimator_kind_train_makes_explains_its_output_from_the_baseline(trained, inputs, name, data, method,
                                                                               exact, output):
    model = trained[name]
    assert (model.explainer.method, model.explainer.exact, model.explainer.output) == (method, exact, output)
    matrix = rows_of(model, inputs[data])
    served = predict.predict(model, Decoded(matrix, [], model.schema))
    explained = model.explainer.explain(matrix, served)
    adds_up = explained.baselines + explained.contributions.sum(axis=1)
    np.testing.assert_allclose(adds_up, explained.values, rtol=0, atol=TOLERANCE)
    if output == "log-odds":
        np.testing.assert_allclose(expit(explained.values), served.probabilities[:, 1], atol=TOLERANCE)
        assert (explained.classes == 1).all()
    elif output == "probability":
        np.testing.assert_allclose(explained.values, served.probabilities[:, 1], atol=TOLERANCE)
    else:
        np.testing.assert_allclose(explained.values, served.values, rtol=TOLERANCE)
        assert explained.classes is None
    assert np.ptp(explained.baselines) == 0  # one baseline per model and class
    assert np.abs(explained.contributions).max() > 0


def test_training_stores_a_small_reference_and_the_baseline_is_the_training_average(trained, logreg_version):
    svm = trained[PIMA]
    stored = svm.metadata[KEY]
    assert stored["source"] == "training" and len(stored["background"]["data"]) == 100
    assert stored["background"]["columns"] == svm.schema.names
    assert len(json.dumps(stored)) < 10_000
    assert svm.explainer.describe()["baseline"] == f"100 of {stored['rows']} training rows"
    linear = load_version(logreg_version.parent.parent, PIMA, 2)  # trained on all of data/training.csv
    training = pd.read_csv(ROOT / "data" / "training.csv").drop(columns="Outcome")
    baseline = linear.explainer.explain(rows_of(linear, training.head(1)), predict.predict(
        linear, Decoded(rows_of(linear, training.head(1)), [], linear.schema))).baselines[0]
    assert baseline == pytest.approx(linear.model.decision_function(training).mean(), abs=1e-9)


def brute_force_shapley(worth, features: int) -> np.ndarray:
    """Shapley values by their definition: every order in which the features can join."""
    values = np.zeros(features)
    orders = list(itertools.permutations(range(features)))
    for order in orders:
        joined: set[int] = set()
        for feature in order:
            before = worth(frozenset(joined))
            joined.add(feature)
            values[feature] += worth(frozenset(joined)) - before
    return values / len(orders)


def path_dependent_worth(trees, row: np.ndarray, player_of_column, scale: float):
    """TreeSHAP's game from scikit-learn's tree arrays: at a split on a known feature the row goes
    its way (float32, NaN by missing_go_to_left), otherwise both ways weighted by the samples."""
    def expected(tree, node: int, known: frozenset) -> float:
        left, right = tree.children_left[node], tree.children_right[node]
        if left == -1:
            return tree.value[node, 0, -1]
        column = tree.feature[node]
        if player_of_column[column] in known:
            x = row[column]
            goes_left = bool(tree.missing_go_to_left[node]) if np.isnan(x) else \
                float(np.float32(x)) <= tree.threshold[node]
            return expected(tree, left if goes_left else right, known)
        cover = tree.weighted_n_node_samples
        return (cover[left] * expected(tree, left, known) + cover[right] * expected(tree, right, known)) / cover[node]

    return lambda known: scale * sum(expected(tree.tree_, 0, known) for tree in trees)


def small_frame(rows: int = 300, seed: int = 5) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "c": rng.uniform(0, 3, rows),
                          "colour": rng.choice(["red", "green", "blue"], rows).astype(object)})
    frame.loc[rng.random(rows) < 0.15, "b"] = np.nan
    target = ((frame["a"] + (frame["colour"] == "red") - 0.5 * frame["c"] + rng.normal(0, 0.5, rows)) > 0).astype(int)
    return frame, target


def test_tree_shap_is_the_shapley_value_of_the_path_dependent_game_with_one_hot_columns_as_one_player(tmp_path):
    frame, target = small_frame()
    pipeline = make_pipeline(
        ColumnTransformer([("numbers", "passthrough", ["a", "b", "c"]),
                           ("colour", OneHotEncoder(sparse_output=False), ["colour"])]),
        RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0)).fit(frame, target)
    publish_model(pipeline, "small-forest", tmp_path, sample=frame.assign(y=target), target="y")
    model = load_version(tmp_path, "small-forest", 1)
    assert model.explainer.method == "tree-shap"
    player_of_column = [0, 1, 2, 3, 3, 3]  # a, b, c, and the colour's three one-hot columns
    forest = pipeline[-1]
    matrix = rows_of(model, frame.head(6))
    served = predict.predict(model, Decoded(matrix, [], model.schema))
    explained = model.explainer.explain(matrix, served)
    columns = pipeline[0].transform(frame.head(6))
    for row, contributions in zip(columns, explained.contributions):
        worth = path_dependent_worth(forest.estimators_, row, player_of_column, 1 / len(forest.estimators_))
        np.testing.assert_allclose(contributions, brute_force_shapley(worth, 4), atol=1e-12)
    assert explained.baselines[0] == pytest.approx(path_dependent_worth(forest.estimators_, columns[0],
                                                                        player_of_column, 1 / 4)(frozenset()))


def test_tree_shap_of_boosting_with_gaps_matches_brute_force_over_its_node_arrays(tmp_path):
    frame, _ = small_frame()
    values = frame["a"] * 2 + frame["b"].fillna(1) * frame["c"]
    numbers = frame[["a", "b", "c"]]
    booster = HistGradientBoostingRegressor(max_iter=5, max_leaf_nodes=6, random_state=0).fit(numbers, values)
    publish_model(booster, "small-booster", tmp_path, sample=numbers.assign(y=values), target="y")
    model = load_version(tmp_path, "small-booster", 1)
    assert model.explainer.method == "tree-shap"

    def worth_for(row):
        def expected(nodes, node: int, known: frozenset) -> float:
            record = nodes[node]
            if record["is_leaf"]:
                return record["value"]
            left, right = int(record["left"]), int(record["right"])
            if record["feature_idx"] in known:
                x = row[record["feature_idx"]]
                goes_left = bool(record["missing_go_to_left"]) if np.isnan(x) else x <= record["num_threshold"]
                return expected(nodes, left if goes_left else right, known)
            count = nodes["count"].astype(float)
            return (count[left] * expected(nodes, left, known) + count[right] * expected(nodes, right, known)) / count[node]
        start = float(np.asarray(booster._baseline_prediction).reshape(-1)[0])
        return lambda known: start + sum(expected(p[0].nodes, 0, known) for p in booster._predictors)

    with_gaps, complete = np.flatnonzero(numbers["b"].isna())[:3], np.flatnonzero(numbers["b"].notna())[:5]
    matrix = rows_of(model, numbers.iloc[np.r_[with_gaps, complete]])
    assert np.isnan(matrix).sum() == 3  # gaps are routed as the model routes them
    served = predict.predict(model, Decoded(matrix, [], model.schema))
    explained = model.explainer.explain(matrix, served)
    for row, contributions in zip(matrix, explained.contributions):
        np.testing.assert_allclose(contributions, brute_force_shapley(worth_for(row), 3), atol=1e-10)


def test_linear_contributions_are_the_exact_shapley_values_against_the_training_rows(tmp_path):
    frame, target = small_frame()
    pipeline = make_pipeline(
        ColumnTransformer([("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b", "c"]),
                           ("colour", OneHotEncoder(), ["colour"])], sparse_threshold=0),
        LogisticRegression()).fit(frame, target)
    publish_model(pipeline, "small-linear", tmp_path, sample=frame.assign(y=target), target="y")
    model = load_version(tmp_path, "small-linear", 1)
    assert model.explainer.method == "linear"
    every_row = rows_of(model, frame)  # the sample: the rows the stored mean was taken over
    row = every_row[3]

    def worth(known: frozenset) -> float:  # interventional: the row's known features in every sample row
        hybrid = every_row.copy()
        hybrid[:, list(known)] = row[list(known)]
        return float(model.model.decision_function(Decoded(hybrid, [], model.schema).frame).mean())

    served = predict.predict(model, Decoded(row[None], [], model.schema))
    explained = model.explainer.explain(row[None], served)
    np.testing.assert_allclose(explained.contributions[0], brute_force_shapley(worth, 4), atol=1e-9)
    assert explained.baselines[0] == pytest.approx(worth(frozenset()), abs=1e-9)


def test_the_approximation_is_the_exact_shapley_value_against_its_background():
    rng = np.random.default_rng(2)
    background = rng.normal(size=(12, 4))

    def score(rows: np.ndarray) -> np.ndarray:  # interactions everywhere: nothing additive to lean on
        return np.column_stack([rows[:, 0] * rows[:, 1] + np.sin(rows[:, 2]) * rows[:, 3] ** 2])

    explainer = SampledContributions(score, background)
    assert explainer.method == "background-shapley"
    row = rng.normal(size=4)

    def worth(known: frozenset) -> float:
        hybrid = background.copy()
        hybrid[:, list(known)] = row[list(known)]
        return float(score(hybrid).mean())

    attribution = explainer.attribute(row[None])
    np.testing.assert_allclose(attribution.contributions[0, :, 0], brute_force_shapley(worth, 4), atol=1e-12)
    assert attribution.baseline[0] == pytest.approx(worth(frozenset()))


def test_with_many_features_sampled_orders_still_add_up_and_are_exact_for_an_additive_model():
    rng = np.random.default_rng(3)
    background, weights = rng.normal(size=(40, 16)), rng.normal(size=16)

    def score(rows: np.ndarray) -> np.ndarray:
        return np.column_stack([np.tanh(rows) @ weights])

    explainer = SampledContributions(score, background)
    assert explainer.method == "permutation-shapley" and len(explainer.background) == 16
    rows = rng.normal(size=(2, 16))
    attribution = explainer.attribute(rows)
    np.testing.assert_allclose(attribution.values[:, 0], score(rows)[:, 0], atol=1e-12)
    expected = (np.tanh(rows) - np.tanh(explainer.background).mean(axis=0)) * weights
    np.testing.assert_allclose(attribution.contributions[:, :, 0], expected, atol=1e-12)
    assert (explainer.attribute(rows).contributions == attribution.contributions).all()  # the same orders each time


def test_an_imported_pipeline_is_explained_exactly_and_one_without_a_sample_from_its_example_row(tmp_path):
    frame = titanic_like(300, seed=4).drop(columns="Name")
    X, y = frame.drop(columns="Survived"), frame["Survived"]
    pipeline = make_pipeline(
        ColumnTransformer([("numbers", SimpleImputer(strategy="median"), ["Pclass", "Age", "Fare"]),
                           ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                                        OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"])],
                          sparse_threshold=0),
        GradientBoostingClassifier(n_estimators=20, random_state=0)).fit(X, y)
    publish_model(pipeline, "boosted", tmp_path, sample=frame, target="Survived")
    publish_model(pipeline, "boosted", tmp_path)  # version 2: no sample
    for version in (1, 2):  # the trees' own counts make the baseline: no sample needed
        model = load_version(tmp_path, "boosted", version)
        assert (model.explainer.method, model.explainer.output) == ("tree-shap", "log-odds")
        matrix = rows_of(model, X.head(20))
        served = predict.predict(model, Decoded(matrix, [], model.schema))
        explained = model.explainer.explain(matrix, served)
        np.testing.assert_allclose(expit(explained.baselines + explained.contributions.sum(axis=1)),
                                   served.probabilities[:, 1], atol=TOLERANCE)
    knn = make_pipeline(clone(pipeline[0]), KNeighborsClassifier()).fit(X, y)
    publish_model(knn, "neighbours", tmp_path)  # no sample: the example row is the background
    model = load_version(tmp_path, "neighbours", 1)
    assert model.explainer.method == "background-shapley"
    assert model.explainer.describe()["baseline"].startswith("the example row")
    example = model.decoder.records([model.schema.example()]).matrix
    served = predict.predict(model, Decoded(example, [], model.schema))
    explained = model.explainer.explain(example, served)
    np.testing.assert_allclose(explained.contributions, 0, atol=1e-12)  # the example row against itself: nothing


def test_a_model_whose_steps_mix_features_falls_back_to_the_approximation(tmp_path):
    frame, target = small_frame()
    numbers = frame[["a", "c"]]
    pipeline = make_pipeline(PolynomialFeatures(2), LogisticRegression()).fit(numbers, target)
    publish_model(pipeline, "interactions", tmp_path, sample=numbers.assign(y=target), target="y")
    model = load_version(tmp_path, "interactions", 1)
    assert (model.explainer.method, model.explainer.exact) == ("background-shapley", False)
    assert model.explainer.describe()["baseline"] == "100 of 300 sample rows"


def test_explaining_a_row_costs_a_fraction_of_a_millisecond_for_exact_methods(trained):
    import time

    for name in ("pima-rf", "pima-hgb", "titanic"):
        model = trained[name]
        row = model.decoder.records([model.schema.example()]).matrix
        served = predict.predict(model, Decoded(row, [], model.schema))
        model.explainer.explain(row, served)
        started = time.perf_counter()
        for _ in range(20):
            model.explainer.explain(row, served)
        assert (time.perf_counter() - started) / 20 < 0.005, name  # ~0.1 ms; generous on a busy machine


def test_documents_name_features_classes_and_method(trained):
    model = trained["pima-rf"]
    row = model.decoder.records([model.schema.example()]).matrix
    explainer = explain.require(model)
    (document,) = explain.documents(model, explainer, explainer.explain(row, predict.predict(
        model, Decoded(row, [], model.schema))))
    assert list(document) == ["method", "exact", "output", "class", "baseline", "value", "contributions"]
    assert list(document["contributions"]) == model.schema.names
    assert document["class"] == 1 and math.isfinite(document["baseline"])


MULTICLASS = [  # estimator, method, output
    (LogisticRegression(max_iter=1000), "linear", "softmax-score"),
    (RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0), "tree-shap", "probability"),
    (HistGradientBoostingClassifier(max_iter=10, random_state=0), "tree-shap", "softmax-score"),
    (KNeighborsClassifier(), "background-shapley", "log-odds"),
]


@pytest.mark.parametrize("estimator, method, output", MULTICLASS, ids=[m[1] + "-" + m[2] for m in MULTICLASS])
def test_with_several_classes_each_row_explains_its_predicted_class(tmp_path, estimator, method, output):
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame
    X, y = iris.drop(columns="target"), iris["target"]
    publish_model(make_pipeline(StandardScaler(), estimator).fit(X, y), "iris", tmp_path, sample=iris,
                  target="target")
    model = load_version(tmp_path, "iris", 1)
    assert (model.explainer.method, model.explainer.output) == (method, output)
    matrix = rows_of(model, X.iloc[::10])
    served = predict.predict(model, Decoded(matrix, [], model.schema))
    explained = model.explainer.explain(matrix, served)
    assert (explained.classes == served.winners).all() and len(set(explained.classes)) == 3
    np.testing.assert_allclose(explained.baselines + explained.contributions.sum(axis=1), explained.values,
                               atol=TOLERANCE)
    every_class = model.explainer.attribute(matrix).values  # (rows, classes)
    if output == "softmax-score":
        np.testing.assert_allclose(softmax(every_class, axis=1), served.probabilities, atol=TOLERANCE)
    elif output == "probability":
        np.testing.assert_allclose(every_class, served.probabilities, atol=TOLERANCE)
    else:
        np.testing.assert_allclose(expit(every_class), served.probabilities, atol=TOLERANCE)


def test_a_model_no_method_explains_is_served_and_refuses_explanations_naming_the_field(tmp_path):
    from sklearn.svm import SVC

    from app.model.errors import InvalidInput

    frame, target = small_frame()
    numbers = frame[["a", "c"]]
    publish_model(make_pipeline(StandardScaler(), SVC()).fit(numbers, target), "votes", tmp_path)
    model = load_version(tmp_path, "votes", 1)
    assert isinstance(model.explainer, explain.Unexplained)
    assert "a classifier without probabilities that is not linear" in model.explainer.reason
    with pytest.raises(InvalidInput) as refused:
        explain.require(model)
    (problem,) = refused.value.errors
    assert problem.field == "explain" and "votes/1 cannot explain its predictions" in problem.message


def test_a_model_of_one_feature_is_explained_by_the_approximation_too():
    background = np.linspace(-1, 1, 9)[:, None]
    explainer = SampledContributions(lambda rows: np.sin(rows), background)
    attribution = explainer.attribute(np.array([[0.5]]))
    assert attribution.contributions[0, 0, 0] == pytest.approx(np.sin(0.5) - np.sin(background).mean())
