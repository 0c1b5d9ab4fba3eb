"""Importing a model fitted elsewhere: manage.py import and publish_model, refusals included."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
import skops.io as skops_io
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from app.model import artifacts
from app.model.importing import ImportRefused, publish_model
from tests import server
from tests.conftest import ROOT
from tests.datasets import progression_like, titanic_like, write_csv

CATEGORIES, NUMBERS = ["Sex", "Embarked"], ["Pclass", "Age", "Fare"]


def passengers(rows: int = 500, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    frame = titanic_like(rows, seed=seed)
    return frame.drop(columns=["Survived", "Name"]), frame["Survived"]


def native_categories_pipeline() -> Pipeline:
    """The scikit-learn gallery's pattern: ordinal codes, split on natively; gaps left to the trees."""
    X, y = passengers()
    encode = ColumnTransformer([("c", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), CATEGORIES)],
                               remainder="passthrough", verbose_feature_names_out=False)
    return Pipeline([("encode", encode), ("model", HistGradientBoostingClassifier(categorical_features=[0, 1],
                                                                                   random_state=0))]).fit(X, y)


def one_hot_pipeline(final=None) -> Pipeline:
    X, y = passengers()
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    categories = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    steps = [("pre", ColumnTransformer([("n", numbers, NUMBERS), ("c", categories, CATEGORIES)], sparse_threshold=0))]
    if final is not None:
        steps.append(("pca", PCA(n_components=4, random_state=0)))
    steps.append(("model", LogisticRegression()))
    return Pipeline(steps).fit(X, y)


