"""Rows as a model's input: any accepted shape of values -> a ``Decoded`` matrix, or every error.

``Decoder.records`` takes rows keyed by field name (JSON records, query strings) and
``Decoder.columns`` rows given positionally under column names (dataframe_split, CSV). Both
collect *every* error, per row and field, instead of stopping at the first, and flag values
outside the range the model has seen.

Almost every request is well-formed, so a ``BulkDecoder`` tries first: a few list comprehensions
and checks by the same rules (app/model/rules.py), returning None at the first sign of trouble;
the per-value decoder then decodes the batch again to name every error precisely. For valid
input both give the same result (tests check this property).
"""
from __future__ import annotations

import math
from itertools import chain
from operator import itemgetter
from typing import Any, Mapping, Sequence

import numpy as np

from .contract import NUMBER, Decoded, Feature, Schema
from .errors import InputError, InvalidInput
from .rules import (FINITE_NUMBER, GAP_MESSAGE, JSON_NUMBER_TYPES, NUMBER_TEXT, bounds, category_text,
                    cell_count_message, describe, listing, outside, outside_in, quote, range_warning)

SMALL_BATCH = 16  # rows the bulk decoder checks in plain Python rather than NumPy
NUMBER_OR_GAP = JSON_NUMBER_TYPES | {type(None)}  # what a numeric column of a JSON batch may hold


class Decoder:
    """Decodes rows against one model's schema; built once per loaded model."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.bulk = BulkDecoder(schema)

    def records(self, records: Sequence[Any], *, text: bool = False, bulk: bool = True) -> Decoded:
        """Rows given as objects keyed by field name.

        ``text`` says the values arrive as strings (query strings, CSV cells) and are parsed;
        in JSON a string where a number belongs is an error, since it usually means a bug upstream.
        ``bulk=False`` skips the bulk decoder (tests compare the two).
        """
        if bulk and not text:
            decoded = self.bulk.records(records)
            if decoded is not None:
                return decoded
        errors: list[InputError] = []
        rows: list[list[Any]] = []
        warnings: list[list[str]] = []
        for number, record in enumerate(records):
            if not isinstance(record, Mapping):
                errors.append(InputError(number, None, f"expected an object of field values, got {describe(record)}"))
                continue
            errors += self._presence_errors(number, set(record))
            values = [record.get(f.name) for f in self.schema.features]
            row, row_warnings = self._decode_values(number, values, text, errors, absent=set(self.schema.names) - set(record))
            rows.append(row)
            warnings.append(row_warnings)
        return self._finish(rows, warnings, errors)

    def columns(self, columns: Sequence[Any], data: Sequence[Any], *, text: bool = False) -> Decoded:
        """Rows given positionally under a list of column names.

        Missing and unknown columns are reported once for the table, not once per row.
        """
        columns = list(columns)
        errors = self.column_errors(columns)
        if errors:
            raise InvalidInput(errors)
        position = [columns.index(f.name) for f in self.schema.features]
        if not text:
            decoded = self.bulk.positional(data, position, len(columns))
            if decoded is not None:
                return decoded
        rows: list[list[Any]] = []
        warnings: list[list[str]] = []
        for number, values in enumerate(data):
            if not isinstance(values, (list, tuple)):
                errors.append(InputError(number, None, f"expected an array of {len(columns)} values, got {describe(values)}"))
                continue
            if len(values) != len(columns):
                errors.append(InputError(number, None, cell_count_message(len(columns), len(values))))
                continue
            row, row_warnings = self._decode_values(number, [values[i] for i in position], text, errors)
            rows.append(row)
            warnings.append(row_warnings)
        return self._finish(rows, warnings, errors)

    def column_errors(self, columns: list[Any]) -> list[InputError]:
        """What is wrong with a table's column names, once for the table: not text, given twice,
        missing or unknown."""
        errors: list[InputError] = []
        for name in columns:
            if not isinstance(name, str):
                errors.append(InputError(None, None, f"column names must be strings, got {describe(name)}"))
        duplicates = sorted({c for c in columns if isinstance(c, str) and columns.count(c) > 1})
        errors += [InputError(None, name, "column given more than once") for name in duplicates]
        errors += self._presence_errors(None, {c for c in columns if isinstance(c, str)})
        return self._ordered(errors)

    def _presence_errors(self, number: int | None, present: set) -> list[InputError]:
        schema, found = self.schema, []
        for feature in schema.features:
            if feature.name not in present:
                hint = "; send null if the value is unknown" if feature.allow_missing else ""
                found.append(InputError(number, feature.name, f"missing field{hint}"))
        for name in sorted(present - schema.index.keys() - set(schema.ignored) - {schema.target}, key=str):
            found.append(InputError(number, str(name), f"unknown field; expected one of: {listing(schema.names)}"))
        return found

    def _decode_values(self, number, values, text: bool, errors: list[InputError], absent=frozenset()):
        """Values already in schema order -> (row, warnings); errors are appended."""
        row: list[Any] = []
        row_warnings: list[str] = []
        for feature, sent in zip(self.schema.features, values):
            if feature.name in absent:  # reported once as a missing field
                row.append(None)
                continue
            value, error, warning = decode_value(feature, sent, text)
            if error:
                errors.append(InputError(number, feature.name, error))
            if warning:
                row_warnings.append(warning)
            row.append(value)
        return row, row_warnings

    def _ordered(self, errors: list[InputError]) -> list[InputError]:
        """Errors by row, then in the schema's field order, unknown fields last."""
        last, index = len(self.schema.features), self.schema.index
        return sorted(errors, key=lambda e: (-1 if e.row is None else e.row, index.get(e.field, last)))

    def _finish(self, rows, warnings, errors) -> Decoded:
        if errors:
            raise InvalidInput(self._ordered(errors))
        if not rows:
            raise InvalidInput([InputError(None, None, "no rows to predict")])
        return Decoded(matrix=np.array(rows, dtype="float64"), warnings=warnings, schema=self.schema)


