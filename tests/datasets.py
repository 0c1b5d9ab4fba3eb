"""Small data sets the tests generate, so they need no downloads."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from app.model.contract import Schema
from app.model.describe import describe_frame

ROOT = Path(__file__).resolve().parent.parent


def titanic_like(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Titanic-style passengers: string categories, gaps in age and port, a name per row."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], rows, p=[0.4, 0.6])
    pclass = rng.choice([1, 2, 3], rows, p=[0.25, 0.25, 0.5])
    age = rng.normal(30, 12, rows).clip(1, 80).round()
    fare = (rng.gamma(2.0, 15.0, rows) * (4 - pclass)).round(2)
    embarked = rng.choice(["S", "C", "Q"], rows, p=[0.7, 0.2, 0.1]).astype(object)
    score = 1.5 * (sex == "female") - 0.8 * (pclass - 2) - 0.02 * (age - 30) + rng.normal(0, 0.7, rows)
    frame = pd.DataFrame({
        "Name": [f"Passenger {i}" for i in range(rows)],
        "Sex": sex,
        "Pclass": pclass,
        "Age": age,
        "Fare": fare,
        "Embarked": embarked,
        "Survived": (score > 0.3).astype(int),
    })
    frame.loc[rng.random(rows) < 0.2, "Age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "Embarked"] = np.nan
    return frame


def progression_like(rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """scikit-learn's diabetes regression data (shipped with it: no download), made to look like
    a user's file: sex as text, gaps in bmi and bp, the target renamed ``progression``."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    rng = np.random.default_rng(seed)
    frame["sex"] = np.where(frame["sex"] == 1, "female", "male").astype(object)
    frame.loc[rng.random(len(frame)) < 0.08, "bmi"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, "bp"] = np.nan
    return frame if rows is None else frame.sample(rows, replace=rows > len(frame), random_state=seed)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@functools.lru_cache(maxsize=None)
def pima_schema() -> Schema:
    """The Pima training data's input contract, as training records it."""
    return describe_frame(pd.read_csv(ROOT / "data" / "training.csv").drop(columns="Outcome"))
