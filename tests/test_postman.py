"""Integration: the Postman collection, run by real newman against a real gunicorn.

The collection's own test scripts are the assertions; this test checks that newman ran them all
(many assertions, none failed), so it cannot pass by running nothing.

The whole collection runs against a server with prediction keys (API_KEYS, sent by the
collection's pre-request script from ``apiKey``) and admin keys (ADMIN_API_KEYS, ``adminKey``),
over a private copy of the models, since the *Admin* folder uploads, promotes, rolls back, deletes
and trains. The model files to upload reach newman through the ``modelFolder`` variable (a version
folder; the form-data parts' ``src`` is ``{{modelFolder}}/model.skops``); the garbage model is
``postman/files/not-a-model.skops``, relative to newman's working directory (the repository).
"""
from __future__ import annotations

import collections
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from app.model import artifacts
from tests import server
from tests.conftest import PIMA, ROOT
from tests.tools import npm_tool

NEWMAN_VERSION = "6.2.2"
COLLECTION = ROOT / "postman" / "sklearn-serve.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
FOLDERS = ["Health", "Models", "Predict", "MLflow", "Errors", "Admin"]
ADMIN_ROUTES = {
    ("POST", "/models/pima-diabetes/versions"), ("POST", "/models/pima-diabetes/promote"),
    ("POST", "/models/pima-diabetes/rollback"), ("DELETE", "/models/pima-diabetes/versions/{{servedVersion}}"),
    ("DELETE", "/models/pima-diabetes/versions/{{uploadedVersion}}"), ("POST", "/models/pima-diabetes/train"),
    ("GET", "/jobs/{{jobId}}"), ("DELETE", "/models/pima-diabetes/versions/{{trainedVersion}}"),
}
POLLING = "Training job (polled until it ends)"  # the one request that runs again (setNextRequest) until its job ends
MAX_POLLS = 120
API_KEY = "predict-key-for-newman-0123"
ADMIN_KEY = "admin-key-for-newman-456789"


def requests_in(node: dict) -> list[dict]:
    if "request" in node:
        return [node]
    return [leaf for child in node.get("item", []) for leaf in requests_in(child)]


def route(item: dict) -> tuple[str, str]:
    return item["request"]["method"], "/" + "/".join(item["request"]["url"]["path"])


