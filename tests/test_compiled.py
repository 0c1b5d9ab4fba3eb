"""The compiled backend gives scikit-learn's predictions, for every supported estimator."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import (BayesianRidge, ElasticNet, HuberRegressor, Lasso, LassoCV, LinearRegression,
                                  LogisticRegression, LogisticRegressionCV, Ridge, RidgeClassifier, RidgeClassifierCV,
                                  RidgeCV, SGDClassifier, SGDRegressor)
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder,
                                   PolynomialFeatures, RobustScaler, StandardScaler, TargetEncoder)
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR

from app.model import artifacts, compiled
from app.model.contract import Decoded, Schema
from app.model.describe import describe_frame, matrix_from_frame
from app.model.output import CLASSIFICATION, REGRESSION, from_scikit_learn, rows_for
from app.model.training import TrainingOptions, train
from tests.conftest import ROOT
from tests.strategies import valid_rows
from tests.datasets import pima_schema, titanic_like, write_csv

TOLERANCE = 1e-5  # the promise for the trained artifacts; in practice differences are ~1e-13


# ---- the trained artifacts (the service's own models) -------------------------------------------
@pytest.fixture(scope="module")
def pima_rf(tmp_path_factory):
    models = tmp_path_factory.mktemp("rf")
    return train(TrainingOptions(data=ROOT / "data" / "training.csv", test_data=ROOT / "data" / "test.csv",
                                 target="Outcome", name="pima-rf", estimator="rf", models_dir=models)).artifact


@pytest.fixture(scope="module")
def titanic_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("titanic-all")
    data = write_csv(titanic_like(400), folder / "titanic.csv")
    return {estimator: train(TrainingOptions(data=data, target="Survived", name=f"t-{estimator}", estimator=estimator,
                                             folds=3, models_dir=folder)).artifact
            for estimator in ("svm", "logreg", "rf")}


def models(models_dir, pima_rf, titanic_models):
    yield artifacts.load(models_dir / "pima-diabetes" / "1")
    yield pima_rf
    yield from titanic_models.values()


def schema_of(artifact) -> Schema:
    return Schema.from_dict(artifact.metadata["schema"])


def assert_same(artifact, matrix):
    schema = schema_of(artifact)
    program = compiled.compile_pipeline(artifact.model, schema)
    expected = artifact.model.predict_proba(_frame(schema, matrix))
    got = program.predict(matrix).probabilities
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(got - expected).max() <= TOLERANCE


def _frame(schema, matrix):
    return Decoded(matrix, [], schema).frame


def test_every_estimator_compiles(models_dir, pima_rf, titanic_models):
    kinds = {compiled.compile_pipeline(a.model, schema_of(a)).kind for a in models(models_dir, pima_rf, titanic_models)}
    assert kinds == {"calibrated-svm", "random-forest", "logistic-regression"}


def test_compiled_model_equals_scikit_learn_on_the_test_set(models_dir, pima_rf, test_rows):
    for artifact in (artifacts.load(models_dir / "pima-diabetes" / "1"), pima_rf):
        matrix, usable = matrix_from_frame(schema_of(artifact), test_rows)
        assert usable.all()
        assert_same(artifact, matrix)
        for row in matrix[:50]:  # single rows, the service's common case
            assert_same(artifact, row[None, :])


def test_compiled_model_equals_scikit_learn_on_generated_titanic_rows(titanic_models):
    for artifact in titanic_models.values():
        frame = titanic_like(300, seed=11)
        matrix, usable = matrix_from_frame(schema_of(artifact), frame)
        assert_same(artifact, matrix[usable])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_compiled_model_equals_scikit_learn_on_any_valid_input(models_dir, pima_rf, titanic_models, data):
    for artifact in models(models_dir, pima_rf, titanic_models):
        assert_same(artifact, data.draw(valid_rows(schema_of(artifact))))


def test_a_compiled_model_that_disagrees_is_refused(models_dir):
    artifact = artifacts.load(models_dir / "pima-diabetes" / "1")
    schema = schema_of(artifact)
    program = compiled.compile_pipeline(artifact.model, schema)
    skewed = compiled.Estimator(program.kind, probabilities=lambda x: program.estimator.probabilities(x) * 0.999 + 0.0005)
    broken = compiled.CompiledPipeline(program.transform, skewed, program.kind)
    with pytest.raises(compiled.Mismatch):
        compiled.verify(broken, artifact.model, schema, compiled.synthetic_rows(schema), "classification",
                        artifact.metadata["classes"])


# ---- every family, on a small synthetic data set ------------------------------------------------
NUMBERS = ["age", "income", "hours", "rooms"]
CATEGORIES = ["city", "plan"]


def people(rows: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with gaps (numbers and names), a number of rooms that some encoders treat as a
    category, and a hidden score the targets derive from."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).round(1)
    income = rng.lognormal(10, 0.5, rows).round(2)
    hours = rng.uniform(10, 60, rows)
    rooms = rng.integers(1, 5, rows).astype("float64")
    city = rng.choice(["north", "south", "east", "west"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    plan = rng.choice(["basic", "pro", "team"], rows, p=[0.6, 0.3, 0.1]).astype(object)
    score = (0.04 * (age - 40) + 0.8 * (city == "north") - 0.6 * (plan == "basic") + 0.03 * (hours - 35)
             + 0.3 * rooms + rng.normal(0, 0.5, rows))
    age[rng.random(rows) < 0.1] = np.nan
    income[rng.random(rows) < 0.05] = np.nan
    city[rng.random(rows) < 0.08] = np.nan
    frame = pd.DataFrame({"age": age, "income": income, "hours": hours, "rooms": rooms, "city": city, "plan": plan})
    return frame, score


@pytest.fixture(scope="module")
def dataset():
    """The schema, the serving matrix and the frame scikit-learn is fitted on (the serving
    representation: floats, and names with NaN gaps), and the three targets."""
    raw, score = people()
    schema = describe_frame(raw)
    matrix, usable = matrix_from_frame(schema, raw)
    assert usable.all()
    frame = Decoded(matrix, [], schema).frame
    targets = {
        "binary": np.where(score > np.median(score), "yes", "no"),
        "multiclass": np.array(["low", "mid", "high"])[np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))],
        "regression": 10 * score + 100,
    }
    return schema, matrix, frame, targets


def standard():
    """The trainer's own preprocessing: median + scaling, constant + one-hot."""
    return ColumnTransformer([
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMBERS),
        ("categories", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                                 ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), CATEGORIES),
    ])


