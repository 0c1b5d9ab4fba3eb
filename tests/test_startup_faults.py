"""Integration: a damaged model at startup, as a real gunicorn on 127.0.0.1 reports it.

Each fault in one table is applied to a private copy of the session's models (never to the shared
fixture), then gunicorn is started twice over it:

* with the default settings, it must exit non-zero within a bounded time, with exactly one line
  ``error: cannot start: <reason>`` naming the problem, no traceback, and no worker ever booted;
* with ``EXIT_IF_UNREADY=false``, it must stay up and say so: ``/health`` 200, ``/ready`` 503 with the
  reason in a problem+json ``detail``, ``/predict`` on the damaged default a problem+json error (never
  a 500), and the undamaged model beside it (titanic) still predicting.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sklearn

from app.model import artifacts
from app.config import SETTINGS
from tests import server
from tests.conftest import PIMA
from tests.records import PASSENGER, QUERY, RECORD

pytestmark = pytest.mark.integration

EXIT_SECONDS = 60
ONE_LINE = "error: cannot start:"


def default_model_folder(models: Path) -> Path:
    return models / PIMA / str(artifacts.list_versions(models, PIMA)[-1])


# ---- the faults: each damages a copy of the models and returns the words its reason must contain -----
def empty_models_dir(models: Path) -> list[str]:
    for child in models.iterdir():
        shutil.rmtree(child)
    return [f"no model found in {models}/", "python train.py"]


def deleted_model_file(models: Path) -> list[str]:
    path = default_model_folder(models) / artifacts.MODEL_FILE
    path.unlink()
    return [f"{path} is missing", "python train.py"]


def truncated_model_file(models: Path) -> list[str]:
    path = default_model_folder(models) / artifacts.MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ["sha256", str(path), "changed or truncated"]


def tampered_model_file(models: Path) -> list[str]:
    path = default_model_folder(models) / artifacts.MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte, same length: only the checksum can tell
    path.write_bytes(bytes(data))
    return ["sha256", str(path), "changed or truncated"]


def other_scikit_learn_version(models: Path) -> list[str]:
    folder = default_model_folder(models)
    meta_path = folder / artifacts.METADATA_FILE
    metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    assert metadata["versions"]["scikit-learn"] == sklearn.__version__  # the key app/artifacts.py checks
    metadata["versions"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    return [str(folder), "scikit-learn 0.24.2", f"{sklearn.__version__} is installed", "scikit-learn==0.24.2"]


@dataclass(frozen=True)
class Fault:
    damage: Callable[[Path], list[str]]
    predict_status: int = 503  # what /predict answers for the damaged default model
    predict_words: tuple[str, ...] = ()  # words /predict's detail must hold, if not the reason's own
    others_survive: bool = True  # the titanic model is still there to serve


FAULTS = {
    # Nothing to serve at all: /predict names no model (404, the contract in tests/test_api.py).
    "empty-models-dir": Fault(empty_models_dir, predict_status=404,
                              predict_words=(f"no model named '{PIMA}'", "loaded models: none"), others_survive=False),
    "deleted-model-file": Fault(deleted_model_file),
    "truncated-model-file": Fault(truncated_model_file),
    "tampered-model-file": Fault(tampered_model_file),
    "other-scikit-learn-version": Fault(other_scikit_learn_version),
}


@pytest.fixture(params=list(FAULTS), ids=list(FAULTS))
def damaged(request, models_dir, tmp_path, monkeypatch) -> tuple[Path, Fault, list[str]]:
    """A damaged private copy of the session's models, and an environment free of the service's settings."""
    for name in (*SETTINGS, "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)  # a developer's shell must not change "default settings"
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    fault = FAULTS[request.param]
    words = fault.damage(models)
    return models, fault, words


def assert_problem_over_http(response: requests.Response, status: int, words) -> dict:
    text = response.text
    assert response.status_code == status, f"{response.request.method} {response.url}: {response.status_code} {text}"
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    assert "Traceback" not in text and "<html" not in text.lower()
    body = response.json()
    assert body["status"] == status
    missing = [word for word in words if word not in body["detail"]]
    assert not missing, f"{missing} not in detail: {body['detail']!r}"
    return body


# ---- a. default settings: refuse to start, in one line ------------------------------------------------
def test_a_damaged_default_model_stops_startup_with_a_one_line_reason(damaged, tmp_path):
    models, _, words = damaged
    log = tmp_path / "server.log"
    process, _ = server.start(models, log)
    try:
        code = process.wait(timeout=EXIT_SECONDS)
    finally:
        server.stop(process)
    text = log.read_text(errors="replace")
    assert code != 0, text
    reasons = [line for line in text.splitlines() if line.startswith(ONE_LINE)]
    assert len(reasons) == 1, text
    missing = [word for word in words if word not in reasons[0]]
    assert not missing, f"{missing} not in: {reasons[0]!r}"
    assert "Traceback" not in text, text
    assert "Booting worker" not in text, text  # refused before serving anything


# ---- b. EXIT_IF_UNREADY=false: up, alive, not ready, and it says why ----------------------------------
def test_a_damaged_default_model_leaves_the_server_up_but_not_ready_when_told_to_start_anyway(damaged, tmp_path):
    models, fault, words = damaged
    log = tmp_path / "server.log"
    process, url = server.start(models, log, EXIT_IF_UNREADY="false", WORKERS="1")
    try:
        server.wait_until_healthy(process, url, log, workers=1)

        health = requests.get(f"{url}/health", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}

        assert_problem_over_http(requests.get(f"{url}/ready", timeout=5), 503, ["not ready:", *words])

        predict_words = fault.predict_words or words
        assert_problem_over_http(requests.post(f"{url}/predict", json=RECORD, timeout=10), fault.predict_status, predict_words)
        assert_problem_over_http(requests.get(f"{url}/predict?{QUERY}", timeout=10), fault.predict_status, predict_words)
        assert_problem_over_http(requests.post(f"{url}/invocations", json={"dataframe_records": [RECORD]}, timeout=10),
                       fault.predict_status, predict_words)
        assert requests.get(f"{url}/ping", timeout=5).status_code == 503  # MLflow's probe agrees with /ready
        assert_problem_over_http(requests.get(f"{url}/", timeout=5), 503, ["not ready:", *words])  # the browser form
        for path in ("/openapi.json", "/models", f"/models/{PIMA}", f"/models/{PIMA}/1"):  # nothing answers 500
            answer = requests.get(f"{url}{path}", timeout=5)
            assert answer.status_code < 500 or answer.status_code == 503, f"{path}: {answer.status_code} {answer.text}"
            assert "Traceback" not in answer.text

        if fault.others_survive:
            titanic = requests.post(f"{url}/predict?model=titanic", json=PASSENGER, timeout=10)
            assert titanic.status_code == 200, titanic.text
            body = titanic.json()
            assert body["model"]["name"] == "titanic"
            assert titanic.headers["X-Model-Version"].startswith("titanic/")
            assert set(body["predictions"][0]["probabilities"]) == {"0", "1"}

        assert process.poll() is None, log.read_text(errors="replace")  # still serving after all that
    finally:
        code = server.stop(process)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert "not ready:" in text  # the operator sees the reason in the log too
    assert "Traceback" not in text, text