def progression_regressor() -> tuple[Pipeline, pd.DataFrame]:
    frame = progression_like()
    X = frame.drop(columns="progression")
    encode = ColumnTransformer([("c", OrdinalEncoder(), ["sex"])], remainder="passthrough", verbose_feature_names_out=False)
    model = Pipeline([("encode", encode), ("model", HistGradientBoostingRegressor(categorical_features=[0], random_state=0))])
    return model.fit(X, frame["progression"]), frame


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Model files and samples as a notebook would leave them."""
    folder = tmp_path_factory.mktemp("notebook")
    X, y = passengers(200, seed=3)
    write_csv(X.assign(Survived=y), folder / "sample.csv")
    joblib.dump(native_categories_pipeline(), folder / "hgb.joblib")
    with open(folder / "onehot.pkl", "wb") as stream:
        pickle.dump(one_hot_pipeline(), stream)
    joblib.dump(one_hot_pipeline(final="pca"), folder / "pca.joblib")
    skops_io.dump(one_hot_pipeline(), folder / "onehot.skops")
    regressor, frame = progression_regressor()
    joblib.dump(regressor, folder / "regressor.joblib")
    write_csv(frame.sample(120, random_state=1), folder / "progression.csv")
    joblib.dump(LogisticRegression().fit(X[["Pclass", "Fare"]].to_numpy(), y), folder / "array.joblib")
    joblib.dump(LogisticRegression(), folder / "unfitted.joblib")
    joblib.dump(StandardScaler().fit(X[["Fare"]]), folder / "scaler.joblib")
    joblib.dump({"weights": [1, 2]}, folder / "dict.joblib")
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "empty.joblib").write_bytes(b"")
    # A pickle naming a module this machine does not have, as a model using xgboost would.
    (folder / "needs-library.pkl").write_bytes(b"\x80\x04cnot_installed_booster\nBooster\n)\x81.")
    odd = LogisticRegression().fit(X[["Fare"]], y)
    odd.classes_ = np.array([1 + 0j, 2 + 0j])  # classes of a type JSON has no word for
    joblib.dump(odd, folder / "complex-classes.joblib")
    text_fares = X.assign(Fare=X["Fare"].map(lambda v: f"${v}"), Survived=y)
    write_csv(text_fares, folder / "text-fares.csv")
    write_csv(X.assign(Survived="maybe"), folder / "unknown-labels.csv")
    write_csv(X.drop(columns=["Age"]), folder / "no-age.csv")
    return folder


def manage(*arguments: str, models: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "--models-dir", str(models), "import", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


REFUSALS = [
    # (id, arguments, words of the one error line)
    ("missing-file", ["nope.joblib"], "does not exist"),
    ("a-directory", ["."], "is not a file"),
    ("empty-file", ["empty.joblib"], "is empty"),
    ("not-a-pickle", ["notes.txt"], "is not a joblib, pickle or skops file"),
    ("not-an-estimator", ["dict.joblib"], "holds a dict, not a scikit-learn estimator"),
    ("a-transformer", ["scaler.joblib"], "holds a StandardScaler, not a scikit-learn estimator or Pipeline"),
    ("unfitted", ["unfitted.joblib"], "the LogisticRegression is not fitted"),
    ("library-not-installed", ["needs-library.pkl"], "needs the Python package 'not_installed_booster', which is not installed"),
    ("arrays-without-names", ["array.joblib"], "fitted on an array without column names (2 columns)"),
    ("features-of-the-wrong-count", ["array.joblib", "--features", "Pclass"], "names 1 columns, the model takes 2"),
    ("features-that-differ", ["hgb.joblib", "--features", "a,b,c,d,e"], "differ from the columns the model was fitted on"),
    ("classes-json-cannot-carry", ["complex-classes.joblib"], "is a complex; JSON carries classes"),
    ("fails-on-its-own-sample", ["onehot.pkl", "--sample", "text-fares.csv"], "the model fails on its sample"),
    ("sample-without-a-column", ["onehot.pkl", "--sample", "no-age.csv"], "the sample lacks the model's columns: Age"),
    ("target-not-in-sample", ["onehot.pkl", "--sample", "sample.csv", "--target", "Outcome"],
     "target column 'Outcome' is not in the sample"),
    ("target-the-model-does-not-predict", ["onehot.pkl", "--sample", "unknown-labels.csv", "--target", "Survived"],
     "values the model does not predict: maybe"),
    ("target-without-sample", ["onehot.pkl", "--target", "Survived"], "needs a sample"),
    ("sample-not-a-csv", ["onehot.pkl", "--sample", "hgb.joblib"], "is not a readable CSV"),
    ("class-names-of-no-class", ["onehot.pkl", "--class-names", "0=died,5=survived"],
     "class names name classes the model does not have: '5'"),
]


@pytest.mark.parametrize("arguments, expected", [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_import_refuses_with_one_error_line_exit_code_2_and_nothing_written(files, tmp_path, arguments, expected):
    models = tmp_path / "models"
    done = manage(*[str(files / a) if i == 0 or arguments[i - 1] == "--sample" else a
                    for i, a in enumerate(arguments)], "--name", "refused", models=models)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr
    assert not models.exists() or not any(models.rglob("*")), "something was written"


def test_import_refuses_a_bad_name(files, tmp_path):
    done = manage(str(files / "hgb.joblib"), "--name", "../evil", models=tmp_path)
    assert done.returncode == 2 and "invalid model name" in done.stderr


def test_import_publishes_the_next_version_with_the_contract_from_model_and_sample(files, tmp_path):
    models = tmp_path / "models"
    first = manage(str(files / "hgb.joblib"), "--name", "passengers", "--sample", str(files / "sample.csv"),
                   "--target", "Survived", "--class-names", "0=died,1=survived", models=models)
    second = manage(str(files / "onehot.pkl"), "--name", "passengers", models=models)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "as passengers version 1 (HistGradientBoostingClassifier, classification)" in first.stdout
    assert "as passengers version 2 (LogisticRegression, classification)" in second.stdout
    metadata = json.loads((models / "passengers" / "1" / "metadata.json").read_text())
    features = {f["name"]: f for f in metadata["schema"]["features"]}
    assert [f["name"] for f in metadata["schema"]["features"]] == ["Sex", "Pclass", "Age", "Fare", "Embarked"]
    assert features["Sex"]["categories"] == ["female", "male"] and features["Embarked"]["categories"] == ["C", "Q", "S"]
    assert features["Age"]["allow_missing"] and features["Fare"]["allow_missing"]  # HGB routes gaps itself
    assert features["Fare"]["min"] is not None and features["Fare"]["max"] > features["Fare"]["min"]
    assert metadata["task"] == "classification" and metadata["classes"] == [0, 1]
    assert metadata["class_names"] == {"0": "died", "1": "survived"}
    assert metadata["test_metrics"]["rows"] == 200 and metadata["test_metrics"]["accuracy"] > 0.7
    assert metadata["imported"]["source"]["format"] == "joblib" and metadata["imported"]["sample_rows"] == 200
    assert metadata["schema"]["target"] == "Survived"
    onehot = json.loads((models / "passengers" / "2" / "metadata.json").read_text())
    assert onehot["imported"]["source"]["format"] == "pickle" and onehot["test_metrics"] is None
    # Without a sample, categories come from the encoders and gaps from the imputers.
    assert {f["name"]: f.get("categories") for f in onehot["schema"]["features"]}["Embarked"] == ["C", "Q", "S"]
    assert all(f["allow_missing"] for f in onehot["schema"]["features"])


def test_a_model_that_cannot_take_a_gap_is_not_offered_one(tmp_path):
    """LogisticRegression on raw numbers: with validation trimmed it would answer NaN, served as
    null probabilities; the gap probe asks with scikit-learn's validation, so nulls are a 422."""
    from app import create_app

    frame = titanic_like(200, seed=4)[["Pclass", "Fare", "Survived"]].dropna()
    model = LogisticRegression().fit(frame[["Pclass", "Fare"]], frame["Survived"])
    artifact = publish_model(model, name="plain", models_dir=tmp_path, sample=frame, target="Survived")
    assert not any(f["allow_missing"] for f in artifact.metadata["schema"]["features"])
    client = create_app({"TESTING": True, "MODELS_DIR": str(tmp_path), "DEFAULT_MODEL": "plain"}).test_client()
    refused = client.post("/predict", json={"Pclass": 1, "Fare": None})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "Fare"