# ---- one value, with its error ----------------------------------------------------------------
def decode_value(feature: Feature, value: Any, text: bool) -> tuple[Any, str | None, str | None]:
    """(value for the model, error or None, warning or None)."""
    if value is None or (text and isinstance(value, str) and value.strip() == ""):
        if feature.allow_missing:
            return math.nan, None, None
        return None, GAP_MESSAGE, None
    if feature.kind == NUMBER:
        return _decode_number(feature, value, text)
    return _decode_category(feature, value)


def _decode_number(feature: Feature, value: Any, text: bool):
    if isinstance(value, str):
        if not text:
            return None, f"expected a number, got the string {quote(value)}", None
        if not NUMBER_TEXT.fullmatch(value.strip()):
            return None, f"expected a number, got {quote(value)}", None
        number = float(value.strip())
    elif type(value) in JSON_NUMBER_TYPES:
        try:
            number = float(value)
        except OverflowError:
            return None, "expected a finite number, got a number too large for a 64-bit float", None
    else:
        return None, f"expected a number, got {describe(value)}", None
    if not FINITE_NUMBER.accepts(number):
        return None, FINITE_NUMBER.message(value, number), None
    return number, None, range_warning(feature, number) if outside(number, *bounds(feature)) else None


def _decode_category(feature: Feature, value: Any):
    value = category_text(value)
    if not isinstance(value, str):
        return None, f"expected a string (one of: {listing(feature.categories)}), got {describe(value)}", None
    code = feature.codes.get(value)
    if code is None:
        return None, f"unknown category {quote(value)}; expected one of: {listing(feature.categories)}", None
    return code, None, None


