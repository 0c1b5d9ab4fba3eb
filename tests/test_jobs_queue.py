"""Training jobs on RQ (JOBS_QUEUE_URL): a real redis-server, real gunicorns, a real `manage.py worker`.

The servers only enqueue; the worker trains in the job's folder on the models folder they share
and publishes there; each server notices the new version by itself (MODELS_POLL_INTERVAL=1) and
reloads, since the worker cannot signal a server's master. Every process is started here and
stopped by its PID (the worker and its work horses by their own process group). Each test takes a
few seconds: two gunicorn starts and a small grid search on data/training.csv.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis
import requests

from app.model import artifacts
from tests import server
from tests.conftest import PIMA
from tests.records import ADMIN_KEY, RECORD
from tests.tools import redis_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
TRAINING_CSV = (ROOT / "data" / "training.csv").read_bytes()
QUICK = {"target": "Outcome", "estimator": "logreg", "folds": "2", "promote": "always"}  # ~2 s
SLOW = {"target": "Outcome", "estimator": "rf", "folds": "20", "promote": "always"}  # 180 fits: ~20 s


@pytest.fixture
def queue_url(tmp_path) -> Iterator[str]:
    """A redis-server of its own; the jobs' queue in its database 1, as deployed."""
    with redis_server(tmp_path) as url:
        yield f"{url}/1"


def settings(queue: str) -> dict[str, str]:
    return {"JOBS_QUEUE_URL": queue, "ADMIN_API_KEYS": ADMIN_KEY, "MODELS_POLL_INTERVAL": "1"}


