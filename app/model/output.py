"""What a model answers for a batch of rows, whichever backend computed it.

A classifier answers each row's class (``winners``, indices into the model's ``classes``) and,
when it has ``predict_proba``, the probabilities; a regressor answers ``values``. The compiled
backend (app/model/compiled/) and scikit-learn (``from_scikit_learn``) both produce an ``Output``,
and the registry checks at load that they agree before the compiled one is used.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.base import is_classifier, is_regressor

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class Output:
    winners: np.ndarray | None = None  # (rows,) intp: the predicted class, as an index into classes_
    probabilities: np.ndarray | None = None  # (rows, classes) float64, classifiers with predict_proba
    values: np.ndarray | None = None  # (rows,) float64, regressors

    def __len__(self) -> int:
        return len(self.values if self.values is not None else self.winners)

    def head(self, rows: int) -> "Output":
        """The answers for the first ``rows`` rows (the others were padding)."""
        if len(self) == rows:
            return self
        return Output(*(None if a is None else a[:rows] for a in (self.winners, self.probabilities, self.values)))


def task_of(model: Any) -> str | None:
    """classification, regression, or None for anything else (a transformer, a clusterer)."""
    if is_classifier(model):
        return CLASSIFICATION
    if is_regressor(model):
        return REGRESSION
    return None


def final_estimator(model: Any) -> Any:
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def labels_follow_probabilities(model: Any) -> bool:
    """Whether ``predict`` is the most probable class of ``predict_proba``.

    True for every classifier the service knows except libsvm's SVC/NuSVC with probability=True,
    whose ``predict`` votes one-vs-one while its probabilities come from a separate Platt fit;
    the two can disagree on a row, and the label must be what ``predict`` says.
    """
    estimator = final_estimator(model)
    return type(estimator).__name__ not in ("SVC", "NuSVC")


def takes_frame(model: Any) -> bool:
    """Fitted on a DataFrame (it knows its column names), rather than on a bare array."""
    return hasattr(model, "feature_names_in_")


def rows_for(model: Any, frame: Any) -> Any:
    """The decoded rows in the form the model was fitted on."""
    return frame if takes_frame(model) else frame.to_numpy()


def from_scikit_learn(model: Any, rows: Any, task: str, classes: list[Any], validate: bool = False) -> Output:
    """scikit-learn's answer for ``rows`` (what the model was fitted on: a DataFrame or an array).

    Input validation is trimmed (``assume_finite``, no parameter validation): the rows come from
    the decoder, which has already checked every value against the model's contract. ``validate``
    keeps it, for asking whether a model takes a gap at all (an estimator that cannot would
    otherwise answer NaN).
    """
    trimmed = {} if validate else {"assume_finite": True, "skip_parameter_validation": True}
    with sklearn.config_context(**trimmed), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature-name notices: the columns are the fitted ones
        if task == REGRESSION:
            values = np.asarray(model.predict(rows), dtype="float64").reshape(len(rows), -1)
            return Output(values=values[:, 0])
        probabilities = None
        if hasattr(model, "predict_proba"):
            probabilities = np.asarray(model.predict_proba(rows), dtype="float64")
        if probabilities is not None and labels_follow_probabilities(model):
            winners = probabilities.argmax(axis=1)
        else:
            position = {plain(c): i for i, c in enumerate(classes)}
            winners = np.array([position[plain(label)] for label in model.predict(rows)], dtype=np.intp)
    return Output(winners=winners, probabilities=probabilities)


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON carries (a class label, a parameter)."""
    return value.item() if isinstance(value, np.generic) else value
