"""Shared fixtures: the real default model (trained once per session) and small Flask fixtures."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app import config, create_app
from app.model.training import TrainingOptions, train
from tests.datasets import progression_like, titanic_like, write_csv

ROOT = Path(__file__).resolve().parent.parent
PIMA = config.DEFAULT_MODEL_NAME
REGRESSOR = "progression"  # the regressor every served-models test sees beside the classifiers


@pytest.fixture(scope="session", autouse=True)
def no_settings_from_the_shell():
    """A developer's API_KEYS, RATE_LIMIT or PORT must not leak into the apps and servers tests start."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (*config.SETTINGS, *config.RENAMED, "PROMETHEUS_MULTIPROC_DIR"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def default_training(tmp_path_factory) -> dict:
    """`python train.py` exactly as a user runs it, once per session: (models_dir, stdout, stderr)."""
    models = tmp_path_factory.mktemp("models")
    done = subprocess.run(
        [sys.executable, "train.py", "--models-dir", str(models)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return {"models_dir": models, "stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="session")
def models_dir(default_training, tmp_path_factory) -> Path:
    """The default Pima model, a small Titanic-style classifier with categories and gaps, and a
    HistGradientBoosting regressor (with a category and gaps too)."""
    models = tmp_path_factory.mktemp("served-models")
    shutil.copytree(default_training["models_dir"], models, dirs_exist_ok=True)
    folder = tmp_path_factory.mktemp("data")
    data = write_csv(titanic_like(), folder / "titanic.csv")
    train(TrainingOptions(data=data, target="Survived", name="titanic", estimator="logreg", models_dir=models))
    data = write_csv(progression_like(), folder / "progression.csv")
    train(TrainingOptions(data=data, target="progression", name=REGRESSOR, estimator="hgb", folds=3, models_dir=models))
    return models


@pytest.fixture
def models_copy(models_dir, tmp_path) -> Path:
    """A private copy of the session's models, for tests that change them (reloads, the admin API, jobs)."""
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    return copy


@pytest.fixture(scope="session")
def logreg_version(models_dir, tmp_path_factory) -> Path:
    """A logistic-regression version 2 of the default model, trained once, in a folder of its own
    beside a copy of version 1 (to copy in, or to push)."""
    folder = tmp_path_factory.mktemp("logreg")
    shutil.copytree(models_dir / PIMA / "1", folder / PIMA / "1")
    result = train(TrainingOptions(data=ROOT / "data" / "training.csv", test_data=ROOT / "data" / "test.csv",
                                   target="Outcome", name=PIMA, estimator="logreg", folds=3, models_dir=folder))
    assert result.artifact.version == 2
    return result.artifact.path


@pytest.fixture
def app(models_dir):
    return create_app({"TESTING": True, "MODELS_DIR": str(models_dir)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_app(models_dir):
    """An app over the session's models with these settings (e.g. API_KEYS=(KEY,))."""
    def make(**settings):
        return create_app({"TESTING": True, "MODELS_DIR": str(models_dir), **settings})
    return make


@pytest.fixture(scope="session")
def test_rows() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "test.csv")


@pytest.fixture(scope="session")
def env_without_settings() -> dict:
    """The environment minus the service's own settings, so a developer's shell cannot leak in."""
    return {k: v for k, v in os.environ.items() if k not in config.SETTINGS}
