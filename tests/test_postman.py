"""Integration: the Postman collection, run by real newman against a real gunicorn.

The collection's own test scripts are the assertions; this test checks that newman ran them all
(many assertions, none failed), so it cannot pass by running nothing.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests import server
from tests.conftest import ROOT
from tests.tools import npm_tool

NEWMAN_VERSION = "6.2.2"
COLLECTION = ROOT / "postman" / "sklearn-serve.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
FOLDERS = ["Health", "Models", "Predict", "MLflow", "Errors"]


def requests_in(node: dict) -> list[dict]:
    if "request" in node:
        return [node]
    return [leaf for child in node.get("item", []) for leaf in requests_in(child)]


def test_the_collection_covers_every_endpoint_and_every_request_has_tests():
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert [folder["name"] for folder in collection["item"]] == FOLDERS
    items = requests_in(collection)
    for item in items:
        assert item["request"]["url"]["raw"].startswith("{{baseUrl}}/"), item["name"]
        tests = [e for e in item.get("event", []) if e["listen"] == "test"]
        assert tests and "pm.test(" in "\n".join(tests[0]["script"]["exec"]), f"{item['name']} has no tests"
    routes = {(i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"])) for i in items}
    assert routes >= {
        ("GET", "/hello"), ("GET", "/hello/:name"), ("GET", "/health"), ("GET", "/ready"), ("GET", "/models"),
        ("GET", "/models/pima-diabetes"), ("GET", "/models/pima-diabetes/:version"), ("GET", "/predict"),
        ("POST", "/predict"), ("POST", "/invocations"), ("GET", "/ping"), ("DELETE", "/predict"),
    }
    environment = json.loads(ENVIRONMENT.read_text())
    assert {v["key"]: v["value"] for v in environment["values"]} == {"baseUrl": "http://127.0.0.1:8000"}


@pytest.mark.integration
def test_newman_runs_the_collection_against_gunicorn_with_every_assertion_passing(models_dir, tmp_path):
    newman = npm_tool("newman", NEWMAN_VERSION)
    report = tmp_path / "newman-report.json"
    # Default settings, MAX_BATCH_ROWS included: the 413 request builds 10001 rows in its pre-request script.
    with server.running(models_dir, tmp_path / "server.log") as url:
        done = subprocess.run(
            [str(newman), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={url}",
             "--reporters", "cli,json", "--reporter-json-export", str(report),
             "--color", "off", "--timeout-request", "30000", "--timeout", "240000"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, f"newman failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    run = json.loads(report.read_text())["run"]
    stats = run["stats"]
    expected_requests = len(requests_in(json.loads(COLLECTION.read_text())))
    assert stats["requests"] == {"total": expected_requests, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0 and run["failures"] == []
    assert stats["assertions"]["total"] >= 200, stats
    assert stats["testScripts"]["failed"] == 0 and stats["prerequestScripts"]["failed"] == 0
    statuses = {e["response"]["code"] for e in run["executions"]}
    assert statuses == {200, 400, 404, 405, 413, 415, 422}