def ordinal():
    """Mean imputation, min-max scaling with clipping, ordinal codes with unknown and missing codes."""
    return ColumnTransformer([
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", MinMaxScaler(clip=True))]),
         NUMBERS),
        ("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2),
         CATEGORIES),
    ])


def indicators_and_polynomials():
    """Missing-value indicators, robust scaling, degree-2 polynomials, one-hot with drop='first'
    after most-frequent imputation."""
    return ColumnTransformer([
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)),
                              ("scale", RobustScaler()), ("expand", PolynomialFeatures(2))]), ["age", "hours"]),
        ("categories", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                 ("encode", OneHotEncoder(drop="first", handle_unknown="ignore"))]), CATEGORIES),
    ])


def logs_and_infrequent():
    """A ufunc (arcsinh: log-like, and defined past the training range), max-abs scaling, rooms one-hot encoded as numbers, rare cities grouped, plans
    refused if unknown (none are: the schema lists exactly the fitted ones)."""
    return ColumnTransformer([
        ("income", Pipeline([("impute", SimpleImputer(strategy="median")),
                             ("log", FunctionTransformer(np.arcsinh)), ("scale", StandardScaler())]), ["income"]),
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=0.0)),
                              ("scale", MaxAbsScaler())]), ["age", "hours"]),
        ("rooms", OneHotEncoder(handle_unknown="ignore"), ["rooms"]),
        ("city", OneHotEncoder(min_frequency=30, handle_unknown="infrequent_if_exist"), ["city"]),
        ("plan", OneHotEncoder(handle_unknown="error", drop=["basic"]), ["plan"]),
    ])


