"""Preprocessing steps as NumPy transforms: matrix in, matrix out, with what each column holds.

``compile_steps`` takes the transformers of a Pipeline in order and the columns of its input,
and returns one Transform and the columns of its output.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .program import Column, Transform, Unsupported, chain


def compile_steps(steps: Sequence[Any], columns: list[Column]) -> tuple[Transform, list[Column]]:
    transforms = []
    for step in steps:
        transform, columns = compile_step(step, columns)
        transforms.append(transform)
    return chain(transforms), columns


def compile_step(step: Any, columns: list[Column]) -> tuple[Transform, list[Column]]:
    if isinstance(step, Pipeline):
        return compile_steps([s for _, s in step.steps if s not in (None, "passthrough")], columns)
    if isinstance(step, ColumnTransformer):
        return _column_transformer(step, columns)
    if isinstance(step, SimpleImputer):
        return _imputer(step, columns)
    if isinstance(step, StandardScaler):
        return _standard_scaler(step, columns)
    if isinstance(step, OneHotEncoder):
        return _one_hot(step, columns)
    raise Unsupported(f"step {type(step).__name__}")


def _column_transformer(transformer: ColumnTransformer, columns: list[Column]) -> tuple[Transform, list[Column]]:
    if transformer.remainder != "drop":
        raise Unsupported("a ColumnTransformer that keeps the remainder")
    position = {c.name: i for i, c in enumerate(columns)}
    parts: list[Transform] = []
    out: list[Column] = []
    for name, step, selected in transformer.transformers_:
        if name == "remainder" or step == "drop":
            continue
        if not all(c in position for c in selected):
            raise Unsupported(f"transformer {name!r} uses columns outside the schema")
        indices = np.array([position[c] for c in selected])
        transform, produced = compile_step(step, [columns[i] for i in indices])
        parts.append(lambda matrix, transform=transform, indices=indices: transform(matrix[:, indices]))
        out += produced
    if not parts:
        raise Unsupported("no transformers")
    if len(parts) == 1:
        return parts[0], out
    return (lambda matrix: np.hstack([part(matrix) for part in parts])), out


def _imputer(imputer: SimpleImputer, columns: list[Column]) -> tuple[Transform, list[Column]]:
    if imputer.add_indicator or not (isinstance(imputer.missing_values, float) and np.isnan(imputer.missing_values)):
        raise Unsupported("imputer with an indicator or a non-NaN marker")
    if any(c.is_category for c in columns):
        if not all(c.is_category for c in columns):
            raise Unsupported("imputer over numbers and categories")
        fills, produced = [], []
        for column, fill in zip(columns, imputer.statistics_):
            categories = column.categories if fill in column.categories else (*column.categories, fill)
            fills.append(float(categories.index(fill)))
            produced.append(Column(column.name, categories))
        fill_codes = np.array(fills)
        return (lambda matrix: np.where(np.isnan(matrix), fill_codes, matrix)), produced
    fill = np.asarray(imputer.statistics_, dtype="float64")

    def transform(matrix: np.ndarray) -> np.ndarray:
        gaps = np.isnan(matrix)
        return np.where(gaps, fill, matrix) if gaps.any() else matrix
    return transform, list(columns)


def _standard_scaler(scaler: StandardScaler, columns: list[Column]) -> tuple[Transform, list[Column]]:
    _numbers_only(scaler, columns)
    mean = scaler.mean_ if scaler.with_mean else np.zeros(len(columns))
    scale = scaler.scale_ if scaler.with_std else np.ones(len(columns))
    return (lambda matrix: (matrix - mean) / scale), list(columns)


def _one_hot(encoder: OneHotEncoder, columns: list[Column]) -> tuple[Transform, list[Column]]:
    if not all(c.is_category for c in columns):
        raise Unsupported("OneHotEncoder over numbers")
    if encoder.drop is not None or encoder.handle_unknown != "ignore":
        raise Unsupported("expected OneHotEncoder(handle_unknown='ignore') without drop")
    if getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("infrequent categories")
    # For each column: a lookup from the category's index (last slot: a gap) to the one-hot column
    # it lights up, or -1 for none (an unknown category is all zeros, as in scikit-learn).
    lookups, offset = [], 0
    for column, categories in zip(columns, encoder.categories_):
        where = {str(c): i for i, c in enumerate(categories)}
        table = np.array([where.get(str(c), -1) for c in column.categories] + [-1])
        lookups.append(np.where(table >= 0, table + offset, -1))
        offset += len(categories)
    width = offset

    def transform(matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((matrix.shape[0], width))
        rows = np.arange(matrix.shape[0])
        for index, lookup in enumerate(lookups):
            codes = matrix[:, index]
            codes = np.where(np.isnan(codes), len(lookup) - 1, codes).astype(np.intp)
            hot = lookup[codes]
            lit = hot >= 0
            out[rows[lit], hot[lit]] = 1.0
        return out
    return transform, [Column(None) for _ in range(width)]


def _numbers_only(step: Any, columns: list[Column]) -> None:
    if any(c.is_category for c in columns):
        raise Unsupported(f"{type(step).__name__} over category names")