# ---- many values, no errors -------------------------------------------------------------------
class BulkDecoder:
    """Decodes well-formed batches fast; returns None when any rule is broken (the per-value
    decoder then says which)."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.width = len(schema.features)
        pick = itemgetter(*schema.names)
        self.pick = pick if self.width > 1 else (lambda record: (pick(record),))
        self.all_numeric = all(f.kind == NUMBER for f in schema.features)
        self.allow_missing = [f.allow_missing for f in schema.features]
        self.low, self.high = (list(b) for b in zip(*map(bounds, schema.features)))
        self.low_row, self.high_row = np.array(self.low), np.array(self.high)
        self.codes = [None if f.kind == NUMBER else f.codes for f in schema.features]

    def records(self, records: Sequence[Any]) -> Decoded | None:
        # map/set/itemgetter keep the per-row work in C: a 10,000-row batch decodes in milliseconds.
        if not records or set(map(type, records)) != {dict} or set(map(len, records)) != {self.width}:
            return None
        try:
            values = list(chain.from_iterable(map(self.pick, records)))
        except KeyError:
            return None
        return self._finish(values, len(records))

    def positional(self, data: Sequence[Any], position: list[int], width: int) -> Decoded | None:
        if not data or set(map(type, data)) != {list} or set(map(len, data)) != {width}:
            return None
        pick = itemgetter(*position)
        values = list(chain.from_iterable(map(pick, data))) if len(position) > 1 else [row[position[0]] for row in data]
        return self._finish(values, len(data))

    def _finish(self, values: list, rows: int) -> Decoded | None:
        if not self.all_numeric:
            values = self._encode_categories(values)
            if values is None:
                return None
        elif not set(map(type, values)) <= NUMBER_OR_GAP:
            return None
        if rows <= SMALL_BATCH:
            warnings = self._check_values(values, rows)
            if warnings is None:
                return None
            matrix = np.array(values, dtype="float64").reshape(rows, self.width)  # None becomes NaN
            return Decoded(matrix=matrix, warnings=warnings, schema=self.schema)
        return self._check_matrix(values, rows)

    def _check_values(self, values: list, rows: int) -> list[list[str]] | None:
        """A few rows: plain Python beats a dozen NumPy calls of fixed overhead each."""
        warnings: list[list[str]] = []
        features, allow, low, high = self.schema.features, self.allow_missing, self.low, self.high
        accepts = FINITE_NUMBER.accepts
        for row in range(rows):
            row_warnings = []
            for column in range(self.width):
                value = values[row * self.width + column]
                if value is None:
                    if not allow[column]:
                        return None
                    continue
                if not accepts(value):
                    return None
                if outside(value, low[column], high[column]):
                    row_warnings.append(range_warning(features[column], float(value)))
            warnings.append(row_warnings)
        return warnings

    def _check_matrix(self, values: list, rows: int) -> Decoded | None:
        try:
            matrix = np.array(values, dtype="float64").reshape(rows, self.width)  # None becomes NaN
        except (OverflowError, ValueError, TypeError):
            return None
        gaps = np.isnan(matrix)
        if gaps.any():
            gaps = np.fromiter((v is None for v in values), dtype=bool, count=len(values)).reshape(rows, self.width)
            if (gaps & ~np.array(self.allow_missing)).any():
                return None
        if not (FINITE_NUMBER.accepts_in(matrix) | gaps).all():
            return None
        warnings: list[list[str]] = [[] for _ in range(rows)]
        flagged = outside_in(matrix, self.low_row, self.high_row)
        if flagged.any():
            for row, column in zip(*np.nonzero(flagged)):
                warnings[row].append(range_warning(self.schema.features[column], float(matrix[row, column])))
        return Decoded(matrix=matrix, warnings=warnings, schema=self.schema)

    def _encode_categories(self, values: list) -> list | None:
        encoded = list(values)
        for column, codes in enumerate(self.codes):
            cells = encoded[column::self.width]
            if codes is None:
                if not set(map(type, cells)) <= NUMBER_OR_GAP:
                    return None
                continue
            mapped = [None if v is None else codes.get(category_text(v), False) if type(v) in (str, bool) else False
                      for v in cells]
            if any(m is False for m in mapped):  # identity: 0.0 == False
                return None  # not a string, or an unknown category
            encoded[column::self.width] = mapped
        return encoded