def selectors_and_remainder():
    """Columns chosen by a callable, by position, by a boolean mask; the remainder passed through
    then imputed and scaled by the outer Pipeline; interaction-only polynomials."""
    inner = ColumnTransformer([
        ("city", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                           ("encode", OneHotEncoder(handle_unknown="ignore", drop="if_binary"))]), [4]),
        ("plan", OneHotEncoder(handle_unknown="ignore"), [False, False, False, False, False, True]),
        ("hours", "passthrough", make_column_selector(pattern="^hours$")),
        ("dropped", "drop", ["income"]),
    ], remainder="passthrough")
    return Pipeline([("columns", inner), ("impute", SimpleImputer()), ("scale", StandardScaler()),
                     ("interact", PolynomialFeatures(2, interaction_only=True, include_bias=False))])


def with_pca():
    """A step the backend does not know (PCA): run by scikit-learn, alone."""
    return Pipeline([("prepare", standard()), ("reduce", PCA(n_components=4, random_state=0))])


def weights_slices_and_cubes():
    """Columns chosen by slices (of names, of positions), transformer weights, cubic polynomials,
    max-abs scaling with clipping, at most three columns per one-hot encoding."""
    return ColumnTransformer([
        ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", MaxAbsScaler(clip=True)),
                              ("cube", PolynomialFeatures(3))]), slice("age", "hours")),
        ("categories", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                                 ("encode", OneHotEncoder(max_categories=3, handle_unknown="infrequent_if_exist"))]),
         slice(4, 6)),
    ], transformer_weights={"numbers": 0.5, "categories": 2.0})


def pandas_between_steps():
    """A step set to output DataFrames, and a ColumnTransformer after it that selects by name."""
    impute = ColumnTransformer([
        ("numbers", SimpleImputer(strategy="median"), NUMBERS),
        ("categories", SimpleImputer(strategy="most_frequent"), CATEGORIES),
    ], verbose_feature_names_out=False).set_output(transform="pandas")
    encode = ColumnTransformer([
        ("scale", StandardScaler(), ["hours", "age", "income"]),
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan", "city"]),
    ])
    return Pipeline([("impute", impute), ("encode", encode)])


PREPROCESSING = {
    "weights": weights_slices_and_cubes,
    "pandas": pandas_between_steps,
    "standard": standard,
    "ordinal": ordinal,
    "indicators": indicators_and_polynomials,
    "logs": logs_and_infrequent,
    "selectors": selectors_and_remainder,
    "pca": with_pca,
}


def svc_with_probabilities(**kwargs):
    return SVC(probability=True, random_state=0, **kwargs)


