"""A fitted scikit-learn model as a chain of NumPy functions: the compiled backend's frame.

``compile_pipeline`` walks a Pipeline (of any length, nested or not): every step but the last
becomes a ``Transform`` from matrix to matrix (app/model/compiled/steps.py), and the last, the
estimator, an ``Estimator`` (linear.py, svm.py, neighbors.py, trees.py, calibration.py). Each
step knows what its input columns hold (``Column``): a number, or a category carried as its index
in a list of names, as the decoder produces them. Anything not recognised raises ``Unsupported``
and the caller keeps scikit-learn; the registry checks every program against scikit-learn
before serving it (verify.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..contract import CATEGORY, Schema
from ..output import Output
from ..tiles import pad_rows

Transform = Callable[[np.ndarray], np.ndarray]


class Unsupported(Exception):
    """The model has a step or setting the compiled backend does not replicate."""


@dataclass(frozen=True)
class Column:
    """What one column of a step's input holds: a number, or a category as its index into
    ``categories`` (NaN for a gap). ``name`` is the column's name where it has one."""
    name: str | None
    categories: tuple[Any, ...] | None = None

    @property
    def is_category(self) -> bool:
        return self.categories is not None


@dataclass(frozen=True)
class Estimator:
    """A compiled final estimator. A classifier gives ``probabilities`` (when the model has
    predict_proba) and/or ``winners`` (class indices; default: the most probable class) and may
    give ``decision`` (decision_function, for calibration); a regressor gives ``values``."""
    kind: str
    probabilities: Transform | None = None
    winners: Transform | None = None
    decision: Transform | None = None
    values: Transform | None = None
    products: bool = True  # computes with matrix products, whose rounding depends on the batch's shape
    # What explanations (app/model/explain/) read of the estimator: its sum of terms (a LinearSum
    # from linear.py, a TreeSum from trees.py); None for the others, which are explained by sampling.
    terms: Any = None


@dataclass(frozen=True)
class CompiledPipeline:
    transform: Transform  # the decoded matrix -> the estimator's input
    estimator: Estimator
    kind: str
    tiled: bool = True  # batches are padded to whole tiles (app/model/tiles.py): matrix products in the chain

    def predict(self, matrix: np.ndarray) -> Output:
        """The answers for ``matrix``; each row's are the same, to the bit, in any batch."""
        if self.tiled:
            rows = len(matrix)
            return self._predict(pad_rows(matrix)).head(rows)
        return self._predict(matrix)

    def _predict(self, matrix: np.ndarray) -> Output:
        features = self.transform(matrix)
        estimator = self.estimator
        if estimator.values is not None:
            return Output(values=estimator.values(features))
        probabilities = estimator.probabilities(features) if estimator.probabilities is not None else None
        if estimator.winners is not None:
            winners = estimator.winners(features)
        else:
            winners = probabilities.argmax(axis=1)
        return Output(winners=winners, probabilities=probabilities)


# Estimator compilers register here by exact type (``@compiles(LogisticRegression)``); a subclass
# may change the arithmetic, so it is not assumed to match.
COMPILERS: dict[type, Callable[[Any], Estimator]] = {}


def compiles(*types: type):
    def register(function: Callable[[Any], Estimator]):
        for kind in types:
            COMPILERS[kind] = function
        return function
    return register


def compile_estimator(estimator: Any) -> Estimator:
    _load_compilers()
    compiler = COMPILERS.get(type(estimator))
    if compiler is None:
        raise Unsupported(f"estimator {type(estimator).__name__}")
    return compiler(estimator)


def input_columns(schema: Schema) -> list[Column]:
    return [Column(f.name, tuple(f.categories) if f.kind == CATEGORY else None) for f in schema.features]


def compile_pipeline(model: Any, schema: Schema) -> CompiledPipeline:
    """The whole model, from the decoded matrix (schema order) to its ``Output``."""
    from .steps import compile_steps

    steps, estimator = _flatten(model)
    transform, columns, in_scikit_learn = compile_steps(steps, input_columns(schema))
    if any(c.is_category for c in columns):
        raise Unsupported("the estimator would receive category names; encode them first")
    compiled = compile_estimator(estimator)
    # /models says which steps still run in scikit-learn: "logistic-regression + scikit-learn step PCA"
    kind = compiled.kind + "".join(f" + scikit-learn step {name}" for name in dict.fromkeys(in_scikit_learn))
    # scikit-learn's steps may multiply matrices too; the compiled steps work a row at a time
    return CompiledPipeline(transform=transform, estimator=compiled, kind=kind,
                            tiled=compiled.products or bool(in_scikit_learn))


def _flatten(model: Any) -> tuple[list[Any], Any]:
    """Nested Pipelines as one list of transformers, and the final estimator."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return [], model
    steps: list[Any] = []
    for _, step in model.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, Pipeline):
            inner, last = _flatten(step)
            steps += [*inner, last]
        else:
            steps.append(step)
    inner, last = _flatten(model.steps[-1][1])
    return steps + inner, last


def chain(transforms: Sequence[Transform]) -> Transform:
    transforms = list(transforms)
    if not transforms:
        return lambda matrix: matrix
    if len(transforms) == 1:
        return transforms[0]

    def run(matrix: np.ndarray) -> np.ndarray:
        for transform in transforms:
            matrix = transform(matrix)
        return matrix
    return run


_loaded = False


def _load_compilers() -> None:
    """Import the estimator modules once, so their ``@compiles`` registrations run."""
    global _loaded
    if not _loaded:
        from . import calibration, linear, neighbors, svm, trees  # noqa: F401
        _loaded = True
