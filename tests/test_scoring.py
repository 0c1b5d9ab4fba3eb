"""Batch scoring with the local engine (`manage.py score`): every row of a file gets what
`POST /predict` answers for it, to the bit, or its problems in the API's words in the errors file.

The oracle is the API itself: each row of the file is posted alone (CSV rows as a CSV body,
Parquet rows as JSON records) to the app, and its answer is compared with the output line or the
errors-file lines carrying that row's number.
"""
from __future__ import annotations

import csv
import decimal
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import manage
from tests.conftest import PIMA, REGRESSOR, ROOT
from tests.datasets import progression_like, titanic_like
from tests.records import CSV_HEADER

# Pima rows as a user's file might hold them: good rows, gaps, spellings of numbers the API takes,
# and every kind of cell it refuses. One row per line; the header is CSV_HEADER.
PIMA_LINES = [
    "6,148,72,35,33.6,0.627,50",
    "1,85,66,29,26.6,0.351,31",
    "8,183,64,,23.3,0.672,32",  # a gap where the model has seen gaps
    " 2 ,+110,7.2e1,.5,30.,0.2,25",  # spaces, a plus, an exponent, a leading and a trailing point
    "0,137,40,35,43.1,2.288,33",
    "1,abc,66,29,26.6,0.351,31",  # not a number
    "1,85,66,29,26.6,0.351,٣١",  # Arabic-Indic digits: float() reads them, the API does not
    "1,1_000,66,29,26.6,0.351,31",  # underscores: the same
    "1,nan,inf,-Infinity,26.6,0.351,31",  # words float() reads, refused as not finite
    "1,85,66,29,1e400,0.351,31",  # overflows to infinity
    "1,2e15,66,29,26.6,0.351,31",  # finite, beyond the +-1e15 bound
    "1,85,66,29,26.6,0.351,500",  # far outside the training range: a warning, not an error
    "1,85,66,29,26.6,0.351",  # a cell short
    "1,85,66,29,26.6,0.351,31,7",  # a cell too many
    '"3","150","70","30","30.5","0.5","40"',  # quoted numbers
    "1,   ,66,29,26.6,0.351,31",  # a blank cell
    "0.1,1e-5,66.00000000000001,29,26.6,0.30000000000000004,31",
]


# ---- the oracle -------------------------------------------------------------------------------
def records(path: Path) -> tuple[list[str], list[list[str]]]:
    """The file's header and rows as the API's CSV reader (csv, strict) splits them."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle, strict=True) if row]
    return rows[0], rows[1:]


def csv_body(header: list[str], row: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, row])
    return buffer.getvalue().encode()


def read_output(path: Path) -> list[dict]:
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def problems_by_row(path: Path) -> dict[int, list[tuple[str | None, str]]]:
    found: dict[int, list] = {}
    for line in read_output(path):
        found.setdefault(int(line["row"]), []).append((line["field"] or None, line["problem"]))
    return found


def same_float(written, answered: float) -> bool:
    """Bit for bit: the written text (or Parquet double) reads back as exactly the API's float."""
    return float(written).hex() == float(answered).hex()


def assert_line_matches(line: dict, model: str, prediction: dict) -> None:
    warnings = "; ".join(prediction["warnings"])
    assert (line["warnings"] or "") == warnings
    if "value" in prediction:
        assert same_float(line["value"], prediction["value"]), (line, prediction)
        return
    assert str(line["label"]) == str(prediction["label"]), (line, prediction)
    for name, probability in (prediction["probabilities"] or {}).items():
        assert same_float(line[f"probability_{name}"], probability), (line, prediction)


