"""The admin API over a real gunicorn: promotions under load, concurrent uploads, a full disk, a
client gone mid-upload, a training job's reload, and a replica that notices by itself."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from app.model import artifacts
from tests import server
from tests.conftest import PIMA, ROOT
from tests.records import ADMIN_KEY, RECORD

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SWITCH_BOUND = 10  # seconds: a bound so the test ends, not the target (2 s, measured in make bench)


def version_files(folder: Path) -> dict:
    return {part: (name, (folder / name).read_bytes()) for part, name in
            (("model", artifacts.MODEL_FILE), ("metadata", artifacts.METADATA_FILE))}


@pytest.fixture
def pima_only(models_dir, tmp_path) -> Path:
    models = tmp_path / "models"
    shutil.copytree(models_dir / PIMA, models / PIMA)
    return models


class Load:
    """Threads posting one row to /predict without pause; every answer's version, every failure."""

    def __init__(self, url: str, threads: int = 3):
        self.url, self.threads = url, threads
        self.answers: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stopping.is_set():
            try:
                answer = session.post(f"{self.url}/predict", json=RECORD, headers=ADMIN, timeout=10)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code != 200:
                self.failures.append(f"{answer.status_code} {answer.text[:200]}")
            else:
                self.answers.append((time.monotonic(), answer.json()["model"]["version"]))

    @contextmanager
    def running(self):
        workers = [threading.Thread(target=self.run) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self.stopping.set()
            for worker in workers:
                worker.join(timeout=15)

    def wait_for(self, version: int, since: float) -> float:
        """Seconds from ``since`` until 30 answers in a row came from ``version``."""
        deadline = since + SWITCH_BOUND
        while time.monotonic() < deadline:
            recent = [v for t, v in self.answers[-30:] if t > since]
            if len(recent) == 30 and set(recent) == {version}:
                first_old_after = [t for t, v in self.answers if t > since and v != version]
                return (max(first_old_after) if first_old_after else since) - since
            time.sleep(0.05)
        raise AssertionError(f"not every answer came from version {version} within {SWITCH_BOUND} s: "
                             f"{Counter(v for t, v in self.answers if t > since)}")


def test_a_promotion_reaches_every_worker_under_load_without_dropping_a_request(pima_only, tmp_path):
    with server.running(pima_only, tmp_path / "log", ADMIN_API_KEYS=ADMIN_KEY, WORKERS="2") as url:
        stored = requests.post(f"{url}/models/{PIMA}/versions", headers=ADMIN,
                               files=version_files(pima_only / PIMA / "1"), timeout=60)
        assert stored.status_code == 201, stored.text
        with Load(url).running() as load:
            time.sleep(0.5)
            for version in (2, 1, 2):
                asked = time.monotonic()
                promoted = requests.post(f"{url}/models/{PIMA}/promote", headers=ADMIN, json={"version": version},
                                         timeout=30)
                assert promoted.status_code == 200 and promoted.json()["reload"] == "requested", promoted.text
                load.wait_for(version, asked)
        assert load.failures == []
        assert len(load.answers) > 100


def test_two_uploads_at_once_get_two_versions(pima_only, tmp_path):
    with server.running(pima_only, tmp_path / "log", ADMIN_API_KEYS=ADMIN_KEY, WORKERS="2") as url:
        files = version_files(pima_only / PIMA / "1")
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: requests.post(f"{url}/models/{PIMA}/versions", headers=ADMIN,
                                                            files=files, timeout=60), range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [2, 3, 4, 5]
    assert artifacts.list_versions(pima_only, PIMA) == [1, 2, 3, 4, 5]
    assert artifacts.read_pin(pima_only, PIMA) == 1


def leftovers(models: Path) -> list[str]:
    """Staging folders and parts: anything hidden but the model's lock file."""
    return sorted(p.name for p in (models / PIMA).iterdir() if p.name.startswith(".") and p.name != ".lock")


@contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` at ``folder``: a disk that really fills up."""
    folder.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip(f"mounting a small tmpfs needs root (CI runs as root): {done.stderr.strip()}")
        raise AssertionError(f"mount failed: {done.stderr}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_mid_upload_is_a_507_and_leaves_nothing(models_dir, tmp_path):
    with small_disk(tmp_path / "models", "1m") as models:
        shutil.copytree(models_dir / PIMA, models / PIMA)
        with server.running(models, tmp_path / "log", ADMIN_API_KEYS=ADMIN_KEY, WORKERS="1") as url:
            huge = {"model": ("model.skops", os.urandom(2 * 1024 * 1024)),
                    "metadata": ("metadata.json", (models / PIMA / "1" / artifacts.METADATA_FILE).read_bytes())}
            full = requests.post(f"{url}/models/{PIMA}/versions", headers=ADMIN, files=huge, timeout=60)
            assert full.status_code == 507, full.text
            assert full.json()["type"].endswith("/insufficient-storage")
            assert artifacts.list_versions(models, PIMA) == [1] and leftovers(models) == []
            fits = requests.post(f"{url}/models/{PIMA}/versions", headers=ADMIN,
                                 files=version_files(models / PIMA / "1"), timeout=60)
            assert fits.status_code == 201, fits.text  # the space was given back
            assert requests.post(f"{url}/predict", json=RECORD, headers=ADMIN, timeout=10).status_code == 200


def test_a_client_gone_mid_upload_leaves_nothing(pima_only, tmp_path):
    with server.running(pima_only, tmp_path / "log", ADMIN_API_KEYS=ADMIN_KEY, WORKERS="1") as url:
        port = int(url.rsplit(":", 1)[1])
        boundary = "x" * 20
        start = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"model.skops\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * 200_000
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall((f"POST /models/{PIMA}/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}"
                                f"\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                                f"Content-Length: 5000000\r\n\r\n").encode() + start)
            time.sleep(0.5)
        deadline = time.monotonic() + 10
        while leftovers(pima_only) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leftovers(pima_only) == [] and artifacts.list_versions(pima_only, PIMA) == [1]
        assert requests.post(f"{url}/predict", json=RECORD, headers=ADMIN, timeout=10).status_code == 200


def test_a_training_job_under_gunicorn_is_served_without_a_manual_reload(pima_only, tmp_path):
    with server.running(pima_only, tmp_path / "log", ADMIN_API_KEYS=ADMIN_KEY, WORKERS="2") as url:
        started = requests.post(f"{url}/models/{PIMA}/train?target=Outcome&estimator=logreg&folds=2&promote=always",
                                headers={**ADMIN, "Content-Type": "text/csv"},
                                data=(ROOT / "data" / "training.csv").read_bytes(), timeout=30)
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 120
        while (job := requests.get(f"{url}{started.json()['url']}", headers=ADMIN, timeout=10).json())["state"] \
                not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["state"] == "succeeded" and job["result"]["version"] == 2, job
        deadline = time.monotonic() + SWITCH_BOUND
        while requests.post(f"{url}/predict", json=RECORD, headers=ADMIN, timeout=10).json()["model"]["version"] != 2:
            assert time.monotonic() < deadline, "the server did not reload after the job"
            time.sleep(0.2)


def test_a_replica_on_the_same_volume_notices_a_promotion_by_itself(pima_only, tmp_path):
    settings = {"ADMIN_API_KEYS": ADMIN_KEY, "WORKERS": "1", "MODELS_POLL_INTERVAL": "1"}
    with ExitStack() as stack:
        first = stack.enter_context(server.running(pima_only, tmp_path / "a.log", **settings))
        second = stack.enter_context(server.running(pima_only, tmp_path / "b.log", **settings))
        stored = requests.post(f"{first}/models/{PIMA}/versions?promote=true", headers=ADMIN,
                               files=version_files(pima_only / PIMA / "1"), timeout=60)
        assert stored.status_code == 201, stored.text
        with Load(second, threads=2).running() as load:
            load.wait_for(2, time.monotonic())
        assert load.failures == []
    assert "changed: reloading the models" in (tmp_path / "b.log").read_text()
