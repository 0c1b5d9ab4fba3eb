"""Why a row got its answer: per-feature contributions that add up to the model's output.

Each explained row gets ``baseline + sum(contributions) == value``, where ``value`` is the model's
output for the row (``output`` says which) and ``baseline`` the output expected over the training
rows. Contributions are per feature the client sends (a one-hot encoded category is one feature).

- ``linear`` (exact): linear models (logistic regression, ridge, any linear scikit-learn estimator
  the compiled backend knows) over columns that each come from one feature: linear.py.
- ``tree-shap`` (exact): trees, forests and boosting: TreeSHAP's Shapley values, tree_shap.py.
- ``background-shapley`` / ``permutation-shapley`` (approximate): everything else, the default
  calibrated SVM included: Shapley values against up to 100 stored training rows, sampling.py.

The output explained: a binary classifier's ``log-odds`` of classes[1] (``probability`` of it for
forests, which average probabilities; ``decision`` for linear classifiers without probabilities);
with more classes, the predicted class's ``softmax-score`` (its score before the softmax: linear and
boosted models), ``probability`` (forests) or ``log-odds`` (the approximation); a regressor's
``value`` (``log-value`` for boosting with a log link).

The explainer is built once per loaded version (the registry, in gunicorn's master), and checked
like the compiled backend: on synthetic rows, the explained value must be the served prediction's
(to 1e-9), or the next method is tried. Imports no Flask.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from scipy.special import expit, softmax

from .. import predict
from ..compiled import TOLERANCE, Unsupported, compile_pipeline, synthetic_rows
from ..compiled.linear import LinearSum
from ..compiled.trees import TreeSum
from ..contract import Decoded
from ..errors import InputError, InvalidInput
from ..output import Output
from .attribution import Attribution
from .linear import LinearContributions
from .players import NotAdditive, owners
from .reference import KEY, background_of, input_mean_of, reference
from .sampling import SampledContributions
from .tree_shap import TreeContributions

if TYPE_CHECKING:
    from ..registry import LoadedModel

log = logging.getLogger("app.explain")
FIELD = "explain"  # the request's field and query parameter
CHECKED_ROWS = 16  # synthetic rows an exact explainer is checked on at load (the approximation: 2)
OUTPUTS = {"logit": "log-odds", "multinomial": "softmax-score", "decision": "decision", "identity": "value",
           "log": "log-value"}  # and "mean": a forest's "probability" or "value"
EPSILON = 1e-12  # the approximation's probabilities are kept this far from 0 and 1: log-odds within +-27.6


@dataclass(frozen=True)
class Explanations:
    """One explained output per row: the class explained (an index into the model's classes;
    None for a regressor), the baseline, the value and each feature's contribution."""
    classes: np.ndarray | None
    baselines: np.ndarray  # (rows,)
    values: np.ndarray  # (rows,)
    contributions: np.ndarray  # (rows, features)


@dataclass(frozen=True)
class Explainer:
    method: str  # "linear", "tree-shap", "background-shapley", "permutation-shapley"
    exact: bool
    output: str  # "log-odds", "probability", "softmax-score", "decision", "value", "log-value"
    baseline_from: str  # for people: what the baseline averages over
    prepare: Callable[[np.ndarray], np.ndarray]  # decoded rows -> what ``contributions`` takes
    contributions: Any  # LinearContributions, TreeContributions or SampledContributions
    per_class: bool  # several classes: the row's predicted class is explained, else classes[1] (or a value)
    regressor: bool
    seconds_per_row: float = 0.0  # what explaining a row cost when the version was loaded (its check)

    def row_limit(self, seconds: float) -> int:
        """The rows one request may have explained within ``seconds`` (EXPLAIN_TIME_LIMIT), at the
        cost measured at load: a large forest's exact TreeSHAP, or an approximation over many
        features, must not run past the worker's timeout."""
        if self.seconds_per_row <= 0:
            return 1 << 62
        return max(1, int(seconds / self.seconds_per_row))

    def attribute(self, matrix: np.ndarray) -> Attribution:
        return self.contributions.attribute(self.prepare(matrix))

    def explain(self, matrix: np.ndarray, output: Output) -> Explanations:
        """``matrix``: decoded rows; ``output``: what the model answered for them."""
        attribution = self.attribute(matrix)
        rows = np.arange(len(matrix))
        column = output.winners if self.per_class else np.zeros(len(matrix), dtype=np.intp)
        classes = None if self.regressor else (column if self.per_class else np.ones(len(matrix), dtype=np.intp))
        return Explanations(classes, attribution.baseline[column], attribution.values[rows, column],
                            attribution.contributions[rows, :, column])

    def describe(self) -> dict[str, Any]:
        return {"available": True, "method": self.method, "exact": self.exact, "output": self.output,
                "baseline": self.baseline_from}


@dataclass(frozen=True)
class Unexplained:
    """A model none of the methods explains (a classifier without probabilities that is not
    linear); a request for explanations is refused with the reason."""
    reason: str

    def describe(self) -> dict[str, Any]:
        return {"available": False, "reason": self.reason}


class Mismatch(Exception):
    """The explained values are not the served predictions'."""


# ---- building, once per loaded version --------------------------------------------------------
def explainer_for(model: "LoadedModel") -> Explainer | Unexplained:
    """The exact method when the model has one and it checks out, else the approximation."""
    reasons = []
    for build in (_exact, _sampled):
        try:
            explainer = build(model)
            return replace(explainer, seconds_per_row=_check(explainer, model))
        except (Unsupported, NotAdditive, Mismatch, ValueError) as exc:
            reasons.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a model that cannot be explained is still served
            log.warning("model %s: %s explanations failed (%s: %s)", model.tag, build.__name__.strip("_"),
                        type(exc).__name__, exc)
            reasons.append(f"{type(exc).__name__}: {exc}")
    log.warning("model %s cannot explain its predictions: %s", model.tag, "; ".join(reasons))
    return Unexplained("; ".join(reasons))


