"""Metrics with bootstrap confidence intervals, for the model card.

A test set of 150 rows gives an accuracy that could easily be 5 points off; the interval says so.
Each round resamples the held-out rows with replacement; a round is a vector of counts (how often
each row was drawn), so every metric is a weighted sum over the rows and a block of rounds is one
matrix product, not a Python loop. The interval is the 2.5th to 97.5th percentile of the rounds
(the percentile bootstrap), seeded, so the same rows give the same card.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

ROUNDS = 1000
CONFIDENCE = 0.95
BLOCK_CELLS = 4_000_000  # rounds x rows held in memory at once (32 MB of float64)
PROBABILITY_FLOOR = 1e-15  # log loss of a probability of 0, as scikit-learn clips it


def counts(rows: int, rounds: int = ROUNDS, seed: int = 0):
    """Blocks of resampling counts, shape (block, rows): row i drawn counts[r, i] times in round r."""
    rng = np.random.default_rng(seed)
    block = max(1, min(rounds, BLOCK_CELLS // max(rows, 1)))
    done = 0
    while done < rounds:
        size = min(block, rounds - done)
        drawn = rng.integers(0, rows, size=(size, rows)) + (np.arange(size) * rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * rows).reshape(size, rows).astype("float64")
        done += size


def interval(name: str, value: float | None, rounds: np.ndarray | None) -> dict[str, Any]:
    """``{"name", "value", "low", "high"}``; low and high are None when the rounds say nothing."""
    low = high = None
    if value is not None and rounds is not None:
        finite = rounds[np.isfinite(rounds)]
        if len(finite) >= 0.5 * len(rounds):  # most rounds could compute it (e.g. both classes drawn)
            tail = (1 - CONFIDENCE) / 2 * 100
            low, high = (float(x) for x in np.percentile(finite, [tail, 100 - tail]))
    return {"name": name, "value": _round(value), "low": _round(low), "high": _round(high)}


def _collect(rows: int, measure: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.concatenate([measure(block) for block in counts(rows)])


def classification_intervals(truth: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None,
                             classes: int) -> list[dict[str, Any]]:
    """Accuracy, balanced accuracy, ROC AUC (one-vs-rest macro for more than two classes) and log
    loss; truth and predicted are class indices, probabilities (rows x classes) may be None."""
    rows = len(truth)
    correct = (truth == predicted).astype("float64")
    onehot = np.eye(classes)[truth]  # rows x classes
    results = [interval("accuracy", float(correct.mean()), _collect(rows, lambda c: c @ correct / rows))]

    def balanced(c: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = (c @ (onehot * correct[:, None])) / (c @ onehot)
        return np.nanmean(recall, axis=1)

    results.append(interval("balanced accuracy", float(balanced(np.ones((1, rows)))[0]), _collect(rows, balanced)))
    if probabilities is None:
        return results
    present = [k for k in range(classes) if onehot[:, k].any() and not onehot[:, k].all()]
    if classes == 2 and len(present) == 2:
        auc = _auc_measure(truth == 1, probabilities[:, 1])
        results.append(interval("ROC AUC", float(auc(np.ones((1, rows)))[0]), _collect(rows, auc)))
    elif classes > 2 and len(present) == classes:
        measures = [_auc_measure(truth == k, probabilities[:, k]) for k in range(classes)]

        def macro(c: np.ndarray) -> np.ndarray:
            return np.mean([m(c) for m in measures], axis=0)

        results.append(interval("ROC AUC (one-vs-rest)", float(macro(np.ones((1, rows)))[0]), _collect(rows, macro)))
    losses = -np.log(np.clip(probabilities[np.arange(rows), truth], PROBABILITY_FLOOR, 1.0))
    results.append(interval("log loss", float(losses.mean()), _collect(rows, lambda c: c @ losses / rows)))
    return results


def _auc_measure(positive: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted ROC AUC of each round: the chance a drawn positive outranks a drawn negative
    (ties count half), from the rows sorted once by score and grouped by equal scores."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_positive = scores[order], positive[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])

    def measure(c: np.ndarray) -> np.ndarray:
        weights = c[:, order]
        pos = np.add.reduceat(weights * sorted_positive, starts, axis=1)
        neg = np.add.reduceat(weights * ~sorted_positive, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg  # negatives with a lower score than the group
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))

    return measure


def regression_intervals(truth: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
    """RMSE, MAE and R²."""
    rows = len(truth)
    errors = truth - predicted
    squared, absolute = errors ** 2, np.abs(errors)
    truth_squared = truth ** 2

    def rmse(c: np.ndarray) -> np.ndarray:
        return np.sqrt(c @ squared / rows)

    def r2(c: np.ndarray) -> np.ndarray:
        # A round that drew one value every time has no variance: its total is 0 up to rounding
        # (relative to the sum of squares), and R² is undefined there, not -4e12.
        sum_of_squares = c @ truth_squared
        total = sum_of_squares - (c @ truth) ** 2 / rows
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 1e-9 * np.maximum(sum_of_squares, 1e-300), 1 - (c @ squared) / total, np.nan)

    everything = np.ones((1, rows))
    return [interval("RMSE", float(rmse(everything)[0]), _collect(rows, rmse)),
            interval("MAE", float(absolute.mean()), _collect(rows, lambda c: c @ absolute / rows)),
            interval("R²", float(r2(everything)[0]) if rows > 1 else None, _collect(rows, r2))]


def _round(number: float | None) -> float | None:
    return None if number is None or not math.isfinite(number) else float(f"{number:.4g}")
