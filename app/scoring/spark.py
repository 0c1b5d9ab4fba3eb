"""The spark engine: the same scoring spread over a Spark cluster (``local[*]`` by default).

The driver loads and verifies the model version as the server does, then ships the version's
files to the executors (``SparkContext.addFile``); each Python worker loads them once, checks
they are the files the driver verified, and scores its partitions with ``mapInArrow``: Arrow
record batches in and out, so values keep their types (a NaN stays a NaN, an integer an integer)
and each batch goes through app/model/tables.py and the compiled model exactly as in the local
engine. ``mapInArrow`` is ``mapInPandas`` without the trip through pandas, which would turn a
Parquet NaN into a gap and integers with gaps into floats.

CSV is read by Spark's reader, every column as text; a row with the wrong number of cells is
Spark's corrupt record, reported with its row number. Spark reads a record per line: a quoted
value with a line break inside needs the local engine. Row numbers count rows in the order
Spark reads them (a file's order for a single file); with several input files, name the rows
with --id-column.

The output and the errors file are Spark directories of part files, written beside their
destinations and renamed into place at the end through Hadoop's FileSystem (any path Spark
writes: local, HDFS, object stores).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from ..model import artifacts
from ..model.errors import InputError
from ..model.registry import LoadedModel, load_version
from ..model.rules import cell_count_message
from ..model.tables import TableDecoder
from . import results
from .files import FileError, file_format, output_format
from .local import Summary, check_columns

CORRUPT = "_corrupt_record"  # Spark's column for a CSV row it could not split into the header's cells
KIND = "kind"  # "scored" or "failed": one pass over the data, then split into the two files (no "_": Spark hides such folders)
SCORED, FAILED = "scored", "failed"


def score(model: LoadedModel, models_dir: str | Path, source: str, output: str, errors: str, id_columns: list[str],
          *, master: str = "local[*]", policy: artifacts.LoadPolicy = artifacts.DEFAULT_POLICY) -> Summary:
    """Score ``source`` with ``model`` (loaded from ``models_dir``) on Spark."""
    started = time.perf_counter()
    spark = session(master)
    try:
        return _score(spark, model, models_dir, source, output, errors, id_columns, policy, started)
    finally:
        spark.stop()


def session(master: str) -> Any:
    try:
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")  # no pandas here
        from pyspark.sql import SparkSession
    except ImportError:
        raise FileError("the spark engine needs PySpark: pip install pyspark==4.3.0 (and a Java 17 runtime)") from None
    # Executors run the Python that runs this command unless told otherwise, so they find the
    # same packages (pyarrow, scikit-learn) at the same versions.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if master.startswith("local"):  # one machine: keep the driver on loopback, off the network
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    try:
        spark = (builder.master(master).appName("sklearn-serve score")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.execution.arrow.maxRecordsPerBatch", "65536")
                 .getOrCreate())
    except Exception as exc:  # noqa: BLE001 - no Java, a bad master URL: one line for the terminal
        raise FileError(f"Spark did not start with --master {master}: {_first_line(exc)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _score(spark, model: LoadedModel, models_dir: str | Path, source: str, output: str, errors: str, id_columns: list[str],
           policy: artifacts.LoadPolicy, started: float) -> Summary:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    kind = file_format(source)
    for path in (output, errors):
        output_format(path)
    text = kind == "csv"
    # Quotes are doubled inside a quoted value, as in Python's csv; Spark's default escape is "\".
    dialect = {"sep": "\t" if source.lower().endswith(".tsv") else ",", "escape": '"'}
    try:
        if text:
            header = spark.read.options(header=True, **dialect).csv(source).columns
            schema = StructType([StructField(c, StringType()) for c in header] + [StructField(CORRUPT, StringType())])
            frame = (spark.read.options(header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, **dialect)
                     .schema(schema).csv(source))
            # A CSV body's header names are stripped (app/http/payloads.py); so are a file's.
            frame = frame.toDF(*[c.strip() for c in header], CORRUPT)
        else:
            frame = spark.read.parquet(source)
    except Exception as exc:  # noqa: BLE001 - AnalysisException: no such path, not Parquet, ...
        raise FileError(f"{source}: Spark cannot read it ({_first_line(exc)})") from None
    columns = [c for c in frame.columns if c != CORRUPT]
    check_columns(model, columns, id_columns)

    # Row numbers: each partition's rows follow the rows of the partitions before it.
    counts = dict(frame.groupBy(F.spark_partition_id()).count().collect())
    offsets, total = {}, 0
    for partition in sorted(counts):
        offsets[partition], total = total, total + counts[partition]

    shipped, local_staging = _ship(spark, model, models_dir)
    try:
        return _score_frame(spark, frame, model, shipped, text, columns, offsets, output, errors, id_columns, policy,
                            started, dialect["sep"])
    finally:
        shutil.rmtree(local_staging, ignore_errors=True)


def _score_frame(spark, frame, model: LoadedModel, shipped: str, text: bool, columns: list[str],
                 offsets: dict[int, int], output: str, errors: str, id_columns: list[str],
                 policy: artifacts.LoadPolicy, started: float, delimiter: str) -> Summary:
    input_schema = pa.schema([(c, pa.string()) for c in columns]) if text else _arrow_schema(frame, columns)
    ids = results.id_schema(id_columns, input_schema)
    out_schema, err_schema = results.output_schema(model, ids), results.errors_schema(ids)
    combined = _combined_schema(out_schema, err_schema)
    scorer = _Scorer(shipped, model.name, model.version, model.metadata["model_sha256"], policy.trusted_types,
                     policy.allow_pickle, text, id_columns, columns, offsets, out_schema, err_schema, combined,
                     delimiter)
    scored = frame.mapInArrow(scorer, _spark_schema(combined))
    try:
        tally = _run(spark, scored, combined, out_schema, err_schema, output, errors)
    except Exception as exc:  # noqa: BLE001 - Py4JJavaError and its kin: the job failed, nothing was kept
        raise FileError(f"the Spark job failed: {_first_line(exc)}") from None
    return Summary(rows=tally[SCORED] + tally["failed rows"], scored=tally[SCORED], failed=tally["failed rows"],
                   problems=tally[FAILED], seconds=time.perf_counter() - started, output=output, errors=errors)


def _run(spark, scored, combined: pa.Schema, out_schema: pa.Schema, err_schema: pa.Schema, output: str,
         errors: str) -> dict[str, int]:
    """One pass over the data into a hidden Parquet dataset, split by kind (scored or failed);
    then each file written beside its destination from its half, and moved into place.

    A second pass or Spark's cache would cost more than the few seconds of this staging copy."""
    from pyspark.sql import functions as F

    staging, partial = _partial(output), [_partial(output), _partial(errors)]
    try:
        scored.write.partitionBy(KIND).parquet(staging)
        both = spark.read.schema(_spark_schema(combined)).parquet(staging)
        _write(both.filter(F.col(KIND) == SCORED).select(*out_schema.names), partial[0], output)
        failed = both.filter(F.col(KIND) == FAILED)
        _write(failed.select(*err_schema.names), partial[1], errors)
        problems = failed.count()
        tally = {SCORED: both.filter(F.col(KIND) == SCORED).count(), FAILED: problems,
                 "failed rows": failed.select(results.ROW).distinct().count() if problems else 0}
        _rename(spark, partial[1], errors)
        _rename(spark, partial[0], output)
        return tally
    finally:
        for path in (staging, *partial):
            _delete(spark, path)


