"""Preprocessing steps as NumPy transforms: matrix in, matrix out, with what each column holds.

``compile_steps`` takes the transformers of a Pipeline in order and the columns of its input,
and returns one Transform, the columns of its output, and the names of the steps it left to
scikit-learn. A step this module does not replicate is not a reason to give up the whole
model: it is called as it is ("opaque"), on the rows rebuilt as scikit-learn would hand them
to it, without the Pipeline's validation around it. Only a step that cannot be called on its
own, or whose output is not numbers, makes the model Unsupported.

Transforms never modify their input in place: a step may hand on a view of its input.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import sklearn
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder, OrdinalEncoder,
                                   PolynomialFeatures, RobustScaler, StandardScaler)
from sklearn.utils._encode import _check_unknown
from sklearn.utils._mask import _get_mask
from sklearn.utils._missing import is_pandas_na, is_scalar_nan

from .program import Column, Transform, Unsupported, chain


@dataclass(frozen=True)
class Compiled:
    """One compiled step (or sequence of steps): ``transform`` is None for the identity."""
    transform: Transform | None
    columns: list[Column]
    in_scikit_learn: tuple[str, ...] = ()  # steps called as they are (opaque), by class name


def compile_steps(steps: Sequence[Any], columns: list[Column]) -> tuple[Transform, list[Column], tuple[str, ...]]:
    """The transformers of a Pipeline, in order, as one Transform from ``columns``."""
    compiled = _sequence(steps, columns)
    return compiled.transform or _identity, compiled.columns, compiled.in_scikit_learn


def compile_step(step: Any, columns: list[Column]) -> Compiled:
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return Compiled(None, list(columns))
    compiler = STEP_COMPILERS.get(type(step))  # exact type: a subclass may change the arithmetic
    if compiler is None:
        return _opaque(step, columns)
    try:
        compiled = compiler(step, columns)
    except Unsupported as reason:
        try:  # a setting this module does not replicate: scikit-learn may still run the step alone
            return _opaque(step, columns)
        except Unsupported:
            raise reason from None
    return _with_output_names(step, compiled)


def _identity(matrix: np.ndarray) -> np.ndarray:
    return matrix


def _sequence(steps: Sequence[Any], columns: list[Column]) -> Compiled:
    transforms, in_scikit_learn = [], ()
    for step in steps:
        compiled = compile_step(step, columns)
        if compiled.transform is not None:
            transforms.append(compiled.transform)
        columns = compiled.columns
        in_scikit_learn += compiled.in_scikit_learn
    return Compiled(chain(transforms) if transforms else None, columns, in_scikit_learn)


def _with_output_names(step: Any, compiled: Compiled) -> Compiled:
    """Name the output columns as scikit-learn does, for a later ColumnTransformer that selects
    columns by name (a step set to output DataFrames)."""
    try:
        names = step.get_feature_names_out()
    except Exception:  # noqa: BLE001 - names are optional
        return compiled
    if len(names) != len(compiled.columns):
        return compiled
    return replace(compiled, columns=[Column(str(n), c.categories) for n, c in zip(names, compiled.columns)])


# ---- composition -----------------------------------------------------------------------------
def _pipeline(pipeline: Pipeline, columns: list[Column]) -> Compiled:
    return _sequence([step for _, step in pipeline.steps], columns)


def _column_transformer(transformer: ColumnTransformer, columns: list[Column]) -> Compiled:
    """Each fitted transformer on its columns, outputs side by side in ``transformers_`` order
    (the remainder last), as scikit-learn stacks them."""
    fitted_names = getattr(transformer, "feature_names_in_", None)
    if fitted_names is not None:  # fitted on a DataFrame: it selects by name
        position = {c.name: i for i, c in enumerate(columns)}
        if len(position) != len(columns) or not all(name in position for name in fitted_names):
            raise Unsupported("a ColumnTransformer whose columns are not all found by name")
        to_input = [position[name] for name in fitted_names]
    else:
        if transformer.n_features_in_ != len(columns):
            raise Unsupported("a ColumnTransformer fitted on a different number of columns")
        to_input = list(range(len(columns)))
    weights = transformer.transformer_weights or {}
    parts: list[tuple[Any, Transform | None]] = []
    out: list[Column] = []
    in_scikit_learn: tuple[str, ...] = ()
    for name, step, selection in transformer.transformers_:
        indices = transformer._transformer_to_input_indices.get(name, [])
        if (isinstance(step, str) and step == "drop") or len(indices) == 0:
            continue
        if np.isscalar(selection):
            raise Unsupported(f"transformer {name!r} takes one column as a 1-d selection")
        selected = [to_input[i] for i in indices]
        compiled = compile_step(step, [columns[i] for i in selected])
        transform = compiled.transform
        if weights.get(name) is not None:
            if any(c.is_category for c in compiled.columns):
                raise Unsupported(f"transformer {name!r} weighs category names")
            transform = _weighted(transform, float(weights[name]))
        parts.append((_selector(selected, len(columns)), transform))
        out += compiled.columns
        in_scikit_learn += compiled.in_scikit_learn
    if not parts:
        raise Unsupported("a ColumnTransformer with no output")
    runs = [_part(select, transform) for select, transform in parts]
    if len(runs) == 1:
        return Compiled(runs[0], out, in_scikit_learn)

    def stack(matrix: np.ndarray) -> np.ndarray:
        return np.concatenate([run(matrix) for run in runs], axis=1)
    return Compiled(stack, out, in_scikit_learn)


def _selector(selected: list[int], width: int) -> slice | np.ndarray | None:
    """None for all columns in order, a slice (a view) for a run of columns, else an index."""
    if selected == list(range(width)):
        return None
    if selected == list(range(selected[0], selected[0] + len(selected))):
        return slice(selected[0], selected[0] + len(selected))
    return np.array(selected, dtype=np.intp)


def _part(select: Any, transform: Transform | None) -> Transform:
    if select is None:
        return transform or _identity
    if transform is None:
        return lambda matrix: matrix[:, select]
    return lambda matrix: transform(matrix[:, select])


def _weighted(transform: Transform | None, weight: float) -> Transform:
    if transform is None:
        return lambda matrix: matrix * weight
    return lambda matrix: transform(matrix) * weight


def _function_transformer(transformer: FunctionTransformer, columns: list[Column]) -> Compiled:
    func = transformer.func
    if func is None:
        return Compiled(None, list(columns))
    if not (isinstance(func, np.ufunc) and func.nin == 1 and func.nout == 1) or transformer.kw_args:
        raise Unsupported("a FunctionTransformer whose function is not a one-argument NumPy ufunc")
    _numbers_only(transformer, columns)
    return Compiled(lambda matrix: func(matrix), [Column(c.name) for c in columns])


# ---- missing values ---------------------------------------------------------------------------
def _imputer(imputer: SimpleImputer, columns: list[Column]) -> Compiled:
    """Gaps replaced by each column's statistic; columns without one dropped (unless
    keep_empty_features); the missing-value indicator appended."""
    if imputer.n_features_in_ != len(columns):
        raise Unsupported("a SimpleImputer fitted on a different number of columns")
    marker = imputer.missing_values
    nan_marker = is_scalar_nan(marker) or is_pandas_na(marker)
    statistics = np.asarray(imputer.statistics_)
    if imputer.keep_empty_features:
        kept = np.arange(len(columns))
    else:
        kept = np.flatnonzero(~_get_mask(statistics, np.nan))
    fills = statistics.copy()
    fills[kept] = statistics[kept].astype(imputer._fill_dtype, copy=False)  # as scikit-learn casts them

    fill_values, marker_values, produced = [], [], []
    for index, column in enumerate(columns):
        fill = fills[index]
        if column.is_category:
            categories = column.categories
            if not any(_same(fill, c) for c in categories):
                categories = (*categories, fill)
            fill_values.append(float(next(i for i, c in enumerate(categories) if _same(fill, c))))
            matching = [i for i, c in enumerate(column.categories) if not nan_marker and _same(marker, c)]
            marker_values.append(float(matching[0]) if matching else np.nan)  # NaN never matches
            produced.append(Column(column.name, categories))
        else:
            number_marker = not nan_marker and _is_number(marker)
            marker_values.append(float(marker) if number_marker else np.nan)
            if nan_marker or number_marker:  # the fill is used: it must keep the column numbers
                if not _is_number(fill):
                    raise Unsupported("a SimpleImputer filling a number column with something else than a number")
                fill_values.append(float(fill))
            else:  # a name as the marker never matches a number: nothing is filled
                fill_values.append(np.nan)
            produced.append(Column(column.name))
    fill_row = np.array(fill_values)
    marker_row = np.array(marker_values)
    keep_all = len(kept) == len(columns)
    indicated = None
    if imputer.add_indicator:
        indicated = np.asarray(imputer.indicator_.features_, dtype=np.intp)
    out = [produced[i] for i in kept] + ([Column(None) for _ in indicated] if indicated is not None else [])

    def gaps_of(matrix: np.ndarray) -> np.ndarray:
        return np.isnan(matrix) if nan_marker else matrix == marker_row

    if indicated is None and keep_all:
        def impute(matrix: np.ndarray) -> np.ndarray:
            gaps = gaps_of(matrix)
            return np.where(gaps, fill_row, matrix) if gaps.any() else matrix
        return Compiled(impute, out)

    def impute_and_indicate(matrix: np.ndarray) -> np.ndarray:
        gaps = gaps_of(matrix)
        filled = np.where(gaps, fill_row, matrix)
        if not keep_all:
            filled = filled[:, kept]
        if indicated is None:
            return filled
        return np.concatenate([filled, gaps[:, indicated].astype("float64")], axis=1)
    return Compiled(impute_and_indicate, out)


def _same(value: Any, category: Any) -> bool:
    """Equality as a missing-value mask or an object column compares (NaN equals NaN here)."""
    if is_scalar_nan(value) or is_scalar_nan(category):
        return bool(is_scalar_nan(value) and is_scalar_nan(category))
    try:
        return bool(value == category)
    except (TypeError, ValueError):
        return False


# ---- scaling ----------------------------------------------------------------------------------
def _standard_scaler(scaler: StandardScaler, columns: list[Column]) -> Compiled:
    _numbers_only(scaler, columns)
    mean = np.asarray(scaler.mean_, dtype="float64") if scaler.with_mean else None
    scale = np.asarray(scaler.scale_, dtype="float64") if scaler.with_std and scaler.scale_ is not None else None
    return Compiled(_center_and_scale(mean, scale), _numbers(columns))


def _robust_scaler(scaler: RobustScaler, columns: list[Column]) -> Compiled:
    _numbers_only(scaler, columns)
    center = np.asarray(scaler.center_, dtype="float64") if scaler.with_centering else None
    scale = np.asarray(scaler.scale_, dtype="float64") if scaler.with_scaling else None
    return Compiled(_center_and_scale(center, scale), _numbers(columns))


def _center_and_scale(center: np.ndarray | None, scale: np.ndarray | None) -> Transform | None:
    """(x - center) / scale, as scikit-learn does it (subtract, then divide; never a reciprocal)."""
    if center is not None and scale is not None:
        return lambda matrix: (matrix - center) / scale
    if center is not None:
        return lambda matrix: matrix - center
    if scale is not None:
        return lambda matrix: matrix / scale
    return None


def _min_max_scaler(scaler: MinMaxScaler, columns: list[Column]) -> Compiled:
    _numbers_only(scaler, columns)
    scale, shift = np.asarray(scaler.scale_, dtype="float64"), np.asarray(scaler.min_, dtype="float64")
    if not scaler.clip:
        return Compiled(lambda matrix: matrix * scale + shift, _numbers(columns))
    low, high = (float(v) for v in scaler.feature_range)
    return Compiled(lambda matrix: np.clip(matrix * scale + shift, low, high), _numbers(columns))


def _max_abs_scaler(scaler: MaxAbsScaler, columns: list[Column]) -> Compiled:
    _numbers_only(scaler, columns)
    scale = np.asarray(scaler.scale_, dtype="float64")
    if getattr(scaler, "clip", False):
        return Compiled(lambda matrix: np.clip(matrix / scale, -1.0, 1.0), _numbers(columns))
    return Compiled(lambda matrix: matrix / scale, _numbers(columns))


def _polynomial(features: PolynomialFeatures, columns: list[Column]) -> Compiled:
    """scikit-learn's own loop, replayed: each degree's columns are the previous degree's
    columns times one feature, in the same order, so every product rounds the same way."""
    _numbers_only(features, columns)
    n_features = features.n_features_in_
    if n_features != len(columns):
        raise Unsupported("PolynomialFeatures fitted on a different number of columns")
    max_degree, min_degree = features._max_degree, features._min_degree
    full_width, width = features._n_out_full, features.n_output_features_
    bias = features.include_bias
    products: list[tuple[int, int, int, int, int]] = []  # (start, end, feature, first, last) columns
    first = 1 if bias else 0
    if max_degree > 0:
        index = list(range(first, first + n_features))
        current = first + n_features
        index.append(current)
        for _ in range(2, max_degree + 1):
            new_index = []
            end = index[-1]
            for feature in range(n_features):
                start = index[feature]
                new_index.append(current)
                if features.interaction_only:
                    start += index[feature + 1] - index[feature]
                following = current + end - start
                if following <= current:
                    break
                products.append((start, end, feature, current, following))
                current = following
            new_index.append(current)
            index = new_index

    def expand(matrix: np.ndarray) -> np.ndarray:
        out = np.empty((matrix.shape[0], full_width))
        if bias:
            out[:, 0] = 1.0
        if max_degree == 0:
            return out
        out[:, first:first + n_features] = matrix
        for start, end, feature, low, high in products:
            np.multiply(out[:, start:end], matrix[:, feature:feature + 1], out=out[:, low:high])
        if min_degree > 1:
            if bias:
                return np.concatenate([out[:, :1], out[:, full_width - width + 1:]], axis=1)
            return out[:, full_width - width:]
        return out

    return Compiled(expand, [Column(None) for _ in range(width)])


# ---- encoders ---------------------------------------------------------------------------------
def _one_hot(encoder: OneHotEncoder, columns: list[Column]) -> Compiled:
    table = _EncoderTable(encoder, columns)
    widths = getattr(encoder, "_n_features_outs", None)
    if widths is None:
        raise Unsupported("a OneHotEncoder without its output widths")
    starts = np.cumsum([0, *widths])
    width = int(starts[-1])
    # Every slot lights at most one column of its feature's block (its position), or none (width,
    # a scratch column cut off at the end): drop, infrequent groups and unknowns included.
    positions = np.full(len(table.outputs), width, dtype=np.intp)
    for slot, (feature, output) in enumerate(zip(table.feature_of_slot, table.outputs)):
        block = output[starts[feature]:starts[feature + 1]]
        lit = np.flatnonzero(block != 0)
        if len(lit) > 1 or (len(lit) == 1 and block[lit[0]] != 1.0):
            raise Unsupported("a OneHotEncoder output that is not one-hot")
        if len(lit) == 1:
            positions[slot] = starts[feature] + lit[0]
    if table.errors is not None:
        positions[table.errors] = width

    def encode(matrix: np.ndarray) -> np.ndarray:
        lit = positions[table.slots(matrix)]
        if len(matrix) == 1:
            row = np.zeros(width + 1)
            row[lit[0]] = 1.0
            return row[None, :width]
        out = np.zeros((len(matrix), width + 1))
        out[np.arange(len(matrix))[:, None], lit] = 1.0
        return out[:, :width]
    return Compiled(encode, [Column(None) for _ in range(width)])


def _ordinal(encoder: OrdinalEncoder, columns: list[Column]) -> Compiled:
    table = _EncoderTable(encoder, columns)
    values = np.array([output[feature] for feature, output in zip(table.feature_of_slot, table.outputs)],
                      dtype="float64")
    return Compiled(lambda matrix: values[table.slots(matrix)], [Column(c.name) for c in columns])


class _EncoderTable:
    """What a fitted encoder outputs for every value an input column can hold, found by asking
    the encoder itself once per value at compile time ("slots"), so its matching rules (names
    compared as Python objects, numbers exactly, NaN as a category or not, infrequent groups,
    drop, unknowns) are scikit-learn's by construction.

    A category column's slots are its codes, then the gap. A number column's slots are the
    encoder's known numbers (found at run time by binary search), then NaN, then any other
    number. With handle_unknown="error", a slot scikit-learn would refuse raises ValueError.
    """

    def __init__(self, encoder: Any, columns: list[Column]):
        known_categories = encoder.categories_
        if len(known_categories) != len(columns):
            raise Unsupported(f"{type(encoder).__name__} fitted on a different number of columns")
        refuses_unknown = encoder.handle_unknown == "error"
        probes, valid, self.numbers = [], [], []
        for column, known in zip(columns, known_categories):
            if column.is_category:
                probe = np.append(np.arange(len(column.categories), dtype="float64"), np.nan)
                as_seen = np.array([*column.categories, np.nan], dtype=object)
                self.numbers.append(None)
            else:
                if known.dtype.kind not in "fiub" and not all(_is_number(v) for v in known):
                    raise Unsupported(f"{type(encoder).__name__} fitted on names, given a number column")
                numbers = known.astype("float64")
                numbers = np.sort(numbers[~np.isnan(numbers)])
                unseen = (np.max(np.abs(numbers)) if len(numbers) else 0.0) * 2.0 + 1.0
                probe = np.concatenate([numbers, [np.nan, unseen]])
                as_seen = probe if known.dtype.kind in "fiub" else probe.astype(object)
                self.numbers.append(numbers)
            if known.dtype.kind in "fiub" and as_seen.dtype == object:
                mask = np.zeros(len(probe), dtype=bool)  # names are never among numbers
            else:
                _, mask = _check_unknown(as_seen, known, return_mask=True)
            probes.append(probe)
            valid.append(np.asarray(mask, dtype=bool))
        rows = max(len(p) for p in probes)
        matrix = np.empty((rows, len(columns)))
        for index, (probe, ok) in enumerate(zip(probes, valid)):
            if refuses_unknown:
                if not ok.any():
                    raise Unsupported(f"{type(encoder).__name__} knows none of column {index}'s values")
                safe = probe[np.flatnonzero(ok)[0]]
                probe = np.where(ok, probe, safe)
            else:
                safe = probe[0]
            matrix[:, index] = safe
            matrix[:len(probe), index] = probe
        try:
            outputs = _call_scikit_learn(encoder, columns, matrix)
        except Exception as exc:  # noqa: BLE001 - e.g. names given to an encoder fitted on numbers
            raise Unsupported(f"{type(encoder).__name__} refused its inputs ({type(exc).__name__}: {exc})") from None

        self.outputs = [outputs[row] for index, probe in enumerate(probes) for row in range(len(probe))]
        self.feature_of_slot = [index for index, probe in enumerate(probes) for _ in probe]
        sizes = np.array([len(p) for p in probes])
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        errors = np.concatenate([~ok for ok in valid]) if refuses_unknown else None
        self.errors = errors if errors is not None and errors.any() else None
        self.categories_only = all(n is None for n in self.numbers)
        self.gap_slot = np.array([len(c.categories) if c.is_category else 0 for c in columns], dtype="float64")

    def slots(self, matrix: np.ndarray) -> np.ndarray:
        """Each cell's slot in the flat table, (rows, columns)."""
        if self.categories_only:
            slots = np.where(np.isnan(matrix), self.gap_slot, matrix).astype(np.intp) + self.offsets
        else:
            slots = np.empty(matrix.shape, dtype=np.intp)
            for index, numbers in enumerate(self.numbers):
                values = matrix[:, index]
                if numbers is None:
                    slot = np.where(np.isnan(values), self.gap_slot[index], values).astype(np.intp)
                else:
                    slot = _number_slot(numbers, values)
                slots[:, index] = slot + self.offsets[index]
        if self.errors is not None and self.errors[slots].any():
            raise ValueError("found an unknown category, which the encoder was fitted to refuse")
        return slots