CLASSIFIERS = {
    "logistic": lambda: LogisticRegression(max_iter=2000),
    "logistic-cv": lambda: LogisticRegressionCV(cv=3, max_iter=2000),
    "ridge-cv": RidgeClassifierCV,
    "sgd-squared-hinge": lambda: SGDClassifier(loss="squared_hinge", random_state=0),
    "ridge": RidgeClassifier,
    "sgd-hinge": lambda: SGDClassifier(random_state=0),
    "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "sgd-huber": lambda: SGDClassifier(loss="modified_huber", random_state=0),
    "sgd-perceptron": lambda: SGDClassifier(loss="perceptron", random_state=0),
    "linear-svc": LinearSVC,
    "svc-rbf": SVC,
    "svc-linear": lambda: SVC(kernel="linear"),
    "svc-poly": lambda: SVC(kernel="poly", degree=3, coef0=1.0),
    "svc-sigmoid": lambda: SVC(kernel="sigmoid", gamma=0.05),
    "svc-ovo": lambda: SVC(decision_function_shape="ovo"),
    "svc-break-ties": lambda: SVC(break_ties=True),
    "svc-probabilities": svc_with_probabilities,
    "nu-svc": lambda: NuSVC(nu=0.3),
    "knn": KNeighborsClassifier,
    "knn-distance": lambda: KNeighborsClassifier(n_neighbors=7, weights="distance"),
    "knn-brute": lambda: KNeighborsClassifier(algorithm="brute"),
    "knn-manhattan": lambda: KNeighborsClassifier(p=1, weights="distance"),
    "knn-chebyshev": lambda: KNeighborsClassifier(metric="chebyshev"),
    "knn-minkowski-3": lambda: KNeighborsClassifier(p=3),
    "calibrated-svc": lambda: CalibratedClassifierCV(SVC(), cv=3, ensemble=False),
    "calibrated-svc-isotonic": lambda: CalibratedClassifierCV(SVC(), cv=3, method="isotonic"),
    "calibrated-logistic": lambda: CalibratedClassifierCV(LogisticRegression(max_iter=2000), cv=3),
    "calibrated-knn": lambda: CalibratedClassifierCV(KNeighborsClassifier(), cv=3, method="isotonic"),
    "calibrated-linear-svc-temperature": lambda: CalibratedClassifierCV(LinearSVC(), cv=3, method="temperature"),
    "calibrated-knn-temperature": lambda: CalibratedClassifierCV(KNeighborsClassifier(), cv=3, method="temperature"),
}

REGRESSORS = {
    "linear": LinearRegression,
    "ridge": Ridge,
    "lasso": lambda: Lasso(alpha=0.05),
    "elastic-net": lambda: ElasticNet(alpha=0.05),
    "sgd": lambda: SGDRegressor(random_state=0),
    "linear-svr": lambda: LinearSVR(max_iter=10000),
    "svr-rbf": lambda: SVR(C=10.0),
    "svr-poly": lambda: SVR(kernel="poly", degree=2),
    "svr-linear": lambda: SVR(kernel="linear"),
    "svr-sigmoid": lambda: SVR(kernel="sigmoid", gamma=0.05),
    "nu-svr": NuSVR,
    "knn": KNeighborsRegressor,
    "knn-distance": lambda: KNeighborsRegressor(weights="distance", p=1),
    "knn-brute": lambda: KNeighborsRegressor(algorithm="brute", weights="distance"),
    "ridge-cv": RidgeCV,
    "lasso-cv": lambda: LassoCV(cv=3),
    "bayesian-ridge": BayesianRidge,
    "huber": HuberRegressor,
}

PREPROCESSING_NAMES = list(PREPROCESSING)


def _table():
    """Every estimator on both classification tasks (or regression), each with one of the
    preprocessings in turn, plus every preprocessing before a plain logistic regression."""
    rows = []
    for index, name in enumerate(CLASSIFIERS):
        for task in ("binary", "multiclass"):
            rows.append((PREPROCESSING_NAMES[(index + (task == "multiclass")) % len(PREPROCESSING)], name, task))
    for index, name in enumerate(REGRESSORS):
        rows.append((PREPROCESSING_NAMES[index % len(PREPROCESSING)], name, "regression"))
    for preprocessing in PREPROCESSING:
        rows.append((preprocessing, "logistic", "multiclass"))
        rows.append((preprocessing, "linear", "regression"))
    return sorted(set(rows))


MODELS = _table()


@pytest.fixture(scope="module")
def fitted(dataset):
    schema, _, frame, targets = dataset
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes, SVC(probability=True)'s deprecation
        for preprocessing, estimator, task in MODELS:
            final = (REGRESSORS if task == "regression" else CLASSIFIERS)[estimator]()
            model = Pipeline([("prepare", PREPROCESSING[preprocessing]()), ("model", final)])
            out[preprocessing, estimator, task] = model.fit(frame, targets[task])
    return out