def test_a_model_imported_without_a_sample_is_served_page_and_docs_included(files, tmp_path):
    from app import create_app

    assert manage(str(files / "onehot.pkl"), "--name", "bare", models=tmp_path).returncode == 0
    client = create_app({"TESTING": True, "MODELS_DIR": str(tmp_path), "DEFAULT_MODEL": "bare"}).test_client()
    assert client.get("/").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    answer = client.post("/predict", json={"Sex": "male", "Pclass": 3, "Age": None, "Fare": 7.5, "Embarked": None})
    assert answer.status_code == 200 and set(answer.json["predictions"][0]) == {"label", "probabilities", "warnings"}
    refused = client.post("/predict", json={"Sex": "x", "Pclass": 3, "Age": 1, "Fare": 7.5, "Embarked": "S"})
    assert refused.status_code == 422 and "expected one of: female, male" in refused.json["errors"][0]["problem"]


def test_a_skops_file_imports_like_a_pickle(files, tmp_path):
    done = manage(str(files / "onehot.skops"), "--name", "safe", "--sample", str(files / "sample.csv"), models=tmp_path)
    assert done.returncode == 0, done.stderr
    metadata = artifacts.read_metadata(tmp_path / "safe" / "1")
    assert metadata["imported"]["source"]["format"] == "skops" and metadata["estimator"] == "LogisticRegression"


def test_a_model_fitted_on_arrays_imports_with_named_features(files, tmp_path):
    done = manage(str(files / "array.joblib"), "--name", "fares", "--features", "Pclass,Fare", models=tmp_path)
    assert done.returncode == 0, done.stderr
    metadata = artifacts.read_metadata(tmp_path / "fares" / "1")
    assert [f["name"] for f in metadata["schema"]["features"]] == ["Pclass", "Fare"]


