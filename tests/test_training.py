"""Training: the default Pima model, any CSV, deterministic results, and clear CLI errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.model import artifacts
from app.model.training import TrainingError, TrainingOptions, train
from tests.conftest import ROOT
from tests.datasets import progression_like, titanic_like, write_csv

METADATA_KEYS = {
    "name", "version", "created", "command", "estimator", "target", "classes", "schema", "training_data",
    "test_data", "cv", "test_metrics", "fast_path", "versions", "model_sha256", "model_file", "format_version", "fingerprint",
}


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def tiny_options(tmp_path: Path, rows: int = 120, **overrides) -> TrainingOptions:
    data = write_csv(titanic_like(rows=rows, seed=1), tmp_path / "tiny.csv")
    # Three folds keep the suite quick; the default five are exercised by the default model's training.
    settings = dict(data=data, target="Survived", name="tiny", estimator="logreg", folds=3, models_dir=tmp_path / "models")
    settings.update(overrides)
    return TrainingOptions(**settings)


def test_default_training_writes_version_one_and_reaches_the_reference_accuracy(default_training):
    folder = default_training["models_dir"] / "pima-diabetes" / "1"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["test_metrics"]["accuracy"] >= 0.80
    assert metadata["test_metrics"]["rows"] == 332
    assert f"test accuracy {metadata['test_metrics']['accuracy']:.4f}" in default_training["stdout"]
    assert "written to" in default_training["stdout"] and "confusion matrix" in default_training["stdout"]
    assert "grid search: 210/210 fits" in default_training["stderr"]
    assert metadata["class_names"] == {"0": "no diabetes", "1": "diabetes"}  # from data/columns.json


def test_default_model_imputes_exactly_the_fields_with_gaps_in_training(default_training):
    metadata = json.loads((default_training["models_dir"] / "pima-diabetes" / "1" / "metadata.json").read_text())
    allow = {f["name"] for f in metadata["schema"]["features"] if f["allow_missing"]}
    assert allow == {"BloodPressure", "SkinThickness", "BMI"}
    model = artifacts.load(default_training["models_dir"] / "pima-diabetes" / "1").model
    assert type(model[-1]).__name__ == "CalibratedClassifierCV" and model[-1].ensemble is False


def test_metadata_describes_everything_serving_needs(tmp_path):
    result = train(tiny_options(tmp_path))
    metadata = json.loads((result.artifact.path / "metadata.json").read_text())
    assert METADATA_KEYS <= set(metadata)
    assert metadata["classes"] == [0, 1]
    features = {f["name"]: f for f in metadata["schema"]["features"]}
    assert list(features) == ["Sex", "Pclass", "Age", "Fare", "Embarked"]
    assert features["Sex"] == {"name": "Sex", "type": "category", "allow_missing": False,
                               "categories": ["female", "male"], "example": "male"}
    assert features["Age"]["type"] == "number" and features["Age"]["allow_missing"] is True
    assert features["Pclass"]["integer"] is True and (features["Pclass"]["min"], features["Pclass"]["max"]) == (1, 3)
    assert metadata["schema"]["ignored"] == ["Name"]
    assert metadata["training_data"]["sha256"] == artifacts.sha256_file(tmp_path / "tiny.csv")
    assert set(metadata["test_metrics"]) >= {"accuracy", "roc_auc", "confusion_matrix"}
    assert metadata["cv"]["best_params"] and metadata["cv"]["folds"] == 3
    assert metadata["fast_path"]["backend"] == "numpy" and metadata["fast_path"]["labels_identical"] is True
    assert metadata["fast_path"]["max_probability_difference"] <= 1e-9


@pytest.mark.parametrize("estimator", ["svm", "logreg", "rf", "hgb"])
def test_every_classifier_trains_on_categories_and_gaps(tmp_path, estimator):
    result = train(tiny_options(tmp_path, rows=400, estimator=estimator))
    frame = titanic_like(rows=20, seed=9)
    probabilities = result.artifact.model.predict_proba(frame.drop(columns=["Survived", "Name"]))
    assert probabilities.shape == (20, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert result.metadata["test_metrics"]["accuracy"] > 0.7  # the generated signal is strong


@pytest.fixture(scope="module")
def progression_csv(tmp_path_factory) -> Path:
    return write_csv(progression_like(), tmp_path_factory.mktemp("progression") / "progression.csv")


@pytest.mark.parametrize("estimator", ["ridge", "rf", "hgb", "svr"])
def test_every_regressor_trains_on_categories_and_gaps_and_beats_predicting_the_mean(tmp_path, progression_csv, estimator):
    result = train(TrainingOptions(data=progression_csv, target="progression", name="p", estimator=estimator, folds=3,
                                   models_dir=tmp_path))
    metadata = result.metadata
    assert metadata["task"] == "regression" and metadata["classes"] == []
    metrics = metadata["test_metrics"]
    assert metrics["rmse"] < metrics["baseline"]["rmse"] and metrics["mae"] < metrics["baseline"]["mae"]
    assert metrics["r2"] > 0.2 and abs(metrics["baseline"]["r2"]) < 0.1
    assert metadata["cv"]["scoring"] == "neg_root_mean_squared_error"
    assert metadata["target_range"]["min"] == 25.0 and metadata["target_range"]["max"] == 346.0
    frame = progression_like(rows=30, seed=5)
    values = result.artifact.model.predict(frame.drop(columns=["progression"]))
    assert values.shape == (30,) and np.isfinite(values).all()


def test_a_numeric_target_with_many_values_trains_a_regressor_and_says_so(tmp_path, progression_csv):
    done = run_cli("--data", str(progression_csv), "--target", "progression", "--estimator", "ridge", "--folds", "3",
                   "--models-dir", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "training a regressor (--task classification to treat them as classes)" in done.stderr
    assert "(ridge, regression)" in done.stdout and "predict-the-mean" in done.stdout
    assert re.search(r"RMSE +\d", done.stdout)


def test_same_data_and_seed_give_the_same_model(tmp_path):
    first = train(tiny_options(tmp_path, estimator="rf"))
    second = train(tiny_options(tmp_path, estimator="rf"))
    assert second.artifact.version == first.artifact.version + 1
    assert first.metadata["test_metrics"] == second.metadata["test_metrics"]
    assert first.metadata["cv"]["best_params"] == second.metadata["cv"]["best_params"]
    assert first.metadata["fingerprint"] == second.metadata["fingerprint"]


def test_multiclass_string_targets_are_supported(tmp_path):
    frame = titanic_like(rows=150, seed=3)
    frame["Deck"] = np.where(frame["Pclass"] == 1, "upper", np.where(frame["Pclass"] == 2, "middle", "lower"))
    data = write_csv(frame.drop(columns=["Pclass", "Survived"]), tmp_path / "decks.csv")
    result = train(TrainingOptions(data=data, target="Deck", name="decks", estimator="logreg", models_dir=tmp_path))
    assert result.metadata["classes"] == ["lower", "middle", "upper"]
    assert result.metadata["test_metrics"]["roc_auc"] is not None


def test_cli_trains_a_titanic_style_csv(tmp_path):
    data = write_csv(titanic_like(), tmp_path / "titanic.csv")
    done = run_cli("--data", str(data), "--target", "Survived", "--models-dir", str(tmp_path / "m"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "model titanic version 1 (svm)" in done.stdout
    assert "test ROC AUC" in done.stdout
    assert "'Name' looks like an identifier" in done.stderr
    metadata = json.loads((tmp_path / "m" / "titanic" / "1" / "metadata.json").read_text())
    assert metadata["command"].startswith("python train.py --data")
    assert metadata["test_data"]["held_out_fraction"] == 0.2


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


BAD_CLI_INPUTS = [
    # (id, arguments builder, expected words in the error)
    ("missing-file", lambda t: ["--data", str(t / "nope.csv"), "--target", "y"], "does not exist"),
    ("directory", lambda t: ["--data", str(t), "--target", "y"], "is not a file"),
    ("empty-file", lambda t: ["--data", write(t, "e.csv", ""), "--target", "y"], "is empty"),
    ("header-only", lambda t: ["--data", write(t, "h.csv", "a,b,y\n"), "--target", "y"], "no rows"),
    ("binary-garbage", lambda t: ["--data", write_bytes(t, "g.csv", b"\xff\xfe\x00\x81" * 50), "--target", "y"],
     "not a readable CSV"),
    ("ragged-rows", lambda t: ["--data", write(t, "r.csv", "a,y\n1,2\n1,2,3,4\n"), "--target", "y"], "not a readable CSV"),
    ("missing-target", lambda t: ["--data", pima(t), "--target", "Diabetes"], "target column 'Diabetes' is not in"),
    ("one-class", lambda t: ["--data", one_class(t), "--target", "Outcome"], "only one class"),
    ("continuous-target-as-classes", lambda t: ["--data", continuous(t), "--target", "price", "--task", "classification"],
     "fractional numbers"),
    ("text-target-as-numbers", lambda t: ["--data", pima_text_target(t), "--target", "Outcome", "--task", "regression"],
     "holds text such as"),
    ("constant-target-as-numbers", lambda t: ["--data", continuous(t, constant=True), "--target", "price",
                                              "--task", "regression"], "same value in every row"),
    ("classifier-for-numbers", lambda t: ["--data", continuous(t), "--target", "price", "--estimator", "svm"],
     "estimator 'svm' does not do regression"),
    ("regressor-for-classes", lambda t: ["--data", pima(t), "--target", "Outcome", "--estimator", "ridge"],
     "estimator 'ridge' does not do classification"),
    ("scoring-for-the-other-task", lambda t: ["--data", continuous(t), "--target", "price", "--scoring", "accuracy"],
     "scoring 'accuracy' does not score regression"),
    ("target-with-gaps", lambda t: ["--data", gappy_target(t), "--target", "Outcome"], "empty values"),
    ("only-target", lambda t: ["--data", write(t, "o.csv", "y\n" + "0\n1\n" * 10), "--target", "y"], "no feature columns"),
    ("target-without-data", lambda t: ["--target", "label"], "--target needs --data"),
    ("data-without-target", lambda t: ["--data", pima(t)], "--target is required"),
    ("bad-name", lambda t: ["--data", pima(t), "--target", "Outcome", "--name", "../evil"], "invalid model name"),
    ("test-size-out-of-range", lambda t: ["--data", pima(t), "--target", "Outcome", "--test-size", "1.5"], "between 0 and 1"),
    ("test-data-missing-columns", lambda t: ["--data", pima(t), "--target", "Outcome", "--test-data",
                                             write(t, "t.csv", "Glucose,Outcome\n1,0\n")], "lacks the feature columns"),
    ("drop-unknown-column", lambda t: ["--data", pima(t), "--target", "Outcome", "--drop", "Nope"], "--drop names columns"),
    ("too-few-rows-per-class", lambda t: ["--data", write(t, "f.csv", "a,y\n1,0\n2,0\n3,0\n4,0\n5,1\n6,1\n"),
                                          "--target", "y"], "only"),
    ("unknown-estimator", lambda t: ["--estimator", "xgboost"], "invalid choice"),
    ("folds-too-small", lambda t: ["--data", pima(t), "--target", "Outcome", "--folds", "1"], "--folds must be at least 2"),
    ("class-names-of-no-class", lambda t: ["--data", pima(t), "--target", "Outcome", "--class-names", "0=no,2=yes"],
     "class names name classes the model does not have: '2'"),
    ("class-names-unreadable", lambda t: ["--class-names", "diabetes"], "give class names as LABEL=NAME pairs"),
    ("class-names-of-a-regressor", lambda t: ["--data", continuous(t), "--target", "price", "--class-names", "1=x"],
     "class names are for classifiers"),
]


def write_bytes(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def pima(tmp_path: Path) -> str:
    return str(ROOT / "data" / "training.csv")


def one_class(tmp_path: Path) -> str:
    frame = pd.read_csv(ROOT / "data" / "training.csv")
    return str(write_csv(frame.assign(Outcome=1), tmp_path / "one.csv"))


def continuous(tmp_path: Path, constant: bool = False) -> str:
    rng = np.random.default_rng(0)
    price = np.full(50, 7.5) if constant else rng.random(50) * 1000
    return str(write_csv(pd.DataFrame({"size": rng.random(50), "price": price}), tmp_path / "c.csv"))


def pima_text_target(tmp_path: Path) -> str:
    frame = pd.read_csv(ROOT / "data" / "training.csv")
    return str(write_csv(frame.assign(Outcome=frame["Outcome"].map({0: "no", 1: "yes"})), tmp_path / "text.csv"))


def gappy_target(tmp_path: Path) -> str:
    frame = pd.read_csv(ROOT / "data" / "training.csv").astype({"Outcome": "float"})
    frame.loc[3, "Outcome"] = np.nan
    return str(write_csv(frame, tmp_path / "gap.csv"))


@pytest.mark.parametrize("build, expected", [case[1:] for case in BAD_CLI_INPUTS], ids=[c[0] for c in BAD_CLI_INPUTS])
def test_cli_rejects_bad_input_with_a_clear_error(tmp_path, build, expected):
    done = run_cli(*build(tmp_path), "--models-dir", str(tmp_path / "models"), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert expected in done.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("metadata.json"))


def test_training_errors_are_raised_as_training_error_in_the_library(tmp_path):
    with pytest.raises(TrainingError, match="give either --test-data or --test-size"):
        train(tiny_options(tmp_path, test_data=tmp_path / "tiny.csv", test_size=0.2))