def _exact(model: "LoadedModel") -> Explainer:
    program = model.compiled or compile_pipeline(model.model, model.schema)
    terms = program.estimator.terms
    if terms is None:
        raise Unsupported(f"no exact method for {program.estimator.kind}")
    owner = owners(program.transform, model.schema)
    features = len(model.schema.features)
    binary = len(model.classes) == 2
    if isinstance(terms, LinearSum):
        mean = input_mean_of(model.metadata)
        baseline_from = _training_rows(model.metadata)
        if mean is None:  # a version without the training mean: the stored rows', or the example's
            background, baseline_from = background_of(model.metadata, model.decoder)
            mean = program.transform(background).mean(axis=0)
        contributions = LinearContributions(terms, owner, features, mean, None)
    elif isinstance(terms, TreeSum):
        contributions = TreeContributions(terms, owner, features, [1] if terms.link == "mean" and binary else None)
        baseline_from = "the training samples, as the trees counted them"
    else:
        raise Unsupported(f"no exact method for {type(terms).__name__}")
    link = terms.link
    output = ("value" if model.is_regressor else "probability") if link == "mean" else OUTPUTS[link]
    return Explainer(contributions.method, True, output, baseline_from, program.transform, contributions,
                     per_class=not model.is_regressor and not binary, regressor=model.is_regressor)


def _sampled(model: "LoadedModel") -> Explainer:
    schema, binary = model.schema, len(model.classes) == 2

    def score(matrix: np.ndarray) -> np.ndarray:
        output = predict.predict(model, Decoded(matrix, [], schema))
        if model.is_regressor:
            return output.values[:, None]
        if output.probabilities is None:
            raise Unsupported("a classifier without probabilities that is not linear")
        return log_odds(output.probabilities[:, [1]] if binary else output.probabilities)

    background, baseline_from = background_of(model.metadata, model.decoder)
    contributions = SampledContributions(score, background)
    return Explainer(contributions.method, False, "value" if model.is_regressor else "log-odds",
                     baseline_from, _unchanged, contributions, per_class=not model.is_regressor and not binary,
                     regressor=model.is_regressor)


def _unchanged(matrix: np.ndarray) -> np.ndarray:
    return matrix


def _training_rows(metadata: dict[str, Any]) -> str:
    stored = metadata.get(KEY) or {}
    return f"{stored.get('rows')} {stored.get('source', 'training')} rows"


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(probabilities, EPSILON)) - np.log(np.maximum(1 - probabilities, EPSILON))


def _check(explainer: Explainer, model: "LoadedModel") -> float:
    """The explained values are the served predictions' on synthetic rows (the approximation's
    add up by construction: two rows check that it runs); returns the seconds a row took (the
    faster of two runs, so a busy moment at load does not shrink the row limit)."""
    matrix = synthetic_rows(model.schema, rows=CHECKED_ROWS if explainer.exact else 2)
    output = predict.predict(model, Decoded(matrix, [], model.schema))
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        values = explainer.attribute(matrix).values
        timings.append(time.perf_counter() - started)
    kind = explainer.output
    if kind == "value":
        _close(values[:, 0], output.values)
    elif kind == "log-value":
        _close(np.exp(values[:, 0]), output.values)
    elif kind == "decision":
        winners = (values[:, 0] > 0).astype(np.intp) if values.shape[1] == 1 else values.argmax(axis=1)
        if not np.array_equal(winners, output.winners):
            raise Mismatch("the explained decision picks other classes than the model")
    else:
        probabilities = output.probabilities if explainer.per_class else output.probabilities[:, [1]]
        explained = {"log-odds": expit, "probability": lambda v: v, "softmax-score": lambda v: softmax(v, axis=1)}[kind]
        _close(explained(values), probabilities)
    return min(timings) / len(matrix)


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    difference = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    largest = float(np.max(difference)) if difference.size else 0.0
    if not largest <= TOLERANCE:
        raise Mismatch(f"the explained values differ from the predictions by up to {largest:.3g}")


# ---- answering ----------------------------------------------------------------------------------
def require(model: "LoadedModel") -> Explainer:
    """The model's explainer, or a 422 naming the field: this model explains nothing."""
    explainer = model.explainer
    if not isinstance(explainer, Explainer):
        reason = explainer.reason if isinstance(explainer, Unexplained) else "it was loaded without explanations"
        raise InvalidInput([InputError(None, FIELD, f"model {model.tag} cannot explain its predictions: {reason}")])
    return explainer


def documents(model: "LoadedModel", explainer: Explainer, explanations: Explanations) -> list[dict[str, Any]]:
    """Each row's ``explanation`` in the API's shape."""
    names = model.schema.names
    labels = [None] * len(explanations.values) if explanations.classes is None else \
        [model.classes[i] for i in explanations.classes.tolist()]
    return [{"method": explainer.method, "exact": explainer.exact, "output": explainer.output, "class": label,
             "baseline": baseline, "value": value, "contributions": dict(zip(names, row))}
            for label, baseline, value, row in zip(labels, explanations.baselines.tolist(), explanations.values.tolist(),
                                                   explanations.contributions.tolist())]


__all__ = ["FIELD", "Explainer", "Explanations", "Unexplained", "documents", "explainer_for", "log_odds",
           "reference", "require"]