def newman_run(tmp_path: Path, url: str, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    newman = npm_tool("newman", NEWMAN_VERSION)
    report = tmp_path / "newman-report.json"
    done = subprocess.run(
        [str(newman), "run", str(COLLECTION), "-e", str(ENVIRONMENT), "--env-var", f"baseUrl={url}", *options,
         "--reporters", "cli,json", "--reporter-json-export", str(report),
         "--color", "off", "--timeout-request", "30000", "--timeout", "240000"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"newman failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    return done, json.loads(report.read_text())["run"]


def test_the_collection_covers_every_endpoint_and_every_request_has_tests():
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    assert [folder["name"] for folder in collection["item"]] == FOLDERS
    items = requests_in(collection)
    assert len({item["name"] for item in items}) == len(items), "request names are unique (setNextRequest uses one)"
    for item in items:
        assert item["request"]["url"]["raw"].startswith("{{baseUrl}}/"), item["name"]
        tests = [e for e in item.get("event", []) if e["listen"] == "test"]
        assert tests and "pm.test(" in "\n".join(tests[0]["script"]["exec"]), f"{item['name']} has no tests"
    routes = {route(i) for i in items}
    assert routes >= {
        ("GET", "/hello"), ("GET", "/hello/:name"), ("GET", "/health"), ("GET", "/ready"), ("GET", "/models"),
        ("GET", "/models/pima-diabetes"), ("GET", "/models/pima-diabetes/:version"), ("GET", "/predict"),
        ("POST", "/predict"), ("POST", "/invocations"), ("GET", "/ping"), ("DELETE", "/predict"),
    } | ADMIN_ROUTES
    # The admin requests are all in the last folder, so a server without admin keys ends the run there.
    admin = collection["item"][-1]
    assert {route(i) for i in requests_in(admin)} == ADMIN_ROUTES
    assert not {route(i) for folder in collection["item"][:-1] for i in requests_in(folder)} & ADMIN_ROUTES
    first = "\n".join(admin["item"][0]["event"][-1]["script"]["exec"])
    assert "pm.response.code === 404" in first and "pm.execution.setNextRequest(null)" in first
    uploads = [i for i in requests_in(admin) if i["request"].get("body", {}).get("mode") == "formdata"]
    assert {part["src"] for i in uploads for part in i["request"]["body"]["formdata"]} == {
        "{{modelFolder}}/model.skops", "{{modelFolder}}/metadata.json", "postman/files/not-a-model.skops"}
    assert (ROOT / "postman" / "files" / "not-a-model.skops").is_file()
    environment = json.loads(ENVIRONMENT.read_text())
    assert {v["key"]: v["value"] for v in environment["values"]} == {
        "baseUrl": "http://127.0.0.1:8000", "apiKey": "", "adminKey": "replace-with-one-of-ADMIN_API_KEYS",
        "modelFolder": "models/pima-diabetes/1"}


@pytest.mark.integration
def test_newman_runs_the_collection_against_gunicorn_with_every_assertion_passing(models_dir, tmp_path):
    models = tmp_path / "models"  # the Admin folder changes the models: a private copy
    shutil.copytree(models_dir, models)
    versions = artifacts.list_versions(models, PIMA)
    upload = models / PIMA / str(versions[-1])  # a version folder whose files the Admin folder uploads
    log = tmp_path / "server.log"
    # Default settings, MAX_BATCH_ROWS included: the 413 request builds 10001 rows in its pre-request script.
    with server.running(models, log, API_KEYS=API_KEY, ADMIN_API_KEYS=ADMIN_KEY) as url:
        done, run = newman_run(tmp_path, url, "--env-var", f"apiKey={API_KEY}", "--env-var", f"adminKey={ADMIN_KEY}",
                               "--env-var", f"modelFolder={upload}")
    items = requests_in(json.loads(COLLECTION.read_text()))
    runs = collections.Counter(e["item"]["name"] for e in run["executions"])
    assert {name: count for name, count in runs.items() if name != POLLING} == \
        {i["name"]: 1 for i in items if i["name"] != POLLING}, "every request ran once, in a run that was not cut short"
    assert 1 <= runs[POLLING] <= MAX_POLLS
    stats = run["stats"]
    assert stats["requests"] == {"total": len(items) - 1 + runs[POLLING], "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0 and run["failures"] == []
    assert stats["assertions"]["total"] >= 250, stats
    assert stats["testScripts"]["failed"] == 0 and stats["prerequestScripts"]["failed"] == 0
    statuses = {e["response"]["code"] for e in run["executions"]}
    assert statuses == {200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 422}
    print(f"newman: {stats['assertions']['total']} assertions, {runs[POLLING]} polls of the training job")
    # The server really changed and changed back: every version the run added is gone again, and
    # each change left an audit line naming the key's id, never the key.
    assert artifacts.list_versions(models, PIMA) == versions
    text = log.read_text(errors="replace")
    for action in ("upload", "promote", "rollback", "delete", "train"):
        assert f"action={action}" in text, f"no audit line for {action}:\n{text[-3000:]}"
    assert ADMIN_KEY not in text and API_KEY not in text


@pytest.mark.integration
def test_without_admin_keys_the_admin_folder_ends_the_run_at_its_first_request(models_dir, tmp_path):
    """The collection against a server with no keys at all, as most users run it: the Admin folder's
    first request finds the admin API absent (404) and stops the run, every assertion passing."""
    with server.running(models_dir, tmp_path / "server.log") as url:
        _, run = newman_run(tmp_path, url, "--folder", "Admin")
    assert [e["response"]["code"] for e in run["executions"]] == [404]
    assert run["stats"]["assertions"]["failed"] == 0 and run["failures"] == []
    assert run["stats"]["assertions"]["total"] >= 3