def task_and_classes(model, task):
    if task == "regression":
        return REGRESSION, []
    return CLASSIFICATION, [c.item() if isinstance(c, np.generic) else c for c in model.classes_]


def check(model, schema, matrix, task):
    """compiled == scikit-learn (labels identical, numbers to 1e-9) on these rows."""
    program = compiled.compile_pipeline(model, schema)
    kind, classes = task_and_classes(model, task)
    compiled.verify(program, model, schema, matrix, kind, classes)
    return program


@pytest.mark.parametrize("preprocessing, estimator, task", MODELS, ids=["-".join(m) for m in MODELS])
def test_each_family_compiles_and_equals_scikit_learn_on_batches_and_single_rows(fitted, dataset, preprocessing,
                                                                                 estimator, task):
    schema, matrix, _, _ = dataset
    model = fitted[preprocessing, estimator, task]
    generated = compiled.synthetic_rows(schema, rows=300, seed=1)
    program = check(model, schema, matrix, task)  # the training rows
    check(model, schema, generated, task)  # rows over and past the training range, gaps included
    for row in np.concatenate([matrix[:6], generated[:6]]):  # single rows, the service's common case
        check(model, schema, row[None, :], task)
    # every step compiled, except the PCA (run by scikit-learn, alone)
    assert (" + scikit-learn step" in program.kind) == (preprocessing == "pca")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_every_family_equals_scikit_learn_on_any_valid_input(fitted, dataset, data):
    schema = dataset[0]
    key = data.draw(st.sampled_from(MODELS))
    check(fitted[key], schema, data.draw(valid_rows(schema, max_rows=30)), key[2])


def model_for(fitted, estimator, task):
    return fitted[next(key for key in MODELS if key[1:] == (estimator, task))]


def test_a_large_batch_is_computed_in_chunks_with_the_same_answer(fitted, dataset):
    """Kernels and distances are computed a few megabytes at a time; 6000 rows take several."""
    schema = dataset[0]
    rows = compiled.synthetic_rows(schema, rows=6000, seed=3)
    for estimator, task in [("svc-probabilities", "multiclass"), ("knn", "binary"), ("svr-rbf", "regression"),
                            ("knn-brute", "regression"), ("calibrated-svc-isotonic", "multiclass")]:
        check(model_for(fitted, estimator, task), schema, rows, task)


def test_opaque_steps_are_named_in_the_kind_and_the_known_ones_are_not(fitted, dataset):
    schema = dataset[0]
    assert compiled.compile_pipeline(fitted["pca", "logistic", "multiclass"], schema).kind == \
        "logistic-regression + scikit-learn step PCA"
    assert compiled.compile_pipeline(fitted["standard", "logistic", "multiclass"], schema).kind == "logistic-regression"


def test_an_opaque_step_is_still_faster_than_the_whole_pipeline(fitted, dataset):
    schema, matrix, _, _ = dataset
    model = fitted["pca", "logistic", "multiclass"]
    program = compiled.compile_pipeline(model, schema)
    row = matrix[:1]
    frame = rows_for(model, Decoded(row, [], schema).frame)

    def best(call, times=30):
        durations = []
        for _ in range(times):
            start = time.perf_counter()
            call()
            durations.append(time.perf_counter() - start)
        return min(durations)
    assert best(lambda: program.predict(row)) < best(lambda: from_scikit_learn(model, frame, CLASSIFICATION, []))


class UnknownClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.repeat(self.classes_[:1], len(X))


class Names(TransformerMixin, BaseEstimator):
    """Outputs names, not numbers: nothing the estimator after it could be compiled for."""
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.full((len(X), 1), "word", dtype=object)