@dataclass(frozen=True)
class _Scorer:
    """The function each Python worker runs over its partitions' record batches (picklable)."""

    shipped: str  # the version's files, for SparkFiles.get
    name: str
    version: int
    sha256: str  # of the model file the driver verified
    trusted: frozenset[str]
    allow_pickle: bool
    text: bool  # CSV cells, rather than typed Parquet values
    id_columns: list[str]
    columns: list[str]
    offsets: dict[int, int]  # partition -> rows before it
    out_schema: pa.Schema
    err_schema: pa.Schema
    combined: pa.Schema
    delimiter: str

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        from ..model.predict import predict

        model = _executor_model(self)
        decoder = TableDecoder(model.schema)
        first = self.offsets.get(TaskContext.get().partitionId(), 0) + 1
        for batch in batches:
            numbers = np.arange(first, first + batch.num_rows, dtype=np.int64)
            first += batch.num_rows
            found: list[tuple[int, InputError]] = []  # (position in the batch, problem)
            rows = batch
            positions = np.arange(batch.num_rows)
            if self.text and batch.column(CORRUPT).null_count < batch.num_rows:
                corrupt = batch.column(CORRUPT).to_pylist()
                found += [(i, InputError(None, None, cell_count_message(len(self.columns), _cells(raw, self.delimiter))))
                          for i, raw in enumerate(corrupt) if raw is not None]
                positions = np.array([i for i, raw in enumerate(corrupt) if raw is None], dtype=np.int64)
                rows = batch.take(pa.array(positions))
            table = decoder.decode(rows, text=self.text)
            if table.decoded is not None:
                kept = positions[table.kept]
                scored = results.prediction_table(model, predict(model, table.decoded),
                                                  results.ids_at(batch, numbers, kept, self.id_columns),
                                                  table.warnings, self.out_schema)
                yield from _with_kind(scored, SCORED, self.combined).to_batches()
            found += [(int(positions[p.row]), p) for p in table.problems]
            if found:
                found.sort(key=lambda item: item[0])
                at = np.array([position for position, _ in found], dtype=np.int64)
                failed = results.errors_table([p for _, p in found], numbers[at],
                                              results.ids_at(batch, numbers, at, self.id_columns), self.err_schema)
                yield from _with_kind(failed, FAILED, self.combined).to_batches()


