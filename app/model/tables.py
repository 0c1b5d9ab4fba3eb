"""Tables as a model's input: Arrow columns -> the rows that pass as a matrix, and every problem of
the rows that do not, by the input rules of app/model/rules.py.

Batch scoring (app/scoring/) reads files as Arrow record batches and decodes a column at a time.
A cell the column-wise checks cannot vouch for goes to ``decode_value``, the per-value decoder of
the API, so every row gets the value, the warning or the words it would get from ``POST /predict``:

- a text column (CSV) is read as a CSV body's cells are: an empty or blank cell is a gap, a number
  must look like one (``NUMBER_TEXT``) and is read correctly rounded, a category is taken as written;
- a typed column (Parquet) is read as JSON values are: null is a gap, integers and floats are
  numbers, strings are categories, and a string where a number belongs is refused.

Unlike a request, a table is not refused whole for a bad row: rows with problems are set aside
with their problems (``DecodedTable.problems``) and the others are predicted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .contract import NUMBER, Decoded, Feature, Schema
from .decoding import decode_value
from .errors import InputError
from .rules import FINITE_NUMBER, GAP_MESSAGE, bounds, outside_in, range_warning

# The bytes of a text column that Arrow's cast to float64 reads exactly as float() reads them:
# over this alphabet Arrow accepts a subset of NUMBER_TEXT and rounds correctly, as float() does
# (tests/test_tables.py checks both claims). A column with any other byte (spaces, letters as in
# 'nan', non-ASCII digits) is read a cell at a time where Arrow's cast and NUMBER_TEXT disagree.
NUMBER_BYTES = np.zeros(256, dtype=bool)
NUMBER_BYTES[np.frombuffer(b"0123456789.+-eE", dtype=np.uint8)] = True
# NUMBER_TEXT without the words (nan, inf): cells Arrow reads as float() does, whatever the column holds.
PLAIN_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


@dataclass(frozen=True)
class DecodedTable:
    """One batch of a table: the rows that can be predicted and the problems of the others."""

    decoded: Decoded | None  # the rows without problems, in table order (None: there are none)
    kept: np.ndarray  # their positions in the batch
    warnings: dict[int, list[str]]  # by position in ``decoded`` (few rows have any: not a list per row)
    problems: list[InputError]  # row: the position in the batch

    @property
    def failed_rows(self) -> int:
        return len({p.row for p in self.problems})


class TableDecoder:
    """Decodes Arrow record batches against one model's schema."""

    def __init__(self, schema: Schema):
        self.schema = schema

    def decode(self, batch: pa.RecordBatch | pa.Table, *, text: bool) -> DecodedTable:
        """``batch`` must hold every feature's column (check the names first with
        ``Decoder.column_errors``); ``text``: its columns are CSV text rather than typed values."""
        rows = batch.num_rows
        matrix = np.empty((rows, len(self.schema.features)), dtype="float64")
        problems: dict[int, list[InputError]] = {}
        warnings: dict[int, list[str]] = {}
        for index, feature in enumerate(self.schema.features):
            column = batch.column(feature.name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            values, column_problems, column_warnings = decode_column(feature, column, text)
            matrix[:, index] = values
            for row, problem in column_problems.items():
                problems.setdefault(row, []).append(InputError(row, feature.name, problem))
            for row, warning in column_warnings.items():
                warnings.setdefault(row, []).append(warning)
        kept = np.arange(rows)
        if problems:
            keep = np.ones(rows, dtype=bool)
            keep[list(problems)] = False
            kept = np.flatnonzero(keep)
            matrix = matrix[kept]
            position = {row: i for i, row in enumerate(kept.tolist())}
            warnings = {position[row]: found for row, found in warnings.items() if row in position}
        # Decoded.warnings is for the API's documents; a table keeps its few warnings by row instead.
        decoded = Decoded(matrix=matrix, warnings=[], schema=self.schema) if len(kept) else None
        return DecodedTable(decoded=decoded, kept=kept, warnings=warnings,
                            problems=[p for row in sorted(problems) for p in problems[row]])


def decode_column(feature: Feature, column: pa.Array, text: bool) -> tuple[np.ndarray, dict[int, str], dict[int, str]]:
    """(values, problems by row, warnings by row) of one feature's column."""
    gaps = _gaps(column, text)
    if feature.kind == NUMBER:
        if _is_text(column.type):
            values, suspects = _text_numbers(column, gaps) if text else _unreadable(column)
        elif _is_number(column.type):
            # Arrow's decimal -> float cast is off by a bit at times; the decimal's text is exact,
            # and the text -> float cast rounds correctly, as float() does.
            exact = pc.cast(column, pa.string()) if pa.types.is_decimal(column.type) else column
            values = pc.cast(exact, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            suspects = np.isnan(values)  # a gap (null), or a NaN the file holds: decode_value says which
        else:  # booleans, dates, ...: refused the way JSON's would be
            values, suspects = _unreadable(column)
        suspects |= ~(FINITE_NUMBER.accepts_in(values) | np.isnan(values))
    else:
        values, suspects = _categories(feature, column, text)
    problems: dict[int, str] = {}
    warnings: dict[int, str] = {}
    gaps &= suspects
    if gaps.any():  # the commonest suspects, settled in bulk as decode_value would settle them
        suspects &= ~gaps
        if not feature.allow_missing:
            problems.update(dict.fromkeys(np.flatnonzero(gaps).tolist(), GAP_MESSAGE))
    rows = np.flatnonzero(suspects)
    if len(rows):
        for row, cell in zip(rows.tolist(), _cells(column, rows, values, text)):
            value, problem, warning = decode_value(feature, cell, text)
            if problem:
                problems[row] = problem
            else:
                values[row] = value
                if warning:
                    warnings[row] = warning
    if feature.kind == NUMBER:
        low, high = bounds(feature)
        flagged = outside_in(values, low, high)
        flagged[rows] = False  # decode_value said these
        for row in np.flatnonzero(flagged).tolist():
            warnings[row] = range_warning(feature, float(values[row]))
    return values, problems, warnings


def _gaps(column: pa.Array, text: bool) -> np.ndarray:
    """Null cells, and in text empty ones: gaps (a blank cell of spaces is one too; decode_value says so)."""
    if text and _is_text(column.type):
        return pc.fill_null(pc.equal(pc.binary_length(column), 0), True).to_numpy(zero_copy_only=False)
    return column.is_null().to_numpy(zero_copy_only=False)


def _cells(column: pa.Array, rows: np.ndarray, values: np.ndarray, text: bool) -> list:
    """The cells at ``rows`` as the API would have received them."""
    if _is_number(column.type):  # JSON numbers: null, or the value as a float (a decimal too)
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        return [None if nulls[row] else float(values[row]) for row in rows.tolist()]
    cells = column.take(pa.array(rows)).to_pylist()
    return ["" if cell is None else cell for cell in cells] if text else cells  # Spark reads an empty cell as null


def _text_numbers(column: pa.Array, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers written as text (``empty``: the empty or null cells); the cells to read one by one
    are flagged."""
    if _only_number_bytes(column):
        try:
            values = pc.cast(pc.if_else(pa.array(empty), None, column), pa.float64()).to_numpy(zero_copy_only=False)
            return values, empty.copy()
        except pa.ArrowInvalid:
            pass
    plain = pc.fill_null(pc.match_substring_regex(column, PLAIN_NUMBER), False)
    values = pc.cast(pc.if_else(plain, column, None), pa.float64()).to_numpy(zero_copy_only=False)
    return values, ~plain.to_numpy(zero_copy_only=False)


def _only_number_bytes(column: pa.Array) -> bool:
    offsets_type = np.int64 if pa.types.is_large_string(column.type) else np.int32
    _, offsets, data = column.buffers()
    if data is None:
        return True
    ends = np.frombuffer(offsets, dtype=offsets_type)[[column.offset, column.offset + len(column)]]
    return bool(NUMBER_BYTES[np.frombuffer(data, dtype=np.uint8)[ends[0]:ends[1]]].all())


def _categories(feature: Feature, column: pa.Array, text: bool) -> tuple[np.ndarray, np.ndarray]:
    if not _is_text(column.type):
        return _unreadable(column)  # booleans ('True'/'False' categories) and the refusals
    codes = pc.index_in(column, value_set=pa.array(feature.categories, type=column.type))
    values = pc.cast(codes, pa.float64()).to_numpy(zero_copy_only=False)
    return values, np.isnan(values)  # a gap or a category the model does not know


def _unreadable(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Nothing read column-wise: every cell goes to decode_value."""
    return np.full(len(column), np.nan), np.ones(len(column), dtype=bool)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)

