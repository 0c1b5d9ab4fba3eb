"""Integration: the real gunicorn process over real HTTP, as curl and requests clients see it."""
from __future__ import annotations

import io
import json
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
import requests

from app.model import artifacts
from tests import server
from tests.conftest import ROOT
from tests.records import COLUMNS, KEY, QUERY, RECORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base_url(models_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with server.running(models_dir, log) as url:
        yield url


@pytest.fixture(scope="module")
def offline(models_dir, test_rows):
    """The artifact's own predictions on all of data/test.csv, computed without the service."""
    model = artifacts.load(models_dir / "pima-diabetes" / "1").model
    features = test_rows.drop(columns="Outcome").astype("float64")
    return model.predict(features), model.predict_proba(features)


def check_against_offline(predictions, offline, tolerance=1e-9):
    """Labels identical; probabilities equal up to rounding (the compiled backend promises 1e-5)."""
    labels, probabilities = offline
    assert [p["label"] for p in predictions] == labels.tolist()
    served = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in predictions])
    assert np.abs(served - probabilities).max() <= tolerance


def test_scikit_learn_path_serves_exactly_the_offline_predictions(models_dir, offline, tmp_path):
    body = (ROOT / "data" / "test.csv").read_bytes()
    with server.running(models_dir, tmp_path / "server.log", COMPILED_MODELS="false") as url:
        response = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "text/csv"}, timeout=30)
        backend = requests.get(f"{url}/models/pima-diabetes/1", timeout=5).json()["backend"]
    assert backend.startswith("scikit-learn")
    check_against_offline(response.json()["predictions"], offline, tolerance=0.0)


def test_the_compiled_backend_serves_the_default_model(base_url):
    assert requests.get(f"{base_url}/models/pima-diabetes/1", timeout=5).json()["backend"] == "numpy (calibrated-svm)"


def test_served_predictions_equal_offline_predictions_on_all_of_test_csv_as_csv(base_url, offline):
    body = (ROOT / "data" / "test.csv").read_bytes()
    response = requests.post(f"{base_url}/predict", data=body, headers={"Content-Type": "text/csv"}, timeout=30)
    assert response.status_code == 200, response.text
    check_against_offline(response.json()["predictions"], offline)


def test_served_predictions_equal_offline_predictions_as_json_records(base_url, offline, test_rows):
    records = test_rows.drop(columns="Outcome").to_dict(orient="records")
    response = requests.post(f"{base_url}/predict", json=records, timeout=30)
    check_against_offline(response.json()["predictions"], offline)


def test_served_predictions_equal_offline_predictions_row_by_row_from_query_strings(base_url, offline, test_rows):
    predictions = []
    for row in test_rows.drop(columns="Outcome").head(40).to_dict(orient="records"):
        response = requests.get(f"{base_url}/predict", params=row, timeout=10)
        predictions.append(response.json()["predictions"][0])
    labels, probabilities = offline
    check_against_offline(predictions, (labels[:40], probabilities[:40]))


