"""Faults while serving: bad files at a reload, the metrics folder gone, a hung or dead limiter
storage, hostile paths in the access log. None of them may take the server down or fail requests."""
from __future__ import annotations

import shutil
import signal
import socket
import threading
import time

import pytest
import requests

from app import StartupError, create_app
from app.gateway.ratelimit import RateLimiter
from tests import server
from tests.records import RECORD

KEY = "operational-key-0123456789"


def test_a_key_file_that_is_not_text_stops_startup_with_one_line(tmp_path, models_dir):
    keys = tmp_path / "keys"
    keys.write_bytes(b"\xff\xfe not text at all\n")
    with pytest.raises(StartupError, match="not UTF-8 text"):
        create_app({"MODELS_DIR": str(models_dir), "API_KEYS_FILE": str(keys)})


def test_a_pin_file_that_is_not_text_leaves_the_model_without_a_default(tmp_path, models_dir):
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    (models / "titanic" / "pinned").write_bytes(b"\xff1\n")
    client = create_app({"MODELS_DIR": str(models)}).test_client()
    response = client.post("/predict?model=titanic", json={})
    assert response.status_code == 503 and "pinned" in response.json["detail"]
    assert client.get("/ready").status_code == 200  # the default model is not concerned


def test_text_access_lines_cannot_be_forged_through_the_path(models_dir, capfd):
    client = create_app({"MODELS_DIR": str(models_dir), "LOG_FORMAT": "text"}).test_client()
    client.get("/nothere%0A2026-01-01T00:00:00Z%20INFO%20app.access:%20POST%20/predict%20200%201ms%20rid=forged")
    lines = [line for line in capfd.readouterr().err.splitlines() if "app.access" in line]
    assert len(lines) == 1 and "\\n2026-01-01" in lines[0]


def test_a_request_refused_by_one_limit_does_not_use_up_the_others():
    limiter = RateLimiter("6/minute;2/second", "memory://", "fixed-window")
    assert [limiter.hit("client") is None for _ in range(6)] == [True, True, False, False, False, False]
    time.sleep(1.1)
    assert limiter.hit("client") is None  # the minute's budget was not spent by the refusals


def test_a_limiter_storage_that_never_answers_costs_one_short_timeout_not_a_hang():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(16)], daemon=True).start()
    try:
        limiter = RateLimiter("5/minute", f"redis://127.0.0.1:{listener.getsockname()[1]}", "sliding-window-counter")
        started = time.monotonic()
        answers = [limiter.hit("client") for _ in range(20)]
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert answers == [None] * 20  # let through
    assert elapsed < 2, f"20 requests took {elapsed:.1f} s against a hung storage"


@pytest.mark.integration
def test_bad_files_at_a_hup_keep_the_server_and_its_keys(models_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY}\n")
    log = tmp_path / "server.log"
    process, url = server.start(models, log, API_KEYS_FILE=str(keys))
    try:
        server.wait_until_healthy(process, url, log)
        keys.write_bytes(b"\xff\xfe-bad-bytes\n")
        (models / "pima-diabetes" / "pinned").write_bytes(b"\xff1\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while log.read_text(errors="replace").count("Booting worker") < 4:
            assert process.poll() is None, f"the master died on HUP:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        answer = requests.post(f"{url}/predict", json=RECORD, headers={"X-API-Key": KEY}, timeout=10)
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "pima-diabetes/1"
        text = log.read_text(errors="replace")
        assert "reload refused" in text and "API keys not reloaded" in text and KEY not in text
    finally:
        server.stop(process)


@pytest.mark.integration
def test_requests_are_served_when_the_metrics_folder_disappears(models_dir, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    log = tmp_path / "server.log"
    process, url = server.start(models_dir, log, PROMETHEUS_MULTIPROC_DIR=str(folder))
    try:
        server.wait_until_healthy(process, url, log)
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 200
        shutil.rmtree(folder)
        process.send_signal(signal.SIGHUP)  # new workers must create their metric files: they cannot
        server.wait_until_healthy(process, url, log, workers=4)
        for path in ("/health", "/ready", "/hello", "/nothere"):
            assert requests.get(url + path, timeout=5).status_code in (200, 404)
        assert requests.post(f"{url}/predict", json=RECORD, timeout=5).status_code == 200
    finally:
        server.stop(process)
    assert "metrics not recorded" in log.read_text()
