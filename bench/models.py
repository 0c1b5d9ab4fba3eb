"""The benchmark's models, built once into build/bench-models: what people bring, beside our own.

- the default SVM and a 100-tree forest (train.py), as before, and a logistic regression (the
  linear model whose explanations are measured);
- HistGradientBoosting trained by train.py, as a classifier (Pima) and a regressor
  (scikit-learn's diabetes data, with a category and gaps);
- two Pipelines fitted "in a notebook" and imported with publish_model: a ColumnTransformer with
  imputed, scaled numbers and one-hot categories (gaps in both) before a logistic regression, and
  the same with a QuantileTransformer, a step the compiled backend does not know.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.config import DEFAULT_MODEL_NAME

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

HGB_CLASSIFIER, HGB_REGRESSOR = "pima-hgb", "progression-hgb"
RF, LOGREG = "pima-rf", "pima-logreg"
IMPORTED, IMPORTED_UNKNOWN_STEP = "imported-columns", "imported-quantiles"
PASSENGER = {"Sex": "female", "Pclass": 1, "Age": None, "Fare": 80.0, "Embarked": "C"}
PATIENT = {"age": 59, "sex": "female", "bmi": 32.1, "bp": None, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4,
           "s5": 4.8598, "s6": 87}


def ensure(cache: Path) -> Path:
    def missing(name: str) -> bool:
        """Versions from before skops (model.joblib) are not served, and versions from before drift
        references count nothing (the drift cost would be understated): build anew."""
        versions = sorted((cache / name).glob("*/model.skops"), key=lambda path: int(path.parent.name))
        return not versions or "drift_reference" not in (versions[-1].parent / "metadata.json").read_text()

    def train(name: str, *arguments: str) -> None:
        if missing(name):
            print(f"training {name} for the benchmark...", file=sys.stderr)
            subprocess.run([str(BIN / "python"), "train.py", "--quiet", "--models-dir", str(cache), *arguments],
                           cwd=ROOT, check=True)

    train(DEFAULT_MODEL_NAME)
    train(RF, "--estimator", "rf", "--name", RF)
    train(LOGREG, "--estimator", "logreg", "--name", LOGREG)
    train(HGB_CLASSIFIER, "--estimator", "hgb", "--name", HGB_CLASSIFIER)
    if missing(HGB_REGRESSOR):
        from tests.datasets import progression_like, write_csv

        cache.mkdir(parents=True, exist_ok=True)
        data = write_csv(progression_like(), cache / "progression.csv")
        train(HGB_REGRESSOR, "--data", str(data), "--target", "progression", "--estimator", "hgb", "--name", HGB_REGRESSOR)
    for name, unknown_step in ((IMPORTED, False), (IMPORTED_UNKNOWN_STEP, True)):
        if missing(name):
            print(f"importing {name} for the benchmark...", file=sys.stderr)
            _import_notebook_pipeline(cache, name, unknown_step)
    return cache


def _import_notebook_pipeline(cache: Path, name: str, unknown_step: bool) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler

    from app.model.importing import publish_model
    from tests.datasets import titanic_like

    frame = titanic_like(2000, seed=1)
    X, y = frame.drop(columns=["Survived", "Name"]), frame["Survived"]
    scale = QuantileTransformer(n_quantiles=100) if unknown_step else StandardScaler()
    pipeline = make_pipeline(
        ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), scale), ["Pclass", "Age", "Fare"]),
            ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                         OneHotEncoder(handle_unknown="ignore")), ["Sex", "Embarked"]),
        ], sparse_threshold=0),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    publish_model(pipeline, name=name, models_dir=cache, sample=frame.drop(columns="Name").head(400), target="Survived")