def _number_slot(numbers: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A known number's position, len(numbers) for NaN, len(numbers) + 1 for any other."""
    if len(numbers) == 0:
        return np.where(np.isnan(values), 0, 1).astype(np.intp)
    at = np.minimum(np.searchsorted(numbers, values), len(numbers) - 1)
    slot = np.where(numbers[at] == values, at, len(numbers) + 1)
    return np.where(np.isnan(values), len(numbers), slot).astype(np.intp)


# ---- steps left to scikit-learn ---------------------------------------------------------------
class _ScikitLearnRows:
    """The matrix rebuilt as scikit-learn would hand it to a step: numbers as floats, categories
    as their names with NaN for a gap, in a DataFrame with the fitted names if the step was
    fitted on one (the first step of a Pipeline, or the first inside a ColumnTransformer)."""

    def __init__(self, step: Any, columns: list[Column]):
        names = getattr(step, "feature_names_in_", None)
        if names is not None and len(names) != len(columns):
            raise Unsupported(f"{type(step).__name__} fitted on a different number of columns")
        self.names = None if names is None else list(names)
        self.labels = [(index, np.array([*column.categories, np.nan], dtype=object))
                       for index, column in enumerate(columns) if column.is_category]

    def __call__(self, matrix: np.ndarray) -> Any:
        if self.names is None:
            if not self.labels:
                return matrix
            rows = matrix.astype(object)
            for index, labels in self.labels:
                rows[:, index] = labels[_codes(matrix[:, index], len(labels) - 1)]
            return rows
        data = {name: matrix[:, index] for index, name in enumerate(self.names)}
        for index, labels in self.labels:
            data[self.names[index]] = labels[_codes(matrix[:, index], len(labels) - 1)]
        return pd.DataFrame(data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _codes(values: np.ndarray, gap: int) -> np.ndarray:
    return np.where(np.isnan(values), gap, values).astype(np.intp)


def _call_scikit_learn(step: Any, columns: list[Column], matrix: np.ndarray,
                       rows_for: Callable[[np.ndarray], Any] | None = None) -> np.ndarray:
    rows = (rows_for or _ScikitLearnRows(step, columns))(matrix)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = step.transform(rows)
    if sparse.issparse(out):
        out = out.toarray()
    return np.asarray(out)


def _opaque(step: Any, columns: list[Column]) -> Compiled:
    """A step called as it is, on the rows rebuilt as scikit-learn would hand them to it."""
    name = type(step).__name__
    if not hasattr(step, "transform"):
        raise Unsupported(f"step {name} has no transform")
    rows_for = _ScikitLearnRows(step, columns)
    probe = None
    for number in (1.0, 0.0):  # e.g. a Box-Cox transform refuses 0
        trial = np.array([[0.0 if c.is_category and c.categories else np.nan if c.is_category else number
                           for c in columns]])
        try:
            probe = _call_scikit_learn(step, columns, trial, rows_for)
            break
        except Exception as exc:  # noqa: BLE001 - any failure means it cannot run alone
            failure = exc
    if probe is None:
        raise Unsupported(f"step {name} cannot be run on its own ({type(failure).__name__}: {failure})")
    if probe.ndim != 2 or probe.dtype.kind not in "biuf":
        raise Unsupported(f"step {name} does not output numbers")
    width = probe.shape[1]

    def run(matrix: np.ndarray) -> np.ndarray:
        return _call_scikit_learn(step, columns, matrix, rows_for).astype("float64", copy=False)
    compiled = Compiled(run, [Column(None) for _ in range(width)], (name,))
    return _with_output_names(step, compiled)


# ---- helpers ----------------------------------------------------------------------------------
def _numbers_only(step: Any, columns: list[Column]) -> None:
    if any(c.is_category for c in columns):
        raise Unsupported(f"{type(step).__name__} over category names")


def _numbers(columns: list[Column]) -> list[Column]:
    return [Column(c.name) for c in columns]


STEP_COMPILERS: dict[type, Callable[[Any, list[Column]], Compiled]] = {
    Pipeline: _pipeline,
    ColumnTransformer: _column_transformer,
    FunctionTransformer: _function_transformer,
    SimpleImputer: _imputer,
    StandardScaler: _standard_scaler,
    RobustScaler: _robust_scaler,
    MinMaxScaler: _min_max_scaler,
    MaxAbsScaler: _max_abs_scaler,
    PolynomialFeatures: _polynomial,
    OneHotEncoder: _one_hot,
    OrdinalEncoder: _ordinal,
}
