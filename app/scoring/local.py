"""The local engine: one process streams the file through the model a batch at a time.

Memory holds one batch (a few MB) whatever the file's length. The output and the errors file are
written beside their destinations and renamed into place at the end, so a run that fails or is
interrupted leaves no partial output.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from ..model.errors import InputError, InvalidInput
from ..model.predict import predict
from ..model.registry import LoadedModel
from ..model.tables import TableDecoder
from . import results
from .files import Batch, TableSink, TableSource


@dataclass(frozen=True)
class Summary:
    rows: int  # read from the input
    scored: int
    failed: int  # rows in the errors file
    problems: int
    seconds: float
    output: str
    errors: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        text = (f"scored {self.scored:,} of {self.rows:,} rows in {self.seconds:.1f} s "
                f"({self.rows_per_second:,.0f} rows/s) into {self.output}")
        if self.failed:
            text += (f"; {self.failed:,} row{'s' * (self.failed != 1)} not scored "
                     f"({self.problems:,} problem{'s' * (self.problems != 1)}): see {self.errors}")
        return text


def check_columns(model: LoadedModel, columns: list[str], id_columns: list[str]) -> None:
    """The table must carry every feature and nothing the model does not know, but its id
    columns; raises InvalidInput with the API's words, once for the table."""
    errors = [InputError(None, name, "no such column for --id-column") for name in id_columns if name not in columns]
    taken = set(results.output_schema(model, results.id_schema([], pa.schema([]))).names)
    taken |= set(results.errors_schema(results.id_schema([], pa.schema([]))).names)
    errors += [InputError(None, name, f"--id-column cannot be named as an output column ({', '.join(sorted(taken))})")
               for name in id_columns if name in taken]
    errors += [InputError(None, name, "--id-column given more than once")
               for name in sorted({n for n in id_columns if id_columns.count(n) > 1})]
    ids = set(id_columns) - set(model.schema.names)
    errors += model.decoder.column_errors([c for c in columns if c not in ids])
    if errors:
        raise InvalidInput(errors)


def score(model: LoadedModel, source: TableSource, output: str | Path, errors: str | Path,
          id_columns: list[str], progress: Callable[[int], None] = lambda rows: None) -> Summary:
    """Score every row of ``source`` into ``output``; rows with problems go to ``errors``."""
    started = time.perf_counter()
    check_columns(model, source.columns, id_columns)
    decoder = TableDecoder(model.schema)
    batches = source.batches()
    first = next(batches, None)
    input_schema = first.table.schema if first is not None else pa.schema([(c, pa.string()) for c in source.columns])
    ids = results.id_schema(id_columns, input_schema)
    out_schema, err_schema = results.output_schema(model, ids), results.errors_schema(ids)
    sink, error_sink = TableSink(output, out_schema), None
    try:
        error_sink = TableSink(errors, err_schema)
        rows = scored = failed = problems = 0
        for batch in itertools.chain([first] if first is not None else [], batches):
            table = decoder.decode(batch.table, text=source.text)
            if table.decoded is not None:
                ids = results.ids_at(batch.table, batch.numbers, table.kept, id_columns)
                sink.write(results.prediction_table(model, predict(model, table.decoded), ids, table.warnings,
                                                    out_schema))
            if table.problems or batch.problems:
                error_sink.write(_errors(table.problems, batch, id_columns, err_schema))
            rows += batch.table.num_rows + len(batch.problems)
            scored += len(table.kept)
            failed += table.failed_rows + len({p.row for p in batch.problems})
            problems += len(table.problems) + len(batch.problems)
            progress(batch.table.num_rows + len(batch.problems))
        error_sink.close()
        sink.close()
        error_sink.commit()  # two renames back to back: the files are complete before either moves
        sink.commit()
    except BaseException:
        sink.abort()
        if error_sink is not None:
            error_sink.abort()
        raise
    return Summary(rows, scored, failed, problems, time.perf_counter() - started, str(output), str(errors))


def _errors(problems: list[InputError], batch: Batch, id_columns: list[str], schema: pa.Schema) -> pa.Table:
    """``problems`` (row: a position in the batch) and the rows set aside before they were split
    into cells (row: their number; they have no ids), in row order."""
    lines = sorted([(int(batch.numbers[p.row]), p.row, p) for p in problems]
                   + [(p.row, None, p) for p in batch.problems], key=lambda line: line[0])
    numbers = np.array([number for number, _, _ in lines], dtype=np.int64)
    ids = {}
    if id_columns:
        at = pa.array([position for _, position, _ in lines], pa.int64())
        ids = {name: batch.table.column(name).take(at) if batch.table.num_rows
               else pa.nulls(len(lines), schema.field(name).type) for name in id_columns}
    return results.errors_table([p for _, _, p in lines], numbers, ids, schema)
