"""Rate limits shared by every gunicorn worker through a real Redis on 127.0.0.1.

With the default memory:// storage each worker counts alone (documented); with
RATE_LIMIT_STORAGE_URI=redis://... the limit is exact across workers, which this checks by sending
more requests than the limit over fresh connections, so both workers answer some of them.
"""
from __future__ import annotations


import pytest
import requests

from tests import server
from tests.records import RECORD
from tests.tools import redis_server

pytestmark = pytest.mark.integration
LIMIT = 12


@pytest.fixture
def redis_url(tmp_path):
    with redis_server(tmp_path) as url:
        yield url


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
