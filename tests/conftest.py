"""Shared fixtures: the real default model (trained once per session) and small Flask fixtures."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app import create_app
from app.training import TrainingOptions, train
from tests.datasets import titanic_like, write_csv

ROOT = Path(__file__).resolve().parent.parent
PIMA = "pima-diabetes"


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
    """The default Pima model plus a small Titanic-style model with categories and gaps."""
    models = tmp_path_factory.mktemp("served-models")
    shutil.copytree(default_training["models_dir"], models, dirs_exist_ok=True)
    data = write_csv(titanic_like(), tmp_path_factory.mktemp("titanic") / "titanic.csv")
    train(TrainingOptions(data=data, target="Survived", name="titanic", estimator="logreg", models_dir=models))
    return models


@pytest.fixture
def app(models_dir):
    return create_app({"TESTING": True, "MODELS_DIR": str(models_dir)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def test_rows() -> pd.DataFrame:
    return pd.read_csv(ROOT / "data" / "test.csv")


@pytest.fixture(scope="session")
def env_without_settings() -> dict:
    """The environment minus the service's own settings, so a developer's shell cannot leak in."""
    from app.config import PARSERS

    return {k: v for k, v in os.environ.items() if k not in PARSERS}
