"""Acceptance: production hardening of the real gunicorn on 127.0.0.1 under wrk load.

Steady load at half capacity, a worker killed mid-load, two HUP reloads (the second publishing a
new model version), worker recycling by MAX_REQUESTS and overload at 4x capacity with a rate
limit. Every test starts its own processes, bounds them in time and ends them by PID.
Counts come from tests/wrk_status.lua (statuses, X-Model-Version values, wrk's socket errors).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from app.model.training import TrainingOptions, train
from tests import server, tools
from tests.conftest import ROOT
from tests.records import RECORD

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "tests" / "wrk_status.lua"
BODY = json.dumps(RECORD)
CONNECTIONS = 32


# ---- processes --------------------------------------------------------------------------------
@dataclass
class Gunicorn:
    process: subprocess.Popen
    url: str
    log: Path

    def workers(self) -> set[int]:
        """The master's children (its workers), by PID."""
        listing = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if listing.exists():
            return {int(pid) for pid in listing.read_text().split()}
        done = subprocess.run(["ps", "--ppid", str(self.process.pid), "-o", "pid="],
                              capture_output=True, text=True, timeout=10)
        return {int(pid) for pid in done.stdout.split()}

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, fragment: str, count: int = 1, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while self.text().count(fragment) < count:
            assert time.monotonic() < deadline, f"{fragment!r} not logged {count} times in {seconds} s:\n{self.tail()}"
            time.sleep(0.1)

    def wait_for_workers(self, check, seconds: float = 15) -> set[int]:
        deadline = time.monotonic() + seconds
        while not check(workers := self.workers()):
            assert time.monotonic() < deadline, f"workers now {workers}:\n{self.tail()}"
            time.sleep(0.1)
        return workers

    def tail(self, lines: int = 40) -> str:
        """The log's last lines other than the access log."""
        kept = [line for line in self.text().splitlines() if " app.access: " not in line]
        return "\n".join(kept[-lines:])


@contextmanager
def gunicorn(models_dir: Path, log: Path, **settings: str) -> Iterator[Gunicorn]:
    process, url = server.start(models_dir, log, **settings)
    try:
        server.wait_until_healthy(process, url, log, workers=int(settings.get("WORKERS", "2")))
        yield Gunicorn(process, url, log)
    finally:
        server.stop(process)


@dataclass
class Load:
    requests: int
    seconds: float
    errors: dict[str, int]
    statuses: dict[int, int]
    versions: dict[str, int]
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        return sum(self.errors[kind] for kind in ("connect", "read", "write", "timeout"))

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors

    def __str__(self) -> str:
        return (f"{self.requests} requests in {self.seconds:.1f} s ({self.rate:.0f}/s), statuses {self.statuses}, "
                f"socket errors {self.errors}, versions {self.versions}, p99 {self.p99_ms:.1f} ms, "
                f"max {self.max_ms:.1f} ms")