_LOADED: dict[tuple[str, int, str], LoadedModel] = {}  # one load per Python worker, which Spark reuses


def _executor_model(scorer: _Scorer) -> LoadedModel:
    key = (scorer.name, scorer.version, scorer.sha256)
    if key not in _LOADED:
        from pyspark import SparkFiles

        folder = SparkFiles.get(scorer.shipped)
        model = load_version(folder, scorer.name, scorer.version,
                             artifacts.LoadPolicy(trusted_types=scorer.trusted, allow_pickle=scorer.allow_pickle))
        if model.metadata.get("model_sha256") != scorer.sha256:
            raise RuntimeError(f"the model files shipped to this executor are not {scorer.name}/{scorer.version} "
                               "as the driver verified it")
        _LOADED[key] = model
    return _LOADED[key]


def _ship(spark, model: LoadedModel, models_dir: str | Path) -> tuple[str, Path]:
    """Copy the version's folder under a unique name and add it to the job's files:
    (its name for SparkFiles.get, the local folder to remove when the job is over)."""
    name = f"sklearn-serve-{model.name}-{model.version}-{uuid.uuid4().hex[:8]}"
    staging = Path(tempfile.mkdtemp(prefix="sklearn-serve-score-"))
    shutil.copytree(Path(models_dir) / model.name / str(model.version), staging / name / model.name / str(model.version))
    spark.sparkContext.addFile(str(staging / name), recursive=True)
    # The executors import this project's code (app/) from a zip the job carries, as from a wheel.
    package = Path(__file__).resolve().parent.parent
    archive = shutil.make_archive(str(staging / "sklearn_serve_app"), "zip", package.parent, package.name)
    spark.sparkContext.addPyFile(archive)
    return name, staging


def _cells(raw: str, delimiter: str) -> int:
    import csv

    return len(next(csv.reader([raw], delimiter=delimiter), []))


def _combined_schema(out_schema: pa.Schema, err_schema: pa.Schema) -> pa.Schema:
    fields = {f.name: f for f in out_schema}
    for field in err_schema:
        fields.setdefault(field.name, field)
    return pa.schema([pa.field(KIND, pa.string()), *fields.values()])


def _with_kind(table: pa.Table, kind: str, schema: pa.Schema) -> pa.Table:
    columns = [pa.array([kind] * table.num_rows, pa.string())]
    columns += [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
                for f in schema if f.name != KIND]
    return pa.Table.from_arrays(columns, schema=schema)


def _arrow_schema(frame, columns: list[str]) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(frame.select(*columns).schema)


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _partial(path: str) -> str:
    head, _, name = path.rstrip("/").rpartition("/")
    return f"{head + '/' if head else ''}.{name}.partial-{uuid.uuid4().hex[:8]}"


def _write(frame, partial: str, final: str) -> None:
    writer = frame.write.mode("error")
    if output_format(final) == "csv":
        writer.options(header=True).csv(partial)
    else:
        writer.parquet(partial)


def _filesystem(spark, path: str):
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def _rename(spark, partial: str, final: str) -> None:
    filesystem, source = _filesystem(spark, partial)
    _, target = _filesystem(spark, final)
    if filesystem.exists(target):
        filesystem.delete(target, True)
    if not filesystem.rename(source, target):
        raise FileError(f"{final}: could not move the finished output into place")


def _delete(spark, path: str) -> None:
    filesystem, target = _filesystem(spark, path)
    if filesystem.exists(target):
        filesystem.delete(target, True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

