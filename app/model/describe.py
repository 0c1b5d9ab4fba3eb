"""What a training frame says about a model's inputs: the schema it records, and the frame as
the serving matrix (training checks the compiled backend on its held-out rows with it)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .contract import CATEGORY, NUMBER, Feature, Schema

def describe_frame(frame: pd.DataFrame, ignored: Sequence[str] = (), target: str | None = None,
                   annotations: Mapping[str, Mapping[str, str]] | None = None) -> Schema:
    """The schema of the feature columns a model is trained on (``frame`` holds features only).

    ``annotations`` optionally gives each column a human label, unit and description.
    """
    features = []
    for name in frame.columns:
        notes = {k: v for k, v in (annotations or {}).get(str(name), {}).items() if k in ("label", "unit", "description") and v}
        column = frame[name]
        allow_missing = bool(column.isna().any())
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            present = column.dropna().astype("float64")
            integer = bool(len(present)) and bool((present == np.round(present)).all())
            low, high = (float(present.min()), float(present.max())) if len(present) else (None, None)
            median = float(present.median()) if len(present) else 0.0
            features.append(
                Feature(
                    name=str(name), kind=NUMBER, allow_missing=allow_missing, integer=integer,
                    minimum=_native(low, integer), maximum=_native(high, integer),
                    example=_native(round(median) if integer else round(median, 4), integer), **notes,
                )
            )
        else:
            present = category_values(column).dropna()
            categories = tuple(sorted(present.unique()))
            example = present.mode().iloc[0] if len(present) else None
            features.append(
                Feature(name=str(name), kind=CATEGORY, allow_missing=allow_missing, categories=categories,
                        example=example, **notes)
            )
    return Schema(features=tuple(features), ignored=tuple(ignored), target=target)


def matrix_from_frame(schema: Schema, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A training-side frame as the serving matrix, and which rows the service would accept."""
    columns, usable = [], np.ones(len(frame), dtype=bool)
    for feature in schema.features:
        if feature.kind == NUMBER:
            columns.append(frame[feature.name].to_numpy(dtype="float64"))
        else:
            codes = feature.codes
            values = category_values(frame[feature.name])
            column = np.array([np.nan if not isinstance(v, str) else codes.get(v, -1.0) for v in values])
            usable &= column != -1.0
            columns.append(column)
    return np.column_stack(columns), usable


def category_values(column: pd.Series) -> pd.Series:
    """Strings with NaN for gaps: the one representation the Pipeline's imputer recognises."""
    strings = column.map(lambda v: v if isinstance(v, str) else (None if _is_missing(v) else str(v)))
    return strings.astype(object).where(strings.notna(), np.nan)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _native(number: float | None, integer: bool):
    if number is None:
        return None
    return int(number) if integer else float(number)