class Wrk:
    """wrk against ``url`` for ``seconds``, counting with tests/wrk_status.lua; it stops by itself."""

    def __init__(self, url: str, seconds: int, connections: int = CONNECTIONS, delay_ms: int | None = None,
                 body: str | None = BODY):
        environment = {**os.environ, "BODY": body or "", "DELAY_MS": str(delay_ms or "")}
        self.seconds = seconds
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [tools.apt_install("wrk"), "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(SCRIPT), url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)

    def at(self, second: float) -> None:
        """Sleep until ``second`` seconds after wrk started."""
        time.sleep(max(0.0, self.started + second - time.monotonic()))

    def result(self) -> Load:
        out, err = self.process.communicate(timeout=self.seconds + 30)
        assert self.process.returncode == 0, f"wrk exited with {self.process.returncode}: {err}\n{out}"
        match = re.search(r"^RESULT (\{.*\})$", out, re.MULTILINE)
        assert match, f"no RESULT line from wrk:\n{out}\n{err}"
        data = json.loads(match.group(1))
        return Load(requests=data["requests"], seconds=data["duration_us"] / 1e6, errors=data["errors"],
                    statuses={int(code): count for code, count in data["statuses"].items()},
                    versions=data["versions"], p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def wrk(url: str, seconds: int, **options) -> Iterator[Wrk]:
    run = Wrk(url, seconds, **options)
    try:
        yield run
    finally:
        run.stop()


def answers_200(url: str) -> requests.Response:
    response = requests.post(f"{url}/predict", json=RECORD, timeout=10)
    assert response.status_code == 200, response.text
    return response


# ---- capacity ---------------------------------------------------------------------------------
@dataclass
class Capacity:
    server: Gunicorn
    requests_per_second: float


@pytest.fixture(scope="module")
def capacity(models_dir, tmp_path_factory) -> Iterator[Capacity]:
    """One server with 2 workers and its capacity: single-row POST /predict, 32 connections, 5 s."""
    log = tmp_path_factory.mktemp("capacity") / "server.log"
    with gunicorn(models_dir, log) as running:
        with wrk(f"{running.url}/predict", 5) as run:
            load = run.result()
        assert load.failures == 0, str(load)
        print(f"\ncapacity: {load}")
        yield Capacity(running, load.rate)


# ---- tests ------------------------------------------------------------------------------------
def test_half_capacity_load_for_30_seconds_has_no_errors(capacity):
    target = capacity.requests_per_second / 2
    # Each connection waits delay() between requests, so it makes one request per (delay + time
    # the request takes, client scheduling included). A 3 s probe measures that overhead on this
    # machine, now, and the delay of the 30 s run leaves it out.
    probe_delay_ms = max(1, round(1000 * CONNECTIONS / target))
    with wrk(f"{capacity.server.url}/predict", 3, delay_ms=probe_delay_ms) as run:
        probe = run.result()
    overhead_ms = max(0.0, 1000 * CONNECTIONS / probe.rate - probe_delay_ms)
    delay_ms = max(1, round(1000 * CONNECTIONS / target - overhead_ms))
    with wrk(f"{capacity.server.url}/predict", 30, delay_ms=delay_ms) as run:
        load = run.result()
    ratio = load.rate / capacity.requests_per_second
    print(f"\nhalf capacity (probe: {probe_delay_ms} ms delay, {probe.rate:.0f}/s; run: {delay_ms} ms delay): "
          f"{load}; {ratio:.2f}x of {capacity.requests_per_second:.0f}/s")
    assert probe.non_2xx == 0 and probe.socket_errors == 0, str(probe)
    assert load.non_2xx == 0 and load.socket_errors == 0, str(load)
    assert 0.3 <= ratio <= 0.7, f"paced at {load.rate:.0f}/s, {ratio:.2f}x capacity"


def test_killing_a_worker_loses_at_most_its_requests_in_flight(models_dir, tmp_path):
    with gunicorn(models_dir, tmp_path / "server.log") as running:
        before = running.wait_for_workers(lambda pids: len(pids) == 2)
        with wrk(f"{running.url}/predict", 15, connections=16) as run:
            run.at(4)
            victim = min(before)
            assert victim in running.workers()  # a child of our master, still alive
            os.kill(victim, signal.SIGKILL)
            load = run.result()
        print(f"\nworker {victim} killed at 4 s: {load}")
        after = running.wait_for_workers(lambda pids: len(pids) == 2 and victim not in pids)
        assert f"Worker (pid:{victim}) was sent SIGKILL" in running.text()
        assert running.text().count("Booting worker") == 3, running.tail()
        assert load.failures <= 2, str(load)
        for _ in range(10):
            answers_200(running.url)
        assert requests.get(f"{running.url}/health", timeout=5).status_code == 200
        assert running.workers() == after and len(after) == 2


def test_two_hup_reloads_lose_no_request_and_the_second_serves_the_new_version(models_dir, tmp_path):
    served = shutil.copytree(models_dir, tmp_path / "models")
    # Version 2 is trained beforehand beside a copy of version 1 (so it numbers itself 2), and
    # published into the served folder mid-load with one rename, as artifacts.save does.
    staging = shutil.copytree(models_dir / "pima-diabetes", tmp_path / "next" / "pima-diabetes")
    trained = train(TrainingOptions(data=ROOT / "data" / "training.csv", target="Outcome", name="pima-diabetes",
                                    test_data=ROOT / "data" / "test.csv", estimator="logreg",
                                    models_dir=staging.parent))
    assert trained.artifact.version == 2
    with gunicorn(served, tmp_path / "server.log") as running:
        first = running.wait_for_workers(lambda pids: len(pids) == 2)
        assert answers_200(running.url).headers["X-Model-Version"] == "pima-diabetes/1"
        with wrk(f"{running.url}/predict", 20) as run:
            run.at(4)
            running.process.send_signal(signal.SIGHUP)
            running.wait_for_log("reloaded: serving pima-diabetes/1", seconds=5.5)
            second = running.wait_for_workers(lambda pids: len(pids) == 2 and not pids & first, seconds=5)
            incoming = shutil.copytree(staging / "2", served / "pima-diabetes" / ".incoming-2")
            os.rename(incoming, served / "pima-diabetes" / "2")
            run.at(10)
            running.process.send_signal(signal.SIGHUP)
            running.wait_for_log("reloaded: serving pima-diabetes/2", seconds=9)
            third = running.wait_for_workers(lambda pids: len(pids) == 2 and not pids & (first | second), seconds=9)
            load = run.result()
        print(f"\nHUP at 4 s and 10 s: {load}; workers {sorted(first)} -> {sorted(second)} -> {sorted(third)}")
        assert load.non_2xx == 0 and load.socket_errors == 0, str(load)

        deadline = time.monotonic() + 15
        while answers_200(running.url).headers["X-Model-Version"] != "pima-diabetes/2":
            assert time.monotonic() < deadline, "still not serving pima-diabetes/2 15 s after the second HUP"
            time.sleep(0.2)
        assert {answers_200(running.url).headers["X-Model-Version"] for _ in range(20)} == {"pima-diabetes/2"}
        text = running.text()
        assert text.count("Hang up") == 2 and "reload refused" not in text, running.tail()
        assert "Traceback" not in text, running.tail(80)


def test_max_requests_recycling_loses_no_request(models_dir, tmp_path):
    with gunicorn(models_dir, tmp_path / "server.log", MAX_REQUESTS="100", MAX_REQUESTS_JITTER="20") as running:
        with wrk(f"{running.url}/predict", 10) as run:
            load = run.result()
        text = running.text()
        restarts = text.count("Autorestarting worker after current request.")
        print(f"\nMAX_REQUESTS=100 (+0..20): {load}; {restarts} autorestarts, "
              f"{text.count('Booting worker')} workers booted")
        assert load.non_2xx == 0 and load.socket_errors == 0, str(load)
        assert restarts >= 5, running.tail()
        assert "Traceback" not in text, running.tail(80)
        answers_200(running.url)


def test_overload_at_four_times_capacity_answers_only_200_429_503_and_health_stays_fast(
        models_dir, tmp_path, capacity):
    limit = max(1, int(capacity.requests_per_second) // 4)  # per worker: up to 2x this in all
    health: list[tuple[int | str, float]] = []
    stop = threading.Event()

    def poll(url: str) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                status: int | str = requests.get(f"{url}/health", timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            health.append((status, time.perf_counter() - started))
            stop.wait(0.25)

    with gunicorn(models_dir, tmp_path / "server.log", RATE_LIMIT=f"{limit}/second") as running:
        poller = threading.Thread(target=poll, args=(running.url,), daemon=True)
        try:
            with wrk(f"{running.url}/predict", 10, connections=4 * CONNECTIONS) as run:
                poller.start()
                load = run.result()
        finally:
            stop.set()
            if poller.is_alive():
                poller.join(timeout=10)
        slowest = max((seconds for _, seconds in health), default=0.0)
        accepted = load.statuses.get(200, 0) / load.seconds
        print(f"\noverload, RATE_LIMIT={limit}/second per worker: {load}; {accepted:.0f} accepted/s; "
              f"{len(health)} /health polls, slowest {slowest * 1000:.1f} ms")
        assert set(load.statuses) <= {200, 429, 503}, str(load)
        assert load.statuses.get(429, 0) > 0 and load.statuses.get(200, 0) > 0, str(load)
        assert load.socket_errors == 0, str(load)
        assert len(health) >= 20 and all(status == 200 for status, _ in health), health
        assert slowest < 1.0, f"slowest /health took {slowest:.3f} s"
        assert "Traceback" not in running.text(), running.tail(80)