def test_a_model_the_compiled_backend_cannot_replicate_is_served_by_scikit_learn():
    pipeline = Pipeline([("classifier", UnknownClassifier())]).fit([[0.0] * 8, [1.0] * 8], [0, 1])
    with pytest.raises(compiled.Unsupported, match="UnknownClassifier"):
        compiled.compile_pipeline(pipeline, pima_schema())


def test_an_unknown_step_that_outputs_names_is_unsupported(dataset):
    schema, _, frame, targets = dataset
    model = Pipeline([("prepare", standard()), ("names", Names()), ("model", UnknownClassifier())])
    model.fit(frame, targets["binary"])
    with pytest.raises(compiled.Unsupported, match="Names does not output numbers"):
        compiled.compile_pipeline(model, schema)


def test_precomputed_and_callable_kernels_are_unsupported():
    features = np.random.default_rng(0).normal(size=(40, 3))
    labels = features[:, 0] > 0
    for kernel in ("precomputed", lambda a, b: a @ b.T):
        data = features @ features.T if kernel == "precomputed" else features
        model = SVC(kernel=kernel).fit(data, labels)
        with pytest.raises(compiled.Unsupported, match="kernel"):
            compiled.compile_estimator(model)


def test_an_encoder_that_refuses_unknown_categories_refuses_them_compiled_too(dataset):
    schema, matrix, frame, targets = dataset
    encoder = OneHotEncoder(categories=[["east", "north", "south", "west"], ["basic", "pro"]], handle_unknown="error")
    known = (frame["plan"] != "team").to_numpy() & frame["city"].notna().to_numpy()
    model = Pipeline([("prepare", ColumnTransformer([("c", encoder, CATEGORIES)])), ("model", LogisticRegression())])
    model.fit(frame[known], targets["binary"][known])
    program = compiled.compile_pipeline(model, schema)
    compiled.verify(program, model, schema, matrix[known], CLASSIFICATION, list(model.classes_))
    for unknown in (~known).nonzero()[0][:5]:
        row = matrix[unknown:unknown + 1]
        with pytest.raises(ValueError):
            model.predict_proba(Decoded(row, [], schema).frame)
        with pytest.raises(ValueError):
            program.predict(row)


def test_a_svc_with_probabilities_labels_rows_by_its_votes_not_its_probabilities(fitted, dataset):
    """libsvm's predict (one-vs-one votes) and its coupled probabilities may disagree on a row;
    the label is predict's, in both backends."""
    schema, matrix, _, _ = dataset
    model = model_for(fitted, "svc-probabilities", "multiclass")
    rows = compiled.synthetic_rows(schema, rows=2000, seed=5)
    output = compiled.compile_pipeline(model, schema).predict(rows)
    labels = model.predict(Decoded(rows, [], schema).frame)
    assert list(np.asarray(model.classes_)[output.winners]) == list(labels)


def test_nearest_neighbours_at_distance_zero_take_those_rows_labels(dataset):
    """A row equal to training rows gets exactly their labels with distance weights."""
    schema, matrix, frame, targets = dataset
    model = Pipeline([("prepare", standard()), ("model", KNeighborsClassifier(weights="distance"))])
    model.fit(frame, targets["multiclass"])
    program = check(model, schema, matrix, "multiclass")
    output = program.predict(matrix[:20])
    assert np.all(output.probabilities.max(axis=1) == 1.0)


