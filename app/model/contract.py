"""The input contract of one model: its features, and the decoded rows it accepts.

A ``Schema`` records, at training or import time, each feature's name, kind, observed range or
categories and whether gaps were seen; it is saved in the artifact's metadata. Serving decodes
any accepted payload (app/model/decoding.py, by the rules in app/model/rules.py) into a
``Decoded`` matrix in the schema's column order, never the client's key order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd

NUMBER = "number"
CATEGORY = "category"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # NUMBER or CATEGORY
    allow_missing: bool
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    example: Any = None
    label: str | None = None  # for people: forms and documentation
    unit: str | None = None
    description: str | None = None

    @cached_property
    def codes(self) -> dict[str, float]:
        """A category's position in ``categories``: how the decoded matrix carries it."""
        return {c: float(i) for i, c in enumerate(self.categories)}

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "type": self.kind, "allow_missing": self.allow_missing}
        if self.kind == NUMBER:
            record.update(integer=self.integer, min=self.minimum, max=self.maximum)
        else:
            record["categories"] = list(self.categories)
        record["example"] = self.example
        for key in ("label", "unit", "description"):
            if getattr(self, key):
                record[key] = getattr(self, key)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Feature":
        return cls(
            name=record["name"],
            kind=record["type"],
            allow_missing=bool(record.get("allow_missing", False)),
            integer=bool(record.get("integer", False)),
            minimum=record.get("min"),
            maximum=record.get("max"),
            categories=tuple(record.get("categories", ())),
            example=record.get("example"),
            label=record.get("label"),
            unit=record.get("unit"),
            description=record.get("description"),
        )


@dataclass(frozen=True)
class Schema:
    features: tuple[Feature, ...]
    ignored: tuple[str, ...] = ()  # columns the client may send that the model does not use
    target: str | None = None  # accepted and ignored too, so labelled CSV files can be scored as they are
    index: dict[str, int] = field(init=False, repr=False, compare=False)  # name -> column

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {f.name: i for i, f in enumerate(self.features)})

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def as_dict(self) -> dict[str, Any]:
        return {"features": [f.as_dict() for f in self.features], "ignored": list(self.ignored), "target": self.target}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Schema":
        return cls(
            features=tuple(Feature.from_dict(f) for f in record["features"]),
            ignored=tuple(record.get("ignored", ())),
            target=record.get("target"),
        )

    def example(self) -> dict[str, Any]:
        return {f.name: f.example for f in self.features}


@dataclass(frozen=True)
class Decoded:
    """Valid rows as a float64 matrix in schema order: NaN for a gap, a category as its index."""

    matrix: np.ndarray
    warnings: list[list[str]]
    schema: Schema

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as the DataFrame the Pipeline was fitted on (for the scikit-learn path)."""
        columns = {}
        for i, feature in enumerate(self.schema.features):
            values = self.matrix[:, i]
            if feature.kind == NUMBER:
                columns[feature.name] = values
            else:
                names = np.array(list(feature.categories) + [np.nan], dtype=object)
                codes = np.where(np.isnan(values), len(feature.categories), values).astype(np.intp)
                columns[feature.name] = names[codes]
        return pd.DataFrame(columns)