def assert_same_as_api(client, model: str, source: Path, output: Path, errors: Path) -> tuple[int, int]:
    """Each row of the CSV ``source`` posted alone: 200 -> the output line with its row number
    holds the same answer; 422 -> the errors file holds the same problems for that row."""
    header, rows = records(source)
    scored = {int(line["row"]): line for line in read_output(output)}
    problems = problems_by_row(errors)
    assert set(scored).isdisjoint(problems)
    assert set(scored) | set(problems) == set(range(1, len(rows) + 1)), "a row was dropped"
    for number, row in enumerate(rows, start=1):
        answer = client.post(f"/predict?model={model}", data=csv_body(header, row), content_type="text/csv")
        if answer.status_code == 200:
            assert number in scored, f"row {number}: the API scores it, the file run did not: {problems.get(number)}"
            assert_line_matches(scored[number], model, answer.get_json()["predictions"][0])
        else:
            assert answer.status_code == 422, answer.get_json()
            expected = [(e["field"], e["problem"]) for e in answer.get_json()["errors"]]
            assert problems.get(number) == expected, f"row {number}: {row}"
    return len(scored), len(problems)


def score(models_dir: Path, *arguments: str) -> int:
    return manage.main(["--models-dir", str(models_dir), "score", "--quiet", *map(str, arguments)])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- every row as the API answers it ----------------------------------------------------------
def test_score_csv_answers_every_row_as_post_predict_does(models_dir, client, tmp_path, capsys):
    source = tmp_path / "patients.csv"
    source.write_text(CSV_HEADER + "\n" + "\n".join(PIMA_LINES) + "\n")

    code = score(models_dir, source, tmp_path / "scores.csv")

    scored, failed = assert_same_as_api(client, PIMA, source, tmp_path / "scores.csv", tmp_path / "scores.errors.csv")
    assert (scored, failed) == (8, 9)
    assert code == 1, "some rows failed: exit code 1"
    summary = capsys.readouterr().out
    assert "scored 8 of 17 rows" in summary and "9 rows not scored" in summary and "scores.errors.csv" in summary
    assert leftovers(tmp_path) == []


def test_score_reads_categories_gaps_and_quoted_line_breaks_as_the_api_does(models_dir, client, tmp_path):
    frame = titanic_like(rows=150, seed=3).drop(columns="Survived")
    frame = frame.astype({"Pclass": object})
    frame.loc[5, "Sex"] = " female"  # not a category: the API does not trim categories
    frame.loc[6, "Embarked"] = "X"
    frame.loc[7, "Sex"] = ""  # a gap where the model has seen none
    frame.loc[8, "Name"] = "two\nlines, quoted"  # an ignored column with a line break inside quotes
    frame.loc[9, "Pclass"] = "first"
    frame.loc[10, "Embarked"] = "   "  # blank: a gap, and Embarked has gaps
    source = tmp_path / "passengers.csv"
    frame.to_csv(source, index=False)

    assert score(models_dir, "--model", "titanic", source, tmp_path / "out.csv") == 1

    scored, failed = assert_same_as_api(client, "titanic", source, tmp_path / "out.csv", tmp_path / "out.errors.csv")
    assert failed == 4 and scored == 146


def test_score_regressor_writes_the_values_post_predict_gives(models_dir, client, tmp_path):
    source = tmp_path / "patients.csv"
    progression_like(rows=300).drop(columns="progression").to_csv(source, index=False)

    assert score(models_dir, "--model", REGRESSOR, source, tmp_path / "values.csv") == 0

    scored, failed = assert_same_as_api(client, REGRESSOR, source, tmp_path / "values.csv",
                                        tmp_path / "values.errors.csv")
    assert (scored, failed) == (300, 0)
    assert list(read_output(tmp_path / "values.csv")[0]) == ["row", "value", "warnings"]


