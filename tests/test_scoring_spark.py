"""Batch scoring on a real PySpark in local mode (`manage.py score --engine spark`): the same
answers and the same problems as the local engine, which tests/test_scoring.py holds to the API's.

Needs Java: the machine's, or Debian's openjdk-17-jre-headless installed here (as the browser
tests install Chromium). Slow (a JVM starts): marked ``spark``.
"""
from __future__ import annotations

import csv
import glob
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import manage
from tests.datasets import titanic_like
from tests.records import CSV_HEADER
from tests.test_scoring import PIMA_LINES
from tests.tools import apt_install

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture(scope="module", autouse=True)
def java(tmp_path_factory):
    pytest.importorskip("pyspark", reason="pyspark is in requirements-dev.txt: make install-dev")
    apt_install("openjdk-17-jre-headless", binary="java")
    # Executors must run this interpreter (its pyarrow, its scikit-learn), and Spark's scratch
    # space belongs in the test's folders.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        patch.setenv("SPARK_LOCAL_DIRS", str(tmp_path_factory.mktemp("spark")))
        yield


def run(models_dir, *arguments) -> int:
    return manage.main(["--models-dir", str(models_dir), "score", "--quiet", *map(str, arguments)])


def lines_of(path) -> list[dict]:
    """A file written by either engine: one file (local) or a directory of part files (Spark)."""
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    files = sorted(glob.glob(os.path.join(path, "part-*.csv"))) if os.path.isdir(path) else [path]
    found = []
    for name in files:
        with open(name, newline="") as handle:
            found += list(csv.DictReader(handle))
    return found


def canonical(lines: list[dict]) -> list[tuple]:
    """Lines as comparable values: numbers as the exact floats they spell (Java writes 1.0E-5
    where pyarrow writes 1e-05), empty text as absent."""
    def value(cell):
        if cell is None or cell == "":
            return ""
        try:
            return float(cell).hex()
        except (TypeError, ValueError):
            return str(cell)
    return sorted(tuple((key, value(cell)) for key, cell in sorted(line.items())) for line in lines)


@pytest.mark.parametrize("separator", [",", "\t"], ids=["csv", "tsv"])
def test_spark_scores_a_csv_exactly_as_the_local_engine_does(models_dir, tmp_path, separator):
    source = tmp_path / ("patients.csv" if separator == "," else "patients.tsv")
    lines = (PIMA_LINES * 40)[:-1] + ["1,2,3"]  # a ragged last row too
    # the target column, which the model ignores: a quoted backslash (Spark's default escape) and a quote
    outcome = ['"C:\\temp\\"', '"say ""yes"""', "1"]
    rows = [line.replace(",", separator) + separator + outcome[i % 3] for i, line in enumerate(lines)]
    source.write_text((CSV_HEADER + ",Outcome").replace(",", separator) + "\n" + "\n".join(rows) + "\n")

    assert run(models_dir, source, tmp_path / "local.csv") == 1
    assert run(models_dir, "--engine", "spark", "--master", "local[2]", source, tmp_path / "spark.csv") == 1

    assert canonical(lines_of(tmp_path / "spark.csv")) == canonical(lines_of(tmp_path / "local.csv"))
    assert canonical(lines_of(tmp_path / "spark.errors.csv")) == canonical(lines_of(tmp_path / "local.errors.csv"))
    numbers = sorted(int(line["row"]) for line in lines_of(tmp_path / "spark.csv") + lines_of(tmp_path / "spark.errors.csv"))
    assert sorted(set(numbers)) == list(range(1, len(lines) + 1)), "every row is in one of the two files"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no partial output left behind"


def test_spark_scores_parquet_with_id_columns_as_the_local_engine_does(models_dir, tmp_path):
    frame = titanic_like(rows=500, seed=9).drop(columns="Survived")
    frame.insert(0, "PassengerId", range(1000, 1500))
    frame.loc[3, "Sex"] = "unknown"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fares = table.column("Fare").to_pylist()
    fares[7] = float("nan")  # a NaN the file holds: refused, not taken for a gap
    table = table.set_column(table.schema.get_field_index("Fare"), "Fare", pa.array(fares, pa.float64()))
    pq.write_table(table, tmp_path / "passengers.parquet")
    common = ["--model", "titanic", "--id-column", "PassengerId", tmp_path / "passengers.parquet"]

    assert run(models_dir, *common, tmp_path / "local.parquet") == 1
    assert run(models_dir, "--engine", "spark", "--master", "local[2]", *common, tmp_path / "spark.parquet") == 1

    assert canonical(lines_of(tmp_path / "spark.parquet")) == canonical(lines_of(tmp_path / "local.parquet"))
    errors = lines_of(tmp_path / "spark.errors.parquet")
    assert canonical(errors) == canonical(lines_of(tmp_path / "local.errors.parquet"))
    assert {(e["PassengerId"], e["field"]) for e in errors} == {(1003, "Sex"), (1007, "Fare")}


def test_spark_refuses_a_table_without_the_model_columns_with_one_error_line(models_dir, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("Pregnancies,Age\n1,2\n")

    assert run(models_dir, "--engine", "spark", "--master", "local[1]", tmp_path / "in.csv", tmp_path / "out.csv") == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "Glucose: missing field" in err[-1]
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]

