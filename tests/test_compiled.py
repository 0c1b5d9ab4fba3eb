"""The compiled backend gives scikit-learn's predictions, for every supported estimator."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.model import artifacts, compiled
from app.model.contract import Decoded, Schema
from app.model.describe import matrix_from_frame
from app.model.training import TrainingOptions, train
from tests.conftest import ROOT
from tests.datasets import pima_schema, titanic_like, write_csv

TOLERANCE = 1e-5  # the promise; in practice differences are ~1e-13


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


def valid_rows(schema: Schema):
    """Any valid input: numbers anywhere in the accepted range (mostly near the training range)."""
    columns = []
    for feature in schema.features:
        if feature.kind == "category":
            values = st.integers(0, len(feature.categories) - 1).map(float)
        else:
            span = (feature.maximum - feature.minimum) or 1
            near = st.floats(feature.minimum - span, feature.maximum + span, allow_nan=False)
            values = st.one_of(near, near, near, st.floats(-1e15, 1e15, allow_nan=False))
        if feature.allow_missing:
            values = st.one_of(values, st.just(float("nan")))
        columns.append(values)
    return st.lists(st.tuples(*columns), min_size=1, max_size=70).map(lambda rows: np.array(rows, dtype="float64"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_compiled_model_equals_scikit_learn_on_any_valid_input(models_dir, pima_rf, titanic_models, data):
    for artifact in models(models_dir, pima_rf, titanic_models):
        assert_same(artifact, data.draw(valid_rows(schema_of(artifact))))


def test_a_model_the_compiled_backend_cannot_replicate_is_served_by_scikit_learn(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("classifier", KNeighborsClassifier())]).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    with pytest.raises(compiled.Unsupported):
        compiled.compile_pipeline(pipeline, pima_schema())


def test_a_compiled_model_that_disagrees_is_refused(models_dir):
    artifact = artifacts.load(models_dir / "pima-diabetes" / "1")
    schema = schema_of(artifact)
    program = compiled.compile_pipeline(artifact.model, schema)
    skewed = compiled.Estimator(program.kind, probabilities=lambda x: program.estimator.probabilities(x) * 0.999 + 0.0005)
    broken = compiled.CompiledPipeline(program.transform, skewed, program.kind)
    with pytest.raises(compiled.Mismatch):
        compiled.verify(broken, artifact.model, schema, compiled.synthetic_rows(schema), "classification",
                        artifact.metadata["classes"])
