"""Drift: how far what a model is asked today is from what it was trained on, as one number per feature.

Training and import record a *reference* in the version's metadata (``drift_reference``, signed
with the rest): per feature, how many rows fell in each bin (quantile bins for numbers, one bin
per category the model knows, seen or not) and how many had a gap; and how the model's
predictions spread (per class for a classifier, in quantile bins of the values for a regressor).
Serving counts the rows it is asked into the same bins (``Bins.count``, app/gateway/drift.py keeps
the window), and the population stability index compares the two:

    PSI = sum over bins of (current share - reference share) * ln(current share / reference share)

A share of 0 (an empty bin on either side) is taken as ``EPSILON`` so the logarithm stays finite.
The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one. With
few rows the index is noisy (with n rows and k bins it is about (k - 1) / n even without any
drift), so below a minimum of rows it is not given at all.

The bins are the same function at both ends (``Bins.count``), so a row lands in the same bin in
training as in serving. Imports no Flask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .contract import NUMBER, Decoded, Schema
from .describe import matrix_from_frame
from .output import REGRESSION, Output, from_scikit_learn, rows_for

METADATA_KEY = "drift_reference"
QUANTILES = tuple(i / 10 for i in range(1, 10))  # decile cuts: up to 10 bins, fewer where values repeat
EPSILON = 1e-4  # the share an empty bin counts as (on either side)
MODERATE, MAJOR = 0.1, 0.25  # PSI thresholds: below MODERATE stable, above MAJOR a major shift
LEVELS = ("stable", "moderate", "major")


# ---- the reference, at training and import ----------------------------------------------------
def reference(schema: Schema, matrix: np.ndarray, predicted: Output, task: str, classes: list[Any],
              predictions_from: str) -> dict[str, Any]:
    """What training saw, in the serving matrix's terms (``matrix``: rows in schema order, NaN for
    a gap, a category as its code), and the model's answers ``predicted``; ``predictions_from``
    says which rows those answer (held-out rows are out of sample, as served rows are)."""
    features: dict[str, dict[str, Any]] = {
        feature.name: {"edges": quantile_edges(matrix[:, column])} if feature.kind == NUMBER else {}
        for column, feature in enumerate(schema.features)}
    predictions: dict[str, Any] = {"rows": int(len(predicted)), "from": predictions_from}
    if task == REGRESSION:
        predictions["edges"] = quantile_edges(predicted.values)
    document = {"rows": int(len(matrix)), "features": features, "predictions": predictions}
    bins = Bins(schema, document, task, classes)
    counted = bins.count(matrix, None)
    for spec in bins.features:
        features[spec.name]["counts"] = counted[spec.start:spec.stop - 1].tolist()
        features[spec.name]["missing"] = int(counted[spec.stop - 1])
    predictions["counts"] = bins.count_predictions(predicted).tolist()
    return document


def reference_of(model: Any, schema: Schema, task: str, classes: list[Any], rows: pd.DataFrame,
                 answered: pd.DataFrame, predictions_from: str) -> dict[str, Any]:
    """The reference of a fitted model: the feature ``rows`` it learned from, and its answers for
    the ``answered`` rows (predicted as the server's scikit-learn path predicts them). Rows the
    service would refuse (a category the model does not know) are left out, as serving never counts them."""
    matrix, usable = matrix_from_frame(schema, rows)
    answered_matrix, answered_usable = matrix_from_frame(schema, answered)
    answered_matrix = answered_matrix[answered_usable]
    predicted = from_scikit_learn(model, rows_for(model, Decoded(answered_matrix, [], schema).frame), task, classes)
    return reference(schema, matrix[usable], predicted, task, classes, predictions_from)


def counted_answers(predicted: Output, task: str) -> np.ndarray:
    """What is counted of an answer: a regressor's values, a classifier's class indices."""
    return predicted.values if task == REGRESSION else predicted.winners


def unavailable(reason: str) -> dict[str, Any]:
    """The reference of a version that has none (an import without a sample), and why."""
    return {"unavailable": reason}


def quantile_edges(values: np.ndarray) -> list[float]:
    """Decile cuts of the present values, 6 significant digits, each once: a value lands in bin
    i when edges[i-1] < value <= edges[i] (the first and last bins are open-ended)."""
    present = values[~np.isnan(values)]
    if not len(present):
        return []
    cuts = np.quantile(present, QUANTILES)
    return sorted({float(f"{cut:.6g}") for cut in cuts.tolist()})


# ---- bins: the same at training and serving ---------------------------------------------------
@dataclass(frozen=True)
class FeatureBins:
    name: str
    kind: str
    start: int  # this feature's slice of a count vector: its bins, then its gaps at stop - 1
    stop: int
    edges: np.ndarray | None  # numbers: the cut points; categories: None (the code is the bin)
    labels: tuple[str, ...]  # for people, one per bin, gaps last


class Bins:
    """Where a row counts: one vector of counts per model version, laid out as
    [rows, feature 1's bins and gaps, feature 2's ..., the predictions' bins]."""

    def __init__(self, schema: Schema, document: Mapping[str, Any], task: str, classes: list[Any]):
        self.schema = schema
        self.reference = document
        self.task = task
        self.classes = list(classes)
        position = 1  # 0 holds the rows
        features = []
        for feature in schema.features:
            if feature.kind == NUMBER:
                edges = np.asarray(document["features"][feature.name]["edges"], dtype="float64")
                labels = number_labels(edges)
            else:
                edges, labels = None, tuple(feature.categories)
            size = len(labels) + 1
            features.append(FeatureBins(feature.name, feature.kind, position, position + size, edges, labels + ("missing",)))
            position += size
        self.features = tuple(features)
        predictions = document["predictions"]
        if task == REGRESSION:
            self.prediction_edges: np.ndarray | None = np.asarray(predictions["edges"], dtype="float64")
            self.prediction_labels = number_labels(self.prediction_edges)
        else:
            self.prediction_edges = None
            self.prediction_labels = tuple(str(c) for c in self.classes)
        self.predictions = slice(position, position + len(self.prediction_labels))
        self.width = self.predictions.stop
        if "counts" in predictions:  # a stored reference (not one being built): its shape must be this layout's
            self._check(document)

    def _check(self, document: Mapping[str, Any]) -> None:
        """A reference that does not fit the schema (edited, or from other code) is refused here,
        at load, rather than failing a comparison later."""
        for spec in self.features:
            stored = document["features"][spec.name]
            if len(stored["counts"]) != spec.stop - spec.start - 1 or int(stored["missing"]) < 0:
                raise ValueError(f"feature {spec.name!r} has {len(stored['counts'])} counts for "
                                 f"{spec.stop - spec.start - 1} bins")
            if spec.edges is not None and np.any(np.diff(spec.edges) <= 0):
                raise ValueError(f"feature {spec.name!r} has bin edges out of order")
        if len(document["predictions"]["counts"]) != len(self.prediction_labels):
            raise ValueError(f"the predictions have {len(document['predictions']['counts'])} counts for "
                             f"{len(self.prediction_labels)} bins")

    def count(self, matrix: np.ndarray, answers: np.ndarray | None) -> np.ndarray:
        """Counts for these rows (``answers``: a classifier's class indices or a regressor's values,
        or None to count the inputs only)."""
        rows = len(matrix)
        slots = np.empty((rows, len(self.features) + (answers is not None)), dtype=np.intp)
        for column, spec in enumerate(self.features):
            values = matrix[:, column]
            gaps = np.isnan(values)
            if spec.edges is None:  # a category's code is its bin
                found = np.where(gaps, spec.stop - 1 - spec.start, values).astype(np.intp)
            else:
                found = np.searchsorted(spec.edges, values, side="left")
                found[gaps] = spec.stop - 1 - spec.start
            slots[:, column] = found + spec.start
        if answers is not None:
            slots[:, -1] = self._prediction_slots(answers)
        counts = np.bincount(slots.ravel(), minlength=self.width)
        counts[0] = rows
        return counts

    def count_predictions(self, predicted: Output) -> np.ndarray:
        """The reference's prediction counts: the predictions' bins only."""
        return np.bincount(self._prediction_slots(counted_answers(predicted, self.task)) - self.predictions.start,
                           minlength=len(self.prediction_labels))

    def _prediction_slots(self, answers: np.ndarray) -> np.ndarray:
        if self.prediction_edges is None:
            return np.asarray(answers, dtype=np.intp) + self.predictions.start
        return np.searchsorted(self.prediction_edges, answers, side="left") + self.predictions.start

    # ---- comparing a window's counts with the reference ----------------------------------------
    def compare(self, counts: np.ndarray, min_rows: int) -> dict[str, Any]:
        """PSI per feature and for the predictions, with each bin's reference and current share;
        the PSI is null (and ``reason`` says why) below ``min_rows`` rows."""
        rows = int(counts[0])
        enough = rows >= min_rows
        features = []
        for spec in self.features:
            stored = self.reference["features"][spec.name]
            expected = np.asarray([*stored["counts"], stored["missing"]], dtype="float64")
            features.append({"name": spec.name, "kind": spec.kind,
                             **_comparison(expected, counts[spec.start:spec.stop], spec.labels, enough,
                                           spec.edges, gaps_last=True)})
        expected = np.asarray(self.reference["predictions"]["counts"], dtype="float64")
        predictions = {"kind": "values" if self.task == REGRESSION else "classes",
                       "reference_rows": int(self.reference["predictions"]["rows"]),
                       "reference_from": self.reference["predictions"]["from"],
                       **_comparison(expected, counts[self.predictions], self.prediction_labels, enough,
                                     self.prediction_edges)}
        reason = None if enough else (f"only {rows} rows in the window; the PSI needs at least {min_rows} "
                                      "(DRIFT_MIN_ROWS) to mean something")
        return {"rows": rows, "min_rows": min_rows, "reason": reason, "reference_rows": int(self.reference["rows"]),
                "features": features, "predictions": predictions}


def _comparison(expected: np.ndarray, current: np.ndarray, labels: tuple[str, ...], enough: bool,
                edges: np.ndarray | None, gaps_last: bool = False) -> dict[str, Any]:
    """The PSI and, per bin, its label (numbers: ``low`` exclusive, ``high`` inclusive, null for
    open ends; a feature's last bin is its gaps: ``gaps: true``) and both shares."""
    reference_shares = shares(expected)
    current_shares = shares(current)
    value = psi(expected, current) if enough and current.sum() > 0 else None
    bins = []
    for i, label in enumerate(labels):
        entry: dict[str, Any] = {"label": label}
        if gaps_last and i == len(labels) - 1:
            entry["gaps"] = True
        elif edges is not None:
            entry["low"] = float(edges[i - 1]) if i > 0 else None
            entry["high"] = float(edges[i]) if i < len(edges) else None
        entry["reference"] = _share(reference_shares[i])
        entry["current"] = _share(current_shares[i])
        bins.append(entry)
    return {"psi": None if value is None else round(value, 6), "level": level(value), "bins": bins}


def _share(value: float) -> float:
    return float(f"{value:.6g}")


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(len(counts))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of ``actual`` counts against ``expected`` counts (same bins);
    empty bins count as a share of EPSILON."""
    p = np.maximum(shares(np.asarray(expected, dtype="float64")), EPSILON)
    q = np.maximum(shares(np.asarray(actual, dtype="float64")), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def level(value: float | None) -> str | None:
    """stable (< 0.1), moderate (0.1 to 0.25) or major (> 0.25); None without a PSI."""
    if value is None or math.isnan(value):
        return None
    return LEVELS[0] if value < MODERATE else LEVELS[1] if value <= MAJOR else LEVELS[2]


def number_labels(edges: np.ndarray) -> tuple[str, ...]:
    """'<= 95', '95 to 110', ..., '> 180': a number bin for people (low exclusive, high inclusive)."""
    cuts = [f"{edge:g}" for edge in np.asarray(edges).tolist()]
    if not cuts:
        return ("any value",)
    return (f"<= {cuts[0]}", *(f"{low} to {high}" for low, high in zip(cuts, cuts[1:])), f"> {cuts[-1]}")


def bins_for(schema: Schema, metadata: Mapping[str, Any], task: str, classes: list[Any]) -> tuple[Bins | None, str | None]:
    """A version's bins, or None and why it has none."""
    document = metadata.get(METADATA_KEY)
    if document is None:
        return None, ("this version was published before drift references were recorded; retrain it or import it "
                      "again with a sample to monitor drift")
    if "unavailable" in document:
        return None, str(document["unavailable"])
    try:
        return Bins(schema, document, task, classes), None
    except (KeyError, TypeError, ValueError) as exc:
        return None, f"its drift reference is not usable ({type(exc).__name__}: {exc})"
