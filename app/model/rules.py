"""The input rules, each written once, and the words every message about an input uses.

Two decoders apply them (app/model/decoding.py): the per-value one, which reports every broken
rule with its message, and the bulk one, which only has to tell that none is broken, a value at
a time for a few rows and a matrix at a time for many. Both read the rules from here, so they
cannot drift apart; tests check each rule's scalar and matrix forms against each other.

The rules: a JSON number is an int or a float (``JSON_NUMBER_TYPES``); text must look like a
number (``NUMBER_TEXT``); a number is finite and within +-1e15 (``FINITE_NUMBER``); a gap only
where the model has seen gaps (``GAP_MESSAGE``); a category is one of the model's
(``category_text`` and ``Feature.codes``). A number outside the training range is predicted with
a warning (``outside``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .contract import Feature

# Finite is not enough: scaling a value near the float64 limit overflows to infinity inside the
# Pipeline. No measurement a model is trained on comes near this bound.
MAX_MAGNITUDE = 1e15
# What JSON may carry for a number: exactly these types (a boolean is an int to Python, not here).
JSON_NUMBER_TYPES = frozenset({int, float})
# A number sent as text (query strings, CSV cells); float() alone also takes '1_2' and non-ASCII digits.
NUMBER_TEXT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)", re.IGNORECASE)
MAX_LISTED = 12  # categories or field names quoted in one message


@dataclass(frozen=True)
class NumberRule:
    """A condition every number must meet once it is read as a float (gaps are checked apart)."""

    accepts: Callable[[float], bool]  # one value
    accepts_in: Callable[[np.ndarray], np.ndarray]  # a whole matrix: True where accepted
    message: Callable[[Any, float], str]  # why a value is refused: (the value as sent, as read)


def _refusal(sent: Any, x: float) -> str:
    if not math.isfinite(x):
        return f"expected a finite number, got {quote(sent) if isinstance(sent, str) else short(x)}"
    return f"expected a number between -1e15 and 1e15, got {short(x)}"


# Finite and within +-MAX_MAGNITUDE: NaN and the infinities fail both comparisons.
FINITE_NUMBER = NumberRule(
    accepts=lambda x: -MAX_MAGNITUDE <= x <= MAX_MAGNITUDE,
    accepts_in=lambda matrix: (matrix >= -MAX_MAGNITUDE) & (matrix <= MAX_MAGNITUDE),
    message=_refusal,
)
GAP_MESSAGE = "missing value; this model was trained without gaps in this field"  # null where none is allowed


# ---- warnings: predicted, but said ------------------------------------------------------------
def outside(x: float, low: float, high: float) -> bool:
    """Outside the training range; NaN bounds (no range recorded, or a category) never are."""
    return x < low or x > high


def outside_in(matrix: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return (matrix < low) | (matrix > high)


def range_warning(feature: Feature, number: float) -> str:
    return (f"{feature.name}={short(number)} is outside the range seen in training "
            f"({short(feature.minimum)} to {short(feature.maximum)}); the prediction is an extrapolation")


def bounds(feature: Feature) -> tuple[float, float]:
    """The training range as floats, NaN where none applies."""
    if feature.minimum is None or feature.maximum is None:
        return math.nan, math.nan
    return float(feature.minimum), float(feature.maximum)


# ---- categories -------------------------------------------------------------------------------
def category_text(value: Any) -> Any:
    """A boolean column was recorded as the categories 'False' and 'True'."""
    return str(value) if isinstance(value, bool) else value


# ---- words ------------------------------------------------------------------------------------
def cell_count_message(expected: int, got: int) -> str:
    """A row with the wrong number of cells (CSV, dataframe_split, a file)."""
    return f"expected {expected} values (one per column), got {got}"


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {short(value)}"
    if isinstance(value, str):
        return f"the string {quote(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def short(number: float) -> str:
    if isinstance(number, float) and not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.6g}" if isinstance(number, float) else str(number)


def listing(items: Iterable[Any]) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", ... ({len(items)} in all)" if len(items) > MAX_LISTED else "")