def test_score_parquet_reads_values_as_json_and_writes_parquet(models_dir, client, tmp_path):
    rows = pd.read_csv(ROOT / "data" / "test.csv").drop(columns="Outcome").head(40)
    table = pa.Table.from_pandas(rows, preserve_index=False)  # integers stay integers, gaps become null
    glucose = table.column("Glucose").to_pylist()
    glucose[3] = float("nan")  # a NaN the file holds (not a gap): refused, as JSON's NaN is
    glucose[4] = 3e15
    table = table.set_column(table.schema.get_field_index("Glucose"), "Glucose", pa.array(glucose, pa.float64()))
    # BMI as decimal(4, 1), as a database export writes it: read as its exact text is, not one bit off
    bmi = pa.array(rows["BMI"].map(lambda v: None if pd.isna(v) else decimal.Decimal(f"{v:.1f}")), pa.decimal128(4, 1))
    table = table.set_column(table.schema.get_field_index("BMI"), "BMI", bmi)
    pq.write_table(table, tmp_path / "rows.parquet")

    assert score(models_dir, tmp_path / "rows.parquet", tmp_path / "out.parquet") == 1

    scored = {line["row"]: line for line in read_output(tmp_path / "out.parquet")}
    problems = problems_by_row(tmp_path / "out.errors.parquet")
    assert problems == {4: [("Glucose", "expected a finite number, got NaN")],
                        5: [("Glucose", "expected a number between -1e15 and 1e15, got 3e+15")]}
    for number, record in enumerate(table.to_pylist(), start=1):
        record = {k: float(v) if isinstance(v, decimal.Decimal) else v for k, v in record.items()}
        if number in problems:
            answer = client.post("/predict", data=json.dumps(record), content_type="application/json")
            assert answer.status_code == 422
            assert [(e["field"], e["problem"]) for e in answer.get_json()["errors"]] == problems[number]
            continue
        answer = client.post("/predict", json=record)
        assert_line_matches(scored[number], PIMA, answer.get_json()["predictions"][0])


def test_score_carries_id_columns_into_the_output_and_the_errors_file(models_dir, tmp_path):
    frame = titanic_like(rows=20).drop(columns="Survived")
    frame.insert(0, "PassengerId", [f"p-{i:03d}" for i in range(20)])
    frame.loc[2, "Sex"] = "unknown"
    frame.to_csv(tmp_path / "in.csv", index=False)

    assert score(models_dir, "--model", "titanic", "--id-column", "PassengerId", "--id-column", "Name",
                 tmp_path / "in.csv", tmp_path / "out.csv") == 1

    lines = read_output(tmp_path / "out.csv")
    assert list(lines[0])[:3] == ["PassengerId", "Name", "label"]
    assert [line["PassengerId"] for line in lines] == [f"p-{i:03d}" for i in range(20) if i != 2]
    (error,) = read_output(tmp_path / "out.errors.csv")
    assert (error["row"], error["PassengerId"], error["Name"], error["field"]) == ("3", "p-002", "Passenger 2", "Sex")


def test_score_numbers_rows_around_ragged_rows_across_batches(models_dir, client, tmp_path, monkeypatch):
    from app.scoring import files

    monkeypatch.setattr(files, "BLOCK_BYTES", 512)  # many batches, ragged rows inside and between them
    lines = [PIMA_LINES[i % 2] if i % 37 else "1,2,3" for i in range(1, 400)]
    source = tmp_path / "ragged.csv"
    source.write_text(CSV_HEADER + "\n" + "\n".join(lines) + "\n")

    assert score(models_dir, source, tmp_path / "out.csv") == 1

    problems = problems_by_row(tmp_path / "out.errors.csv")
    assert sorted(problems) == [i for i in range(1, 400) if i % 37 == 0]
    assert problems[37] == [(None, "expected 7 values (one per column), got 3")]
    assert [int(line["row"]) for line in read_output(tmp_path / "out.csv")] == [i for i in range(1, 400) if i % 37]


# ---- refusals: one error line, exit 2, nothing written -----------------------------------------
FILE_SUFFIXES = (".csv", ".txt", ".json", ".parquet", ".gz")  # arguments that name files in the test's folder