def test_imputers_compile_every_strategy_marker_and_empty_column():
    """Markers other than NaN (a number, a name, None), a column empty at fit (kept or dropped),
    indicators, fill values that are new categories."""
    rng = np.random.default_rng(4)
    raw = pd.DataFrame({
        "a": rng.choice([1.0, 2.0, 3.0, -1.0], 120),
        "b": rng.normal(0, 1, 120),
        "empty": np.full(120, np.nan),
        "name": rng.choice(["x", "y", "?"], 120).astype(object),
    })
    raw.loc[rng.random(120) < 0.2, "b"] = np.nan
    raw.loc[rng.random(120) < 0.2, "name"] = np.nan
    schema = describe_frame(raw)
    matrix, _ = matrix_from_frame(schema, raw)
    frame = Decoded(matrix, [], schema).frame
    with_none = frame.assign(name=pd.Series([v if isinstance(v, str) else None for v in frame["name"]], dtype=object))
    y = (raw["a"].to_numpy() > 1.5).astype(int)
    variants = [
        (frame, [
            ("minus-one", SimpleImputer(missing_values=-1.0, strategy="most_frequent"), ["a"]),
            ("b", SimpleImputer(strategy="mean", keep_empty_features=True), ["b", "empty"]),
            ("name", Pipeline([
                ("gap", SimpleImputer(strategy="most_frequent", add_indicator=True)),
                ("question", SimpleImputer(missing_values="?", strategy="constant", fill_value="unknown")),
                ("encode", ColumnTransformer([("o", OneHotEncoder(handle_unknown="ignore"), [0])],
                                             remainder="passthrough"))]), ["name"])]),
        (with_none, [  # None marks a gap in an object column; served rows carry NaN, which it leaves
            ("numbers", SimpleImputer(strategy="median", add_indicator=True), ["a", "b", "empty"]),
            ("name", Pipeline([
                ("none", SimpleImputer(missing_values=None, strategy="constant", fill_value="none")),
                ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                          encoded_missing_value=-5))]), ["name"])]),
    ]
    for fitted_on, parts in variants:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Pipeline([("prepare", ColumnTransformer(parts)), ("model", LogisticRegression())])
            model.fit(fitted_on, y)
        program = compiled.compile_pipeline(model, schema)
        assert " + scikit-learn step" not in program.kind
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled.verify(program, model, schema, matrix, CLASSIFICATION, [0, 1])
            compiled.verify(program, model, schema, compiled.synthetic_rows(schema), CLASSIFICATION, [0, 1])
            for row in matrix[:10]:
                compiled.verify(program, model, schema, row[None, :], CLASSIFICATION, [0, 1])


@pytest.mark.parametrize("estimator, task", [
    ("svc-rbf", "multiclass"), ("svc-probabilities", "binary"), ("calibrated-svc", "binary"), ("knn", "multiclass"),
    ("knn-distance", "binary"), ("logistic", "multiclass"), ("linear-svc", "binary"), ("svr-rbf", "regression"),
    ("ridge", "regression"), ("knn", "regression"),
])
def test_estimators_fitted_on_sparse_features_compile_to_the_same_answers(dataset, estimator, task):
    """A ColumnTransformer with sparse one-hot output hands the estimator a sparse matrix (libsvm's
    sparse variant, a sparse kNN search); the compiled model computes densely, to rounding."""
    schema, matrix, frame, targets = dataset
    prepare = ColumnTransformer([
        ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMBERS),
        ("categories", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                                 ("encode", OneHotEncoder(handle_unknown="ignore"))]), CATEGORIES),
    ], sparse_threshold=1.0)
    final = (REGRESSORS if task == "regression" else CLASSIFIERS)[estimator]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Pipeline([("prepare", prepare), ("model", final)]).fit(frame, targets[task])
    assert hasattr(model[0].transform(frame[:2]), "toarray")  # the estimator was fitted on sparse input
    check(model, schema, matrix, task)
    check(model, schema, compiled.synthetic_rows(schema, seed=2), task)
    for row in matrix[:5]:
        check(model, schema, row[None, :], task)


