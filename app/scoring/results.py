"""The columns of a scored file, and of its errors file.

Output: the id columns (or ``row``, the row number), then the prediction as ``POST /predict``
gives it: a classifier's ``label`` and one ``probability_<class>`` column per class (none for a
classifier without probabilities), or a regressor's ``value``; then ``warnings``, the row's
warnings joined by "; " (empty: none). Errors: ``row``, the id columns, then ``field`` and
``problem``, one line per problem, in the API's words.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..model.errors import InputError
from ..model.output import Output
from ..model.registry import LoadedModel

ROW = "row"
WARNING_SEPARATOR = "; "


def id_schema(id_columns: list[str], input_schema: pa.Schema) -> pa.Schema:
    if not id_columns:
        return pa.schema([(ROW, pa.int64())])
    return pa.schema([input_schema.field(name) for name in id_columns])


def output_schema(model: LoadedModel, ids: pa.Schema) -> pa.Schema:
    fields = list(ids)
    if model.is_regressor:
        fields.append(pa.field("value", pa.float64()))
    else:
        fields.append(pa.field("label", pa.array(model.classes).type))
        if has_probabilities(model):
            fields += [pa.field(f"probability_{c}", pa.float64()) for c in model.classes]
    fields.append(pa.field("warnings", pa.string()))
    return pa.schema(fields)


def errors_schema(ids: pa.Schema) -> pa.Schema:
    fields = [pa.field(ROW, pa.int64())] + [f for f in ids if f.name != ROW]
    return pa.schema(fields + [pa.field("field", pa.string()), pa.field("problem", pa.string())])


def has_probabilities(model: LoadedModel) -> bool:
    """Whether the model's answers carry probabilities (not LinearSVC, SVC without them, ...); the
    compiled backend gives them exactly when scikit-learn's model has predict_proba."""
    return hasattr(model.model, "predict_proba")


def prediction_table(model: LoadedModel, output: Output, ids: dict[str, pa.Array], warnings: dict[int, list[str]],
                     schema: pa.Schema) -> pa.Table:
    """``warnings``: by row, only the rows that have any."""
    columns: dict[str, pa.Array] = dict(ids)
    if model.is_regressor:
        columns["value"] = pa.array(output.values, pa.float64())
    else:
        columns["label"] = pa.array(model.classes, schema.field("label").type).take(pa.array(output.winners))
        if output.probabilities is not None and f"probability_{model.classes[0]}" in schema.names:
            for index, name in enumerate(model.classes):
                columns[f"probability_{name}"] = pa.array(output.probabilities[:, index])
    rows = len(output.values if model.is_regressor else output.winners)
    columns["warnings"] = warning_column(warnings, rows)
    return pa.Table.from_pydict(columns, schema=schema)


def warning_column(warnings: dict[int, list[str]], rows: int) -> pa.Array:
    """The warnings joined by "; "; null where a row has none."""
    if not warnings:
        return pa.nulls(rows, pa.string())
    texts = np.full(rows, None, dtype=object)
    for row, found in warnings.items():
        texts[row] = WARNING_SEPARATOR.join(found)
    return pa.array(texts, pa.string())


def ids_at(table: pa.Table | pa.RecordBatch, numbers: np.ndarray, at: np.ndarray, id_columns: list[str]
           ) -> dict[str, pa.Array]:
    """The id columns (or the row numbers) of the rows at positions ``at`` of a batch."""
    if not id_columns:
        return {ROW: pa.array(numbers[at], pa.int64())}
    return {name: table.column(name).take(pa.array(at)) for name in id_columns}


def errors_table(problems: list[InputError], numbers: np.ndarray, ids: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """One line per problem: its row number, the row's ids, the field and the problem."""
    columns: dict[str, Any] = {ROW: pa.array(numbers, pa.int64())}
    columns.update((name, values) for name, values in ids.items() if name != ROW)
    columns["field"] = [p.field for p in problems]
    columns["problem"] = [p.message for p in problems]
    return pa.Table.from_pydict(columns, schema=schema)