@pytest.mark.parametrize("arguments, message", [
    (["{missing}", "out.csv"], "no such file"),
    (["in.csv", "out.txt"], "name the output .csv or .parquet"),
    (["in.csv", "out.csv.gz"], "name the output .csv or .parquet"),
    (["in.csv", "out.csv", "--errors", "errors.json"], "name the output .csv or .parquet"),
    (["in.csv", "in.csv"], "three different files"),
    (["in.csv", "out.csv", "--errors", "out.csv"], "three different files"),
    (["in.csv", "out.csv", "--id-column", "Age", "--id-column", "Age"], "Age: --id-column given more than once"),
    (["labelled.csv", "out.csv", "--id-column", "label"], "label: --id-column cannot be named as an output column"),
    (["labelled.csv", "out.csv", "--id-column", "warnings"], "warnings: --id-column cannot be named as an output"),
    (["in.csv", "out.csv", "--model", "nope"], "no versions of 'nope'"),
    (["in.csv", "out.csv", "--model", f"{PIMA}:99"], "has no version 99"),
    (["in.csv", "out.csv", "--model", f"{PIMA}:x"], "give the version as a whole number"),
    (["in.csv", "out.csv", "--id-column", "Id"], "Id: no such column for --id-column"),
    (["no-glucose.csv", "out.csv"], "Glucose: missing field"),
    (["extra.csv", "out.csv"], "Insulin: unknown field; expected one of"),
    (["in.csv", "no/such/folder/out.csv"], "cannot write here"),
    (["garbage.parquet", "out.csv"], "not a readable PARQUET file"),
])
def test_score_refuses_bad_files_and_options_with_one_error_line(models_dir, tmp_path, arguments, message):
    (tmp_path / "in.csv").write_text(CSV_HEADER + "\n" + PIMA_LINES[0] + "\n")
    (tmp_path / "no-glucose.csv").write_text(CSV_HEADER.replace("Glucose,", "") + "\n1,2,3,4,5,6\n")
    (tmp_path / "extra.csv").write_text(CSV_HEADER + ",Insulin\n" + PIMA_LINES[0] + ",0\n")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "labelled.csv").write_text(CSV_HEADER + ",label,warnings\n" + PIMA_LINES[0] + ",x,y\n")
    arguments = [a.format(missing=tmp_path / "missing.csv") for a in arguments]
    before = sorted(p.name for p in tmp_path.iterdir())
    files = [a if not a.endswith(FILE_SUFFIXES) or "/" in a else str(tmp_path / a) for a in arguments]

    done = subprocess.run([sys.executable, "manage.py", "--models-dir", str(models_dir), "score", "--quiet", *files],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"


def test_score_interrupted_leaves_no_output_and_no_partial_file(models_dir, tmp_path):
    rows = pd.read_csv(ROOT / "data" / "test.csv").drop(columns="Outcome")
    big = rows.sample(1_500_000, replace=True, random_state=0)
    pcsv.write_csv(pa.Table.from_pandas(big, preserve_index=False), tmp_path / "big.csv")
    process = subprocess.Popen([sys.executable, "manage.py", "--models-dir", str(models_dir), "score", "--quiet",
                                str(tmp_path / "big.csv"), str(tmp_path / "out.csv")],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(tmp_path) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert leftovers(tmp_path), "the run never started writing"
        process.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert err.strip() == "error: interrupted; nothing written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]


def test_score_summary_and_exit_code_zero_when_every_row_is_scored(models_dir, tmp_path):
    (tmp_path / "in.csv").write_text(CSV_HEADER + "\n" + "\n".join(PIMA_LINES[:3]) + "\n")
    done = subprocess.run([sys.executable, "manage.py", "--models-dir", str(models_dir), "score",
                           str(tmp_path / "in.csv"), str(tmp_path / "out.csv")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("scored 3 of 3 rows in ") and "rows/s" in done.stdout
    assert read_output(tmp_path / "out.errors.csv") == [], "an errors file with its header only"
