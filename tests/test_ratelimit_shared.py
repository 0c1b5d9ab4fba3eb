"""Rate limits shared by every gunicorn worker through a real Redis on 127.0.0.1.

With the default memory:// storage each worker counts alone (documented); with
RATE_LIMIT_STORAGE_URI=redis://... the limit is exact across workers, which this checks by sending
more requests than the limit over fresh connections, so both workers answer some of them.
"""
from __future__ import annotations

import subprocess
import time

import pytest
import redis
import requests

from tests import server
from tests.records import RECORD
from tests.tools import apt_install

pytestmark = pytest.mark.integration
LIMIT = 12


@pytest.fixture
def redis_url(tmp_path):
    binary = apt_install("redis-server")
    port = server.free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                assert process.poll() is None, f"redis-server exited with {process.returncode}"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_redis_backed_limit_is_exact_across_workers_where_memory_counts_per_worker(models_dir, redis_url, tmp_path):
    def statuses(**storage) -> list[int]:
        with server.running(models_dir, tmp_path / "server.log", RATE_LIMIT=f"{LIMIT}/minute", **storage) as url:
            return [requests.post(f"{url}/predict", json=RECORD, timeout=10).status_code for _ in range(LIMIT + 8)]

    # Control: each worker keeps its own count, so more than LIMIT get through, which also shows
    # that these requests reach both workers.
    assert statuses().count(200) > LIMIT
    assert statuses(RATE_LIMIT_STORAGE_URI=redis_url) == [200] * LIMIT + [429] * 8


def test_a_redis_outage_lets_requests_through_and_says_so(models_dir, redis_url, tmp_path):
    log = tmp_path / "server.log"
    dead = f"redis://127.0.0.1:{server.free_port()}"  # nothing listens there
    with server.running(models_dir, log, RATE_LIMIT="1/minute", RATE_LIMIT_STORAGE_URI=dead) as url:
        statuses = [requests.post(f"{url}/predict", json=RECORD, timeout=30).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert "rate limit storage failed, requests let through" in log.read_text()