def test_publish_model_from_a_notebook_takes_the_fitted_object_and_a_sample(tmp_path):
    regressor, frame = progression_regressor()
    artifact = publish_model(regressor, name="progression", models_dir=tmp_path, sample=frame.head(100),
                             target="progression")
    metadata = artifact.metadata
    assert metadata["task"] == "regression" and metadata["classes"] == []
    assert metadata["test_metrics"]["rmse"] < metadata["test_metrics"]["baseline"]["rmse"]
    assert metadata["target_range"]["min"] <= metadata["target_range"]["max"]
    with pytest.raises(ImportRefused, match="is not fitted"):
        publish_model(LogisticRegression(), name="x", models_dir=tmp_path)
    assert artifacts.list_versions(tmp_path, "x") == []


@pytest.fixture(scope="module")
def served(files, tmp_path_factory):
    """The imported models served by a real gunicorn."""
    models = tmp_path_factory.mktemp("imported-models")
    for file, name, sample in (("hgb.joblib", "native", "sample.csv"), ("onehot.pkl", "onehot", "sample.csv"),
                               ("pca.joblib", "pca", "sample.csv"), ("regressor.joblib", "regressor", "progression.csv")):
        done = manage(str(files / file), "--name", name, "--sample", str(files / sample), models=models)
        assert done.returncode == 0, done.stderr
    log = tmp_path_factory.mktemp("gunicorn-import") / "server.log"
    with server.running(models, log, DEFAULT_MODEL="native") as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("name, fitted", [("native", native_categories_pipeline), ("onehot", one_hot_pipeline),
                                          ("pca", lambda: one_hot_pipeline(final="pca"))])
def test_an_imported_classifier_served_by_gunicorn_answers_what_the_notebook_answers(served, name, fitted):
    model = fitted()
    X, _ = passengers(60, seed=21)
    X.loc[X.index[:5], "Age"] = np.nan
    records = json.loads(X.to_json(orient="records"))
    answer = requests.post(f"{served}/predict?model={name}", json=records, timeout=10)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["label"] for p in predictions] == model.predict(X).tolist()
    expected = model.predict_proba(X)
    got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in predictions])
    assert np.abs(got - expected).max() <= 1e-9
    single = requests.post(f"{served}/predict?model={name}", json=records[0], timeout=10).json()["predictions"][0]
    assert single["probabilities"]["1"] == pytest.approx(expected[0, 1], abs=1e-9)


@pytest.mark.integration
def test_an_imported_regressor_served_by_gunicorn_answers_what_the_notebook_answers(served):
    model, frame = progression_regressor()
    X = frame.drop(columns="progression").sample(40, random_state=4)
    records = json.loads(X.to_json(orient="records"))
    answer = requests.post(f"{served}/predict?model=regressor", json=records, timeout=10)
    assert answer.status_code == 200, answer.text
    values = np.array([p["value"] for p in answer.json()["predictions"]])
    assert np.allclose(values, model.predict(X), rtol=1e-9, atol=1e-9)
    plain = requests.post(f"{served}/invocations?model=regressor", json={"dataframe_records": records[:3]}, timeout=10)
    assert np.allclose(plain.json()["predictions"], model.predict(X.head(3)), rtol=1e-9)
    described = requests.get(f"{served}/models/regressor", timeout=5).json()
    assert described["task"] == "regression" and described["backend"]


@pytest.mark.integration
def test_models_says_which_backend_answers_each_imported_model(served):
    backends = {name: requests.get(f"{served}/models/{name}", timeout=5).json()["backend"]
                for name in ("native", "onehot", "pca", "regressor")}
    for name, backend in backends.items():
        assert backend.startswith("numpy (") or backend.startswith("scikit-learn ("), (name, backend)
