"""Integration: the example clients in clients/, run as a user runs them, against a real gunicorn."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests import server
from tests.conftest import REGRESSOR, ROOT
from tests.records import PATIENT

pytestmark = pytest.mark.integration

PYTHON_CLIENT = ROOT / "clients" / "predict_client.py"
CURL_CLIENT = ROOT / "clients" / "predict.sh"
TEST_ROWS = 332  # data/test.csv
ROW_LINE = re.compile(r"^row (\d+): label=([01]) probability=(0\.\d+|1\.0+)$")


@pytest.fixture(scope="module")
def base_url(models_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn-clients") / "server.log"
    with server.running(models_dir, log) as url:
        yield url


def python_client(base_url, *arguments, cwd=ROOT):
    return subprocess.run([sys.executable, str(PYTHON_CLIENT), "--url", base_url, *arguments],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def curl_client(base_url, *arguments, **environment):
    if shutil.which("curl") is None:
        pytest.skip("clients/predict.sh needs curl")
    return subprocess.run(["bash", str(CURL_CLIENT), *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "BASE_URL": base_url, **environment})


def rows(stdout: str) -> list[tuple[int, int, float]]:
    found = [ROW_LINE.match(line) for line in stdout.splitlines() if line.startswith("row ")]
    assert all(found), stdout
    return [(int(m[1]), int(m[2]), float(m[3])) for m in found]


# ---- Python ---------------------------------------------------------------------------------------
def test_python_client_single_record_prints_label_1(base_url):
    done = python_client(base_url, "single")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "model pima-diabetes version 1: 1 prediction"
    ((index, label, probability),) = rows(done.stdout)
    assert (index, label) == (0, 1) and 0.6 < probability < 0.8


def test_python_client_batch_prints_each_row_in_order(base_url):
    done = python_client(base_url, "--model", "pima-diabetes", "--version", "1", "batch")
    assert done.returncode == 0, done.stderr
    assert [(i, label) for i, label, _ in rows(done.stdout)] == [(0, 1), (1, 0)]


def test_python_client_batch_from_a_file(base_url, tmp_path):
    records = tmp_path / "records.json"
    example = {"Pregnancies": 1, "Glucose": 89, "BloodPressure": 66, "SkinThickness": 23, "BMI": 28.1,
               "DiabetesPedigreeFunction": 0.167, "Age": 21}
    records.write_text(json.dumps({"instances": [example] * 3}))
    done = python_client(base_url, "batch", "--file", str(records))
    assert done.returncode == 0, done.stderr
    assert [label for _, label, _ in rows(done.stdout)] == [0, 0, 0]


def test_python_client_csv_prints_every_row_of_test_csv_from_any_directory(base_url, tmp_path):
    done = python_client(base_url, "csv", cwd=tmp_path)  # the default path does not depend on the cwd
    assert done.returncode == 0, done.stderr
    assert f"{TEST_ROWS} predictions" in done.stdout.splitlines()[0]
    printed = rows(done.stdout)
    assert [i for i, _, _ in printed] == list(range(TEST_ROWS))
    assert all(0.5 <= p <= 1 for _, _, p in printed)  # the probability of the predicted label
    assert printed[0][1] == 1


def test_python_client_warns_about_extrapolation(base_url):
    record = {"Pregnancies": 6, "Glucose": 400, "BloodPressure": 72, "SkinThickness": 35, "BMI": 33.6,
              "DiabetesPedigreeFunction": 0.627, "Age": 50}
    done = python_client(base_url, "single", "--record", json.dumps(record))
    assert done.returncode == 0, done.stderr
    assert "  warning: Glucose=400 is outside the range seen in training" in done.stdout


def test_python_client_reports_a_422_clearly_and_exits_1(base_url):
    record = {"Pregnancies": 6, "Glucose": "high", "BloodPressure": 72, "SkinThickness": 35, "BMI": 33.6,
              "DiabetesPedigreeFunction": 0.627, "Age": 50, "Insulin": 80}
    done = python_client(base_url, "single", "--record", json.dumps(record))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[:4] == [
        "error: the service refused the request",
        "HTTP 422 Invalid input: 2 problems in 1 row",
        "  row 0, Glucose: expected a number, got the string 'high'",
        "  row 0, Insulin: unknown field; expected one of: Pregnancies, Glucose, BloodPressure, SkinThickness, BMI, "
        "DiabetesPedigreeFunction, Age",
    ]
    assert re.fullmatch(r"  \(request_id [0-9a-f]{32}\)", lines[4])
    assert "Traceback" not in done.stderr


def test_python_client_reports_an_unknown_model(base_url):
    done = python_client(base_url, "--model", "nope", "single")
    assert done.returncode == 1
    assert "HTTP 404 Model not found: no model named 'nope'" in done.stderr


def test_python_client_says_when_the_service_cannot_be_reached():
    done = python_client(f"http://127.0.0.1:{server.free_port()}", "single")
    assert done.returncode == 3
    assert "cannot reach http://127.0.0.1:" in done.stderr and "Traceback" not in done.stderr


def test_python_client_rejects_bad_arguments_with_usage(base_url, tmp_path):
    assert python_client(base_url, "single", "--record", "{oops").returncode == 2
    missing = python_client(base_url, "csv", str(tmp_path / "missing.csv"))
    assert missing.returncode == 2 and "No such file" in missing.stderr and "Traceback" not in missing.stderr


# ---- curl -----------------------------------------------------------------------------------------
def answers(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_curl_script_runs_single_batch_and_csv(base_url):
    done = curl_client(base_url)
    assert done.returncode == 0, done.stderr
    single, batch, csv = answers(done.stdout)
    assert single["model"] == {"name": "pima-diabetes", "version": 1}
    assert [p["label"] for p in single["predictions"]] == [1]
    assert [p["label"] for p in batch["predictions"]] == [1, 0]
    assert len(csv["predictions"]) == TEST_ROWS
    assert "== every row of" in done.stderr


def test_curl_script_single_with_model_and_version(base_url):
    done = curl_client(base_url, "single", MODEL="pima-diabetes", VERSION="1")
    assert done.returncode == 0, done.stderr
    (answer,) = answers(done.stdout)
    assert answer["model"] == {"name": "pima-diabetes", "version": 1}
    assert answer["predictions"][0]["label"] == 1


def test_curl_script_prints_the_problem_and_fails_on_a_bad_record(base_url):
    done = curl_client(base_url, "single", '{"Glucose": "high"}')
    assert done.returncode == 22
    (problem,) = answers(done.stdout)
    assert problem["status"] == 422
    assert {"row": 0, "field": "Glucose", "problem": "expected a number, got the string 'high'"} in problem["errors"]
    assert "422" in done.stderr


def test_python_client_prints_a_regressors_value(base_url):
    done = python_client(base_url, "--model", REGRESSOR, "single", "--record", json.dumps(PATIENT))
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^model {REGRESSOR} version 1: 1 prediction$", done.stdout, re.M)
    value = float(re.search(r"^row 0: value=(\S+)$", done.stdout, re.M).group(1))
    assert 25 <= value <= 346  # within what the training targets spanned


def test_curl_script_asks_a_regressor(base_url):
    done = curl_client(base_url, "single", json.dumps(PATIENT), MODEL=REGRESSOR)
    assert done.returncode == 0, done.stderr
    (answer,) = answers(done.stdout)
    assert answer["model"]["name"] == REGRESSOR and isinstance(answer["predictions"][0]["value"], float)
