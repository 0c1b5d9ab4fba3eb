"""Linear models: a matrix product, then a link function or a sign.

Every decision is computed as scikit-learn writes it (``X @ coef_.T + intercept_``), so the
product rounds the same way; links are scikit-learn's own (expit, its softmax, its OvR
normalisation). A binary decision > 0 means classes_[1].
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.linear_model import (ARDRegression, BayesianRidge, ElasticNet, ElasticNetCV, HuberRegressor, Lasso,
                                  LassoCV, LinearRegression, LogisticRegression, LogisticRegressionCV, Ridge,
                                  RidgeClassifier, RidgeClassifierCV, RidgeCV, SGDClassifier, SGDRegressor)
from sklearn.svm import LinearSVC, LinearSVR

from .program import Estimator, Transform, Unsupported, compiles


@dataclass(frozen=True)
class LinearSum:
    """A linear model as explanations read it: ``features @ coef + intercept`` (coef: (inputs,
    outputs)), and what that is (``link``): "logit" (a binary classifier's log-odds of
    classes_[1]), "multinomial" (each class's score before a softmax), "decision" (a decision
    function: binary, of classes_[1]) or "identity" (a regressor's value)."""
    coef: np.ndarray
    intercept: np.ndarray
    link: str

    @classmethod
    def of(cls, model: Any, link: str) -> "LinearSum":
        coef = np.asarray(model.coef_, dtype="float64")
        coef = coef.reshape(1, -1) if coef.ndim == 1 else coef  # (outputs, inputs), as scikit-learn keeps it
        intercept = np.asarray(model.intercept_, dtype="float64").reshape(-1)
        return cls(coef.T.copy(), np.broadcast_to(intercept, (coef.shape[0],)).copy(), link)


@compiles(LinearRegression, Ridge, RidgeCV, Lasso, LassoCV, ElasticNet, ElasticNetCV, SGDRegressor, LinearSVR,
          BayesianRidge, ARDRegression, HuberRegressor)
def linear_regression(regressor: Any) -> Estimator:
    coef = np.asarray(regressor.coef_, dtype="float64")
    intercept = np.asarray(regressor.intercept_, dtype="float64")
    if coef.ndim == 2:
        if coef.shape[0] != 1:
            raise Unsupported("a linear model with several targets")
        coef = coef.T  # (features, 1), as scikit-learn multiplies it
        return Estimator(kind=kind_of(regressor), values=lambda features: (features @ coef + intercept)[:, 0],
                         terms=LinearSum.of(regressor, "identity"))
    return Estimator(kind=kind_of(regressor), values=lambda features: features @ coef + intercept,
                     terms=LinearSum.of(regressor, "identity"))


@compiles(LogisticRegression, LogisticRegressionCV)
def logistic(classifier: Any) -> Estimator:
    """Binary: expit of the decision (scikit-learn's _predict_proba_lr); multiclass: the softmax
    of the decision (1.9 has no one-vs-rest LogisticRegression any more)."""
    decision = _decision(classifier)
    if len(classifier.classes_) <= 2:
        def probabilities(features: np.ndarray) -> np.ndarray:
            positive = expit(decision(features))
            return np.stack([1 - positive, positive], axis=1)
    else:
        def probabilities(features: np.ndarray) -> np.ndarray:
            return softmax(decision(features))
    link = "logit" if len(classifier.classes_) <= 2 else "multinomial"
    return Estimator(kind="logistic-regression", probabilities=probabilities, decision=decision,
                     terms=LinearSum.of(classifier, link))


@compiles(SGDClassifier)
def sgd_classifier(classifier: SGDClassifier) -> Estimator:
    """Probabilities only for the losses that have them (log_loss, modified_huber); otherwise
    the label is the decision's, as ``predict`` gives it."""
    decision = _decision(classifier)
    binary = len(classifier.classes_) == 2
    if classifier.loss == "log_loss":
        probabilities = _one_vs_rest_logistic(decision, binary)
    elif classifier.loss == "modified_huber":
        probabilities = _modified_huber(decision, binary)
    else:
        return Estimator(kind="sgd-classifier", winners=_winners(decision, binary), decision=decision,
                         terms=LinearSum.of(classifier, "decision"))
    link = "logit" if binary and classifier.loss == "log_loss" else "decision"
    return Estimator(kind="sgd-classifier", probabilities=probabilities, decision=decision,
                     terms=LinearSum.of(classifier, link))


@compiles(RidgeClassifier, RidgeClassifierCV, LinearSVC)
def linear_classifier(classifier: Any) -> Estimator:
    if getattr(getattr(classifier, "_label_binarizer", None), "y_type_", "").startswith("multilabel"):
        raise Unsupported("a multilabel classifier")
    decision = _decision(classifier)
    binary = len(classifier.classes_) == 2
    return Estimator(kind=kind_of(classifier), winners=_winners(decision, binary), decision=decision,
                     terms=LinearSum.of(classifier, "decision"))


def _decision(classifier: Any) -> Transform:
    """decision_function: (rows,) for two classes, (rows, classes) otherwise."""
    coef = np.asarray(classifier.coef_, dtype="float64")
    coef_t = coef.T if coef.ndim == 2 else coef  # RidgeClassifier keeps a two-class coef_ 1-d
    intercept = np.asarray(classifier.intercept_, dtype="float64")
    if coef_t.ndim == 1 or coef_t.shape[1] == 1:
        return lambda features: (features @ coef_t + intercept).reshape(-1)
    return lambda features: features @ coef_t + intercept


def _winners(decision: Transform, binary: bool) -> Transform:
    if binary:
        return lambda features: (decision(features) > 0).astype(np.intp)
    return lambda features: decision(features).argmax(axis=1)


def _one_vs_rest_logistic(decision: Transform, binary: bool) -> Transform:
    """scikit-learn's _predict_proba_lr: expit of each decision, rows normalised (uniform where
    every class got 0)."""
    def probabilities(features: np.ndarray) -> np.ndarray:
        probability = expit(decision(features))
        if binary:
            return np.stack([1 - probability, probability], axis=1)
        return _normalised(probability)
    return probabilities


def _modified_huber(decision: Transform, binary: bool) -> Transform:
    """(clip(decision, -1, 1) + 1) / 2, rows normalised, as SGDClassifier.predict_proba."""
    def probabilities(features: np.ndarray) -> np.ndarray:
        probability = (np.clip(decision(features), -1, 1) + 1.0) / 2.0
        if binary:
            return np.stack([1.0 - probability, probability], axis=1)
        return _normalised(probability)
    return probabilities


def _normalised(probability: np.ndarray) -> np.ndarray:
    total = probability.sum(axis=1)
    empty = total == 0
    if empty.any():
        probability = probability.copy()
        probability[empty, :] = 1
        total[empty] = probability.shape[1]
    return probability / total.reshape((probability.shape[0], -1))


def softmax(decision: np.ndarray) -> np.ndarray:
    """sklearn.utils.extmath.softmax, operation for operation."""
    shifted = decision - decision.max(axis=1).reshape((-1, 1))
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1).reshape((-1, 1))
    return shifted


def kind_of(model: Any) -> str:
    """The class name as the service reports it: LinearSVR -> "linear-svr"."""
    name = type(model).__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()
