"""Predict and encode: decoded rows -> the model's ``Output`` -> the documents the API answers with.

The compiled backend (app/model/compiled/) answers when it compiled and matched scikit-learn at
load time; otherwise scikit-learn does (app/model/output.py). A classifier's label is what its
``predict`` says (for almost every classifier, the most probable class); a regressor answers a
value. The HTTP routes, the direct path and batch scoring all encode through these functions, so
a row gets the same answer whichever way it arrives.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .contract import Decoded
from .output import Output, from_scikit_learn
from .tiles import pad_rows

if TYPE_CHECKING:  # the registry builds each model's explainer with predict(): no import cycle
    from .registry import LoadedModel


def predict(model: LoadedModel, decoded: Decoded) -> Output:
    """The answers for the decoded rows; a row's answer is the same, to the bit, whatever rows
    come with it (the batch is padded to whole tiles: app/model/tiles.py)."""
    if model.compiled is not None:
        return model.compiled.predict(decoded.matrix)
    rows = len(decoded.matrix)
    frame = Decoded(pad_rows(decoded.matrix), [], decoded.schema).frame
    output = from_scikit_learn(model.model, frame if model.takes_frame else frame.to_numpy(), model.task, model.classes)
    return output.head(rows)


def labels(model: LoadedModel, output: Output) -> list:
    classes = model.classes
    return [classes[i] for i in output.winners.tolist()]


def prediction_document(model: LoadedModel, decoded: Decoded, output: Output,
                        explanations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{"model": {...}, "predictions": [...]}``, rows in input order: each a classifier's
    ``{"label", "probabilities", "warnings"}`` or a regressor's ``{"value", "warnings"}``, and
    its ``explanation`` when there are ``explanations`` (app/model/explain/)."""
    warnings = decoded.warnings
    if model.is_regressor:
        predictions = [{"value": value, "warnings": w} for value, w in zip(output.values.tolist(), warnings)]
    elif output.probabilities is None:  # a classifier without predict_proba (LinearSVC, SVC, hinge SGD)
        predictions = [{"label": label, "probabilities": None, "warnings": w}
                       for label, w in zip(labels(model, output), warnings)]
    elif len(model.classes) == 2:  # the common case, built without a zip per row
        first, second = (str(c) for c in model.classes)
        predictions = [{"label": label, "probabilities": {first: p, second: q}, "warnings": w}
                       for label, (p, q), w in zip(labels(model, output), output.probabilities.tolist(), warnings)]
    else:
        keys = [str(c) for c in model.classes]
        predictions = [{"label": label, "probabilities": dict(zip(keys, row)), "warnings": w}
                       for label, row, w in zip(labels(model, output), output.probabilities.tolist(), warnings)]
    if explanations is not None:
        for prediction, explanation in zip(predictions, explanations):
            prediction["explanation"] = explanation
    return {"model": {"name": model.name, "version": model.version}, "predictions": predictions}


def plain_document(model: LoadedModel, output: Output) -> dict[str, Any]:
    """MLflow's scoring-server answer: ``{"predictions": [label or value, ...]}``."""
    if model.is_regressor:
        return {"predictions": output.values.tolist()}
    return {"predictions": labels(model, output)}