@pytest.mark.parametrize("payload", [
    RECORD,
    [RECORD, RECORD],
    {"instances": [RECORD]},
    {"inputs": [RECORD]},
    {"dataframe_records": [RECORD]},
    {"dataframe_split": {"columns": COLUMNS, "data": [list(RECORD.values())]}},
], ids=["record", "list", "instances", "inputs", "dataframe_records", "dataframe_split"])
def test_every_json_format_over_http(base_url, payload):
    response = requests.post(f"{base_url}/predict", json=payload, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Model-Version"] == "pima-diabetes/1"
    assert response.json()["predictions"][0]["label"] == 1


def test_every_other_endpoint_over_http(base_url):
    assert requests.get(f"{base_url}/hello", timeout=5).json() == {"message": "Hello, World!"}
    assert requests.get(f"{base_url}/hello/Grace", timeout=5).json() == {"message": "Hello, Grace!"}
    assert requests.get(f"{base_url}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{base_url}/ready", timeout=5).status_code == 200
    assert requests.get(f"{base_url}/ping", timeout=5).status_code == 200
    assert requests.get(f"{base_url}/predict?{QUERY}", timeout=5).status_code == 200
    assert requests.get(f"{base_url}/models", timeout=5).json()["default"] == {"name": "pima-diabetes", "version": 1}
    assert requests.get(f"{base_url}/models/titanic", timeout=5).json()["name"] == "titanic"
    assert requests.get(f"{base_url}/models/pima-diabetes/1", timeout=5).json()["loaded"] is True
    invocations = requests.post(f"{base_url}/invocations", json={"dataframe_records": [RECORD]}, timeout=5)
    assert invocations.json() == {"predictions": [1]}


def test_curl_sees_json_errors_never_html(base_url):
    for args in (["-X", "DELETE", f"{base_url}/predict"], [f"{base_url}/nowhere"],
                 ["-X", "POST", "-H", "Content-Type: application/json", "-d", "{oops", f"{base_url}/predict"]):
        done = subprocess.run(["curl", "-s", "-i", *args], capture_output=True, text=True, timeout=10)
        head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
        assert "Content-Type: application/problem+json" in head
        assert json.loads(body)["status"] in (400, 404, 405)
        assert "<html" not in body.lower() and "Traceback" not in body


def test_a_large_batch_over_http(base_url, test_rows):
    frame = pd.concat([test_rows.drop(columns="Outcome")] * 31, ignore_index=True).head(10_000)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    response = requests.post(f"{base_url}/predict", data=buffer.getvalue(), headers={"Content-Type": "text/csv"}, timeout=60)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 10_000


def test_batch_over_the_row_limit_is_413_over_http(base_url):
    response = requests.post(f"{base_url}/predict", json=[RECORD] * 10_001, timeout=30)
    assert response.status_code == 413 and "MAX_BATCH_ROWS" in response.json()["detail"]


def test_gunicorn_refuses_to_start_without_a_model_and_says_why(tmp_path):
    log = tmp_path / "server.log"
    process, _ = server.start(tmp_path / "empty", log)
    assert process.wait(timeout=60) != 0
    text = log.read_text()
    assert "error: cannot start: no model found in" in text and "python train.py" in text
    assert "Traceback" not in text


def test_gunicorn_stops_cleanly_on_sigterm(models_dir, tmp_path):
    log = tmp_path / "server.log"
    process, url = server.start(models_dir, log)
    server.wait_until_healthy(process, url, log)
    assert server.stop(process) == 0
    assert "Shutting down" in log.read_text()


@pytest.mark.parametrize("request_args, status", [
    ({"headers": {"X-Big": "a" * 9000}}, 431),
    ({"params": {"Glucose": "1" * 5000}}, 414),
], ids=["header-too-large", "request-line-too-long"])
def test_requests_gunicorn_refuses_before_the_app_get_problem_json_too(base_url, request_args, status):
    response = requests.get(f"{base_url}/predict", timeout=5, **request_args)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["detail"]


def test_metrics_add_up_across_workers(base_url):
    before = _prediction_count(base_url)
    for _ in range(20):  # sync workers close every connection, so these spread over both workers
        assert requests.post(f"{base_url}/predict", json=RECORD, timeout=5).status_code == 200
    assert _prediction_count(base_url) == before + 20


def _prediction_count(base_url) -> float:
    text = requests.get(f"{base_url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("model_predictions_total{") and 'model="pima-diabetes"' in line)


@pytest.fixture(scope="module")
def small_limit(models_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("gunicorn-limits") / "server.log"
    with server.running(models_dir, log, MAX_CONTENT_LENGTH="100000", API_KEYS=KEY) as url:
        yield url


def urllib_post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST as Python's urllib does: it sends the whole body before it reads any answer."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.parametrize("headers, status, words", [
    ({"X-API-Key": KEY}, 413, "MAX_CONTENT_LENGTH"),
    ({}, 401, "API key"),
], ids=["too-large", "no-key"])
def test_urllib_reads_an_early_refusal_of_a_large_body_instead_of_a_reset(small_limit, headers, status, words):
    body = b"[" + b",".join([json.dumps(RECORD).encode()] * 100_000) + b"]"  # about 13 MB, 130x the limit
    code, problem = urllib_post(f"{small_limit}/predict", body, headers)
    assert code == status and words in problem["detail"]
    assert requests.get(f"{small_limit}/health", timeout=5).status_code == 200  # and the worker is free again
