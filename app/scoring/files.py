"""Reading tables in batches and writing them whole or not at all.

CSV is read as text (every column a string, as a CSV body's cells are) and Parquet with its types;
either streams in record batches, so memory stays flat however long the file. A CSV row with the
wrong number of cells is set aside with its row number instead of stopping the read. Output goes
to a hidden file beside the destination, renamed over it only when complete: an interrupted run
leaves nothing half-written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..model.errors import InputError
from ..model.rules import cell_count_message

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv")  # pyarrow decompresses by the suffix
PARQUET_SUFFIXES = (".parquet", ".pq")
BLOCK_BYTES = 4 << 20  # CSV read per batch: about 100,000 Pima rows
PARQUET_BATCH_ROWS = 100_000


class FileError(Exception):
    """The file cannot be read or written as asked; one line for the person at the terminal."""


def file_format(path: str | Path) -> str:
    """'csv' or 'parquet', from an input file's name."""
    name = str(path).lower().rstrip("/")
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise FileError(f"{path}: name it .csv or .parquet (also .csv.gz, .tsv, .pq), so its format is known")


def output_format(path: str | Path) -> str:
    """'csv' or 'parquet', from an output file's name: written as the name says, so plain .csv only."""
    name = str(path).lower().rstrip("/")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise FileError(f"{path}: name the output .csv or .parquet, so its format is known")


@dataclass
class Batch:
    """Rows of the input with their row numbers (1: the first row after a CSV's header)."""

    table: pa.RecordBatch
    numbers: np.ndarray
    problems: list[InputError] = field(default_factory=list)  # rows that could not even be split into cells


class TableSource:
    """An input file: its column names, then its rows in batches."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = file_format(path)
        self.text = self.format == "csv"  # cells are text to parse, as in a CSV body
        if not self.path.is_file():
            raise FileError(f"{path}: no such file")
        try:
            self.columns = self._csv_columns() if self.text else list(pq.ParquetFile(self.path).schema_arrow.names)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileError(f"{path}: not a readable {self.format.upper()} file ({_first_line(exc)})") from None

    def batches(self) -> Iterator[Batch]:
        try:
            yield from (self._csv_batches() if self.text else self._parquet_batches())
        except pa.ArrowInvalid as exc:
            raise FileError(f"{self.path}: not a readable {self.format.upper()} file ({_first_line(exc)})") from None

    def _csv_columns(self) -> list[str]:
        with pcsv.open_csv(self.path, read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
                           parse_options=self._csv_parse_options([]),
                           convert_options=pcsv.ConvertOptions(include_columns=[])) as reader:
            names = reader.schema.names
        # A CSV body's header names are stripped (app/http/payloads.py); so are a file's.
        self._raw_columns = names
        return [name.strip() for name in names]

    def _csv_parse_options(self, skipped: list[tuple[int, int]]) -> pcsv.ParseOptions:
        def set_aside(row: pcsv.InvalidRow) -> str:
            skipped.append((row.number - 1, row.actual_columns))  # number counts the header as 1
            return "skip"
        return pcsv.ParseOptions(delimiter="\t" if str(self.path).lower().endswith(".tsv") else ",",
                                 newlines_in_values=True, invalid_row_handler=set_aside)

    def _csv_batches(self) -> Iterator[Batch]:
        skipped: list[tuple[int, int]] = []  # (row number, cells), filled while pyarrow parses
        reader = pcsv.open_csv(
            self.path,
            # One thread: pyarrow then tells the number of a row it sets aside.
            read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
            parse_options=self._csv_parse_options(skipped),
            convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in self._raw_columns},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        last, reported = 0, 0
        width = len(self._raw_columns)
        with reader:
            for table in reader:
                table = table.rename_columns(self.columns)
                pending = sorted(n for n, _ in skipped[reported:])
                numbers = _numbers_after(last, table.num_rows, pending)
                problems = [InputError(number, None, cell_count_message(width, cells))
                            for number, cells in skipped[reported:] if number <= (numbers[-1] if len(numbers) else last)]
                reported += len(problems)
                last = int(numbers[-1]) if len(numbers) else last
                yield Batch(table, numbers, problems)
        tail = [InputError(number, None, cell_count_message(width, cells)) for number, cells in skipped[reported:]]
        if tail:
            yield Batch(pa.RecordBatch.from_pylist([], schema=pa.schema([(c, pa.string()) for c in self.columns])),
                        np.empty(0, dtype=np.int64), tail)

    def _parquet_batches(self) -> Iterator[Batch]:
        last = 0
        for table in pq.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield Batch(table, np.arange(last + 1, last + 1 + table.num_rows), [])
            last += table.num_rows


def _numbers_after(last: int, rows: int, skipped: list[int]) -> np.ndarray:
    """The row numbers of ``rows`` rows read after row ``last``, around the rows set aside."""
    candidates = np.arange(last + 1, last + 1 + rows + len(skipped), dtype=np.int64)
    if skipped:
        candidates = candidates[~np.isin(candidates, skipped)]
    return candidates[:rows]


class TableSink:
    """Writes a table to a hidden file beside ``path``; ``commit`` renames it into place."""

    def __init__(self, path: str | Path, schema: pa.Schema):
        self.path = Path(path)
        self.format = output_format(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        try:
            if self.format == "csv":
                self.writer = pcsv.CSVWriter(str(self.partial), schema,
                                             write_options=pcsv.WriteOptions(quoting_style="needed"))
            else:
                self.writer = pq.ParquetWriter(str(self.partial), schema)
        except OSError as exc:
            self.partial.unlink(missing_ok=True)
            raise FileError(f"{path}: cannot write here ({_first_line(exc)})") from None
        except pa.ArrowException as exc:  # a column CSV cannot hold (a list, a struct)
            self.partial.unlink(missing_ok=True)
            raise FileError(f"{path}: cannot write these columns as {self.format.upper()} ({_first_line(exc)})") from None

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)

    def close(self) -> None:
        """Finish the hidden file; ``commit`` then moves it into place."""
        self.writer.close()

    def commit(self) -> None:
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closed already, or broken: the file goes either way
            pass
        self.partial.unlink(missing_ok=True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