@contextmanager
def worker(models: Path, queue: str, log: Path) -> Iterator[subprocess.Popen]:
    """`python manage.py worker` as deployed, in a session of its own so that its work horses
    (RQ forks one per job) are stopped with it."""
    environment = {**os.environ, "MODELS_DIR": str(models), "JOBS_QUEUE_URL": queue, "LOG_LEVEL": "INFO"}
    with open(log, "wb") as stream:
        process = subprocess.Popen([sys.executable, "manage.py", "worker"], cwd=ROOT, env=environment,
                                   stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # RQ's warm shutdown; a second TERM would be a cold one
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # a horse still training, if any
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def wait_for(what: str, seconds: float, look: Callable[[], object], log: Path | None = None):
    """``look()`` until it returns something true; its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        found = look()
        if found:
            return found
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            pytest.fail(f"not within {seconds} s: {what}\n{tail}")
        time.sleep(0.2)


def served_version(url: str) -> int:
    response = requests.post(f"{url}/predict", json=RECORD, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["model"]["name"] == PIMA
    return response.json()["model"]["version"]


def submit(url: str, options: dict[str, str]) -> str:
    response = requests.post(f"{url}/models/{PIMA}/train", params=options, data=TRAINING_CSV,
                             headers={**AUTH, "Content-Type": "text/csv"}, timeout=30)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["url"] == f"/jobs/{response.json()['id']}"
    return response.json()["id"]


def job(url: str, job_id: str) -> dict:
    response = requests.get(f"{url}/jobs/{job_id}", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def finished(url: str, job_id: str, seconds: float, log: Path) -> dict:
    return wait_for(f"job {job_id} ended", seconds,
                    lambda: (found := job(url, job_id))["state"] in ("succeeded", "failed") and found, log)


def test_a_training_job_runs_on_the_rq_worker_and_every_replica_serves_its_version(models_copy, queue_url, tmp_path):
    logs = {name: tmp_path / f"{name}.log" for name in ("server-a", "server-b", "worker")}
    with ExitStack() as stack:
        first, second = (stack.enter_context(server.running(models_copy, logs[name], **settings(queue_url)))
                         for name in ("server-a", "server-b"))
        before = served_version(first)
        assert served_version(second) == before
        versions = artifacts.list_versions(models_copy, PIMA)

        job_id = submit(first, QUICK)
        # Without a worker nothing takes it; either replica reads its state from the shared folder.
        time.sleep(1.5)
        assert job(second, job_id)["state"] == "queued"
        assert artifacts.list_versions(models_copy, PIMA) == versions

        started = time.monotonic()
        stack.enter_context(worker(models_copy, queue_url, logs["worker"]))
        ended = finished(second, job_id, 120, logs["worker"])
        assert ended["state"] == "succeeded", ended
        trained = time.monotonic() - started
        result = ended["result"]
        assert result["version"] == max(versions) + 1 and result["promoted"] is True, result
        assert result["served_version"] == result["version"]
        assert artifacts.list_versions(models_copy, PIMA) == [*versions, result["version"]]

        # The worker cannot HUP the servers: each sees the folder change within its poll interval.
        for url in (first, second):
            wait_for(f"{url} serves version {result['version']}", 30,
                     lambda: served_version(url) == result["version"])
        noticed = time.monotonic() - started - trained
        for name in ("server-a", "server-b"):
            assert "changed: reloading the models" in logs[name].read_text()
    print(f"trained on the worker in {trained:.1f} s; both replicas served it {noticed:.1f} s later")


def test_a_job_whose_worker_dies_is_reported_failed_and_the_service_is_unchanged(models_copy, queue_url, tmp_path):
    """The work horse (the process RQ forks for the job) is killed mid-training, as the kernel's
    OOM killer would: the worker records the job failed at once, GET /jobs/<id> says so with RQ's
    reason, no version is published and the served one is still served."""
    logs = {name: tmp_path / f"{name}.log" for name in ("server", "worker")}
    with server.running(models_copy, logs["server"], **settings(queue_url)) as url, \
            worker(models_copy, queue_url, logs["worker"]) as process:
        before = served_version(url)
        versions = artifacts.list_versions(models_copy, PIMA)
        job_id = submit(url, SLOW)

        def horse() -> int | None:
            if job(url, job_id)["state"] != "running":
                return None
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            return int(children[0]) if children else None

        pid = wait_for("the job runs in a work horse", 60, horse, logs["worker"])
        assert job(url, job_id)["state"] == "running", "the job ended before its horse could be killed: make it longer"
        os.kill(pid, signal.SIGKILL)

        ended = finished(url, job_id, 15, logs["worker"])
        assert ended["state"] == "failed", ended
        assert "Work-horse terminated unexpectedly" in ended["error"] and "signal 9" in ended["error"], ended
        assert ended["result"] is None
        assert process.poll() is None, "the worker itself should carry on with the next job"
        assert artifacts.list_versions(models_copy, PIMA) == versions
        time.sleep(2.5)  # two poll intervals: a reload, if anything had changed, would have happened
        assert served_version(url) == before
        # the failure is recorded in the job's folder, so it does not depend on the queue keeping it
        redis.Redis.from_url(queue_url).flushdb()
        assert job(url, job_id)["state"] == "failed"


def test_a_queue_that_cannot_be_reached_answers_503_with_retry_after_and_keeps_nothing(models_copy, tmp_path):
    dead = f"redis://127.0.0.1:{server.free_port()}/1"  # nothing listens there
    with server.running(models_copy, tmp_path / "server.log", **settings(dead)) as url:
        started = time.monotonic()
        response = requests.post(f"{url}/models/{PIMA}/train", params=QUICK, data=TRAINING_CSV,
                                 headers={**AUTH, "Content-Type": "text/csv"}, timeout=30)
        took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        assert "the job queue cannot take the job" in response.json()["detail"]
        assert took < 10
        assert served_version(url) == artifacts.list_versions(models_copy, PIMA)[-1]
    jobs_folder = models_copy / ".jobs"
    assert not [entry for entry in jobs_folder.iterdir() if not entry.name.startswith(".")] \
        if jobs_folder.exists() else True, "the refused job's folder was kept"