def test_unknown_steps_on_names_run_alone_on_the_rows_scikit_learn_would_give_them(dataset):
    """TargetEncoder is not compiled: first given a DataFrame slice (fitted on one), then an
    object array after a compiled imputer; its numbers feed a compiled estimator."""
    schema, matrix, frame, targets = dataset
    on_frame = ColumnTransformer([
        ("target", TargetEncoder(), CATEGORIES),
        ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMBERS),
    ])
    after_imputer = ColumnTransformer([
        ("target", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                             ("encode", TargetEncoder())]), CATEGORIES),
        ("numbers", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), NUMBERS),
    ])
    for prepare in (on_frame, after_imputer):
        model = Pipeline([("prepare", prepare), ("model", LogisticRegression())]).fit(frame, targets["binary"])
        program = check(model, schema, matrix, "binary")
        assert program.kind == "logistic-regression + scikit-learn step TargetEncoder"
        check(model, schema, compiled.synthetic_rows(schema, seed=4), "binary")
        check(model, schema, matrix[3:4], "binary")


def test_ordinal_codes_feed_native_categories_of_a_histogram_gradient_boosting(dataset):
    """OrdinalEncoder's output (unknown -1, gaps NaN) as HistGradientBoosting's categories."""
    schema, matrix, frame, targets = dataset
    prepare = ColumnTransformer([
        ("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                      encoded_missing_value=np.nan), CATEGORIES),
    ], remainder="passthrough")
    boosting = HistGradientBoostingClassifier(categorical_features=[0, 1], max_iter=20, random_state=0)
    model = Pipeline([("prepare", prepare), ("model", boosting)]).fit(frame, targets["multiclass"])
    try:
        compiled.compile_estimator(model[-1])
    except compiled.Unsupported as reason:  # trees.py's business, not this file's
        pytest.skip(f"the trees backend does not compile it: {reason}")
    check(model, schema, matrix, "multiclass")
    check(model, schema, compiled.synthetic_rows(schema, seed=6), "multiclass")


def test_calibration_over_a_frozen_prefitted_classifier_compiles(dataset):
    """cv="prefit"'s replacement: the fitted base estimator wrapped in a FrozenEstimator."""
    schema, matrix, frame, targets = dataset
    prepare = standard().fit(frame)
    base = LinearSVC().fit(prepare.transform(frame), targets["multiclass"])
    model = Pipeline([("prepare", standard()), ("model", CalibratedClassifierCV(FrozenEstimator(base)))])
    model.fit(frame, targets["multiclass"])
    assert check(model, schema, matrix, "multiclass").kind == "calibrated-linear-svc"
    check(model, schema, compiled.synthetic_rows(schema), "multiclass")


def test_the_default_models_single_row_path_stays_fast(models_dir):
    artifact = artifacts.load(models_dir / "pima-diabetes" / "1")
    schema = schema_of(artifact)
    program = compiled.compile_pipeline(artifact.model, schema)
    row = compiled.synthetic_rows(schema, rows=1)
    durations = []
    for _ in range(200):
        start = time.perf_counter()
        program.predict(row)
        durations.append(time.perf_counter() - start)
    assert min(durations) < 200e-6  # ~10 us on a laptop; scikit-learn takes ~1.5 ms


@pytest.mark.parametrize("preprocessing, estimator, task", MODELS, ids=["-".join(m) for m in MODELS])
def test_each_family_answers_a_row_alone_exactly_as_inside_batches_of_any_size(fitted, dataset, preprocessing,
                                                                               estimator, task):
    """Bit for bit, as batch scoring promises (app/model/tiles.py): BLAS rounds the rows at a
    tile's edge differently, so without the padding a row's last bits depend on its neighbours."""
    schema = dataset[0]
    program = compiled.compile_pipeline(fitted[preprocessing, estimator, task], schema)
    rows = compiled.synthetic_rows(schema, rows=200, seed=5)
    whole = program.predict(rows)
    for start, size in [(0, 1), (7, 1), (3, 2), (10, 5), (17, 33), (0, 200)]:
        part = program.predict(rows[start:start + size])
        for answer in ("winners", "probabilities", "values"):
            expected, got = getattr(whole, answer), getattr(part, answer)
            assert (expected is None) == (got is None)
            if expected is not None:
                assert np.array_equal(got, expected[start:start + size], equal_nan=True), (answer, start, size)
