#!/usr/bin/env python3
"""Model lifecycle under load in `make bench`: how fast a promotion reaches every worker, and other replicas.

1. One gunicorn (2 workers) over a private copy of the default model with two versions. Client
   threads post single-row /predict continuously (keep-alive sessions, every answer's time and
   X-Model-Version recorded); promotions through the admin API alternate 1 -> 2 -> 1 ... For each:
   the time from sending the promote request to the first answer from the new version and to the
   last answer from the old one (then every worker serves the new default), and the requests
   dropped (any non-200 answer or connection error; none is retried).
2. Two gunicorns over the same models folder, both with MODELS_POLL_INTERVAL: promote on A while
   the load is on B; the time until B answers only with the new version, and B's drops.

The servers' log lines are timestamped as they arrive, so the time is split into its steps (the
master's HUP, the models reloaded, the new workers booted, the old ones gone).

    .venv/bin/python bench/lifecycle.py     # this part alone: replaces its section of bench/RESULTS.md
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.config import DEFAULT_MODEL_NAME  # noqa: E402 - the project's root is on the path now
from app.model import artifacts  # noqa: E402

BIN = Path(sys.executable).parent
ADMIN_KEY = "bench-lifecycle-admin-key-0123456789"
CLIENTS = 4  # client threads: two per worker keep both workers busy on 2 cores
POLL_INTERVAL = 1  # seconds, MODELS_POLL_INTERVAL of both replicas in part 2
ROUNDS_ONE_SERVER = 6
ROUNDS_REPLICAS = 4
SETTLE = 1.5  # seconds with only the new version's answers before a round ends
ROUND_LIMIT = 10.0  # seconds: a round ends then whatever happened
TARGET_SECONDS = 2.0
HEADING = "## Model lifecycle under load"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn on a free loopback port, its output read line by line and timestamped; stopped by PID."""

    def __init__(self, models_dir: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {key: value for key, value in os.environ.items() if key not in ("PROMETHEUS_MULTIPROC_DIR", "PIDFILE")}
        environment.update(HOST="127.0.0.1", PORT=str(self.port), WORKERS="2", MODELS_DIR=str(models_dir),
                           ADMIN_API_KEYS=ADMIN_KEY, LOG_LEVEL="info", LOG_FORMAT="text", **env)
        environment.pop("API_KEYS", None)
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._wait_ready()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip()))

    def _wait_ready(self, seconds: float = 60) -> None:
        """Ready, and both workers booted (a TERM in a worker's first instants would be lost)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log_text()[-3000:])
            try:
                ready = requests.get(self.url + "/ready", timeout=1).status_code == 200
            except requests.RequestException:
                ready = False
            if ready and sum("Booting worker" in line for _, line in self.lines) >= 2:
                time.sleep(0.2)
                return
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn not ready after {seconds} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first_line(self, pattern: str, after: float) -> float | None:
        """When the first log line matching ``pattern`` arrived after ``after`` (monotonic), or None."""
        return next((at for at, line in list(self.lines) if at >= after and re.search(pattern, line)), None)

    def last_line(self, pattern: str, after: float, before: float) -> float | None:
        found = [at for at, line in list(self.lines) if after <= at <= before and re.search(pattern, line)]
        return max(found) if found else None

    def stop(self) -> None:
        from bench.run import stop_process

        stop_process(self.process)
        self.reader.join(timeout=5)


class Load:
    """Client threads posting one row to /predict without pause; every answer recorded as
    (monotonic time received, served version or None, ok, seconds it took)."""

    def __init__(self, url: str, body: dict, threads: int = CLIENTS):
        self.url, self.body = url + "/predict", json.dumps(body)
        self.answers: list[tuple[float, int | None, bool, float]] = []
        self.failures: list[str] = []
        self.running = True
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"}
        while self.running:
            sent = time.monotonic()
            try:
                answer = session.post(self.url, data=self.body, headers=headers, timeout=10)
                tag = answer.headers.get("X-Model-Version", "")
                version = int(tag.rsplit("/", 1)[1]) if "/" in tag else None
                ok = answer.status_code == 200
                if not ok:
                    self.failures.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
            except requests.RequestException as exc:
                version, ok = None, False
                self.failures.append(f"{type(exc).__name__}: {exc}"[:300])
                session = requests.Session()
            received = time.monotonic()
            self.answers.append((received, version, ok, received - sent))

    def since(self, start: float, until: float = float("inf")) -> list[tuple[float, int | None, bool, float]]:
        return [a for a in list(self.answers) if start <= a[0] <= until]

    def stop(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=15)


def promote(url: str, version: int) -> None:
    answer = requests.post(f"{url}/models/{DEFAULT_MODEL_NAME}/promote", json={"version": version},
                           headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert answer.status_code == 200, f"promote {version}: HTTP {answer.status_code} {answer.text[:500]}"


def alternate(admin_url: str, load: Load, current: int, rounds: int, watched: Server) -> tuple[list[dict], int]:
    """``rounds`` promotions through ``admin_url``, alternating between versions 1 and 2, starting
    from ``current``; each round watched on ``watched``. Returns them and the version served last."""
    done = []
    for _ in range(rounds):
        new = 2 if current == 1 else 1
        done.append(one_round(admin_url, load, current, new, watched))
        current = new
    return done, current


def one_round(admin_url: str, load: Load, old: int, new: int, watched: Server) -> dict:
    """Promote ``new`` through ``admin_url``; follow ``load``'s answers until only ``new`` answers
    for SETTLE seconds. Times are seconds from sending the promote request."""
    start = time.monotonic()
    promote(admin_url, new)
    acknowledged = time.monotonic() - start
    while True:
        time.sleep(0.05)
        now = time.monotonic()
        answers = load.since(start)
        first_new = min((at for at, version, *_ in answers if version == new), default=None)
        last_old = max((at for at, version, *_ in answers if version == old), default=None)
        if first_new is not None and now - max(first_new, last_old or 0) >= SETTLE:
            break
        if now - start >= ROUND_LIMIT:
            break
    answers = load.since(start, now)
    served_old = [at for at, version, *_ in answers if version == old]
    served_new = [at for at, version, *_ in answers if version == new]
    times = [start] + sorted(at for at, *_ in answers)
    # where the time goes, from the watched server's log (lines timestamped on arrival here)
    steps = {
        "noticed": watched.first_line(r"changed: reloading the models", start),
        "hup": watched.first_line(r"Handling signal: hup", start),
        "reloaded": watched.first_line(r"reloaded: serving", start),
        "booted": watched.last_line(r"Booting worker", start, now),
        "old_gone": watched.last_line(r"Worker exiting", start, now),
    }
    return {
        "from": old, "to": new, "acknowledged": acknowledged,
        "first_new": (min(served_new) - start) if served_new else None,
        "last_old": (max(served_old) - start) if served_old else 0.0,
        "all_new": bool(served_new) and (not served_old or max(served_old) < max(served_new)),
        "answers": len(answers), "dropped": sum(not ok for _, _, ok, _ in answers),
        "slowest": max((took for *_, took in answers), default=0.0),
        "pause": max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0,
        "steps": {key: (at - start if at is not None else None) for key, at in steps.items()},
    }


def steady_figures(answers: list) -> dict:
    """Before any promotion: answers/s, p99 and the longest answer, to compare the rounds with."""
    answers = answers[len(answers) // 5:]  # the first ones include the sessions' connecting
    took = sorted(a[3] for a in answers)
    span = answers[-1][0] - answers[0][0] if len(answers) > 1 else 0.0
    return {"steady_per_second": len(answers) / span if span else 0.0,
            "steady_p99": took[int(0.99 * (len(took) - 1))] if took else 0.0, "steady_slowest": took[-1] if took else 0.0}


def models_copy(source: Path, folder: Path) -> Path:
    """The default model's version 1 from ``source`` and a copy of it as version 2 (a promotion
    only needs another version; its metadata says 2, so the answers tell the two apart)."""
    target = folder / "models" / DEFAULT_MODEL_NAME
    versions = sorted(int(p.name) for p in (source / DEFAULT_MODEL_NAME).iterdir() if p.name.isdigit())
    shutil.copytree(source / DEFAULT_MODEL_NAME / str(versions[0]), target / "1")
    shutil.copytree(target / "1", target / "2")
    for version in (1, 2):
        meta_path = target / str(version) / "metadata.json"
        metadata = json.loads(meta_path.read_text())
        metadata["version"] = version
        meta_path.write_text(json.dumps(metadata, indent=2))
    artifacts.write_pin(folder / "models", DEFAULT_MODEL_NAME, 1)
    return folder / "models"


def single_row() -> dict:
    import pandas as pd

    return pd.read_csv(ROOT / "data" / "test.csv").drop(columns="Outcome").iloc[0].to_dict()


def measure(source_models: Path) -> dict:
    """Both parts, in about a minute; every process started here is stopped by PID."""
    body = single_row()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as folder:
        models = models_copy(source_models, Path(folder))
        results: dict = {"clients": CLIENTS, "interval": POLL_INTERVAL}

        server = Server(models)
        try:
            load = Load(server.url, body)
            try:
                time.sleep(1.0)  # warm: both workers answering
                warm = load.since(0)
                warm_dropped = sum(not ok for _, _, ok, _ in warm)
                steady = steady_figures(warm)
                rounds, current = alternate(server.url, load, 1, ROUNDS_ONE_SERVER, server)
            finally:
                load.stop()
            results["one_server"] = rounds
            results["one_server_total"] = {"answers": len(load.answers), "dropped": sum(not ok for _, _, ok, _ in load.answers),
                                           "warm_dropped": warm_dropped, "failures": load.failures[:5], **steady}
        finally:
            server.stop()

        # part 2: what is pinned now is where part 1 ended
        servers: list[Server] = []
        try:
            for _ in range(2):
                servers.append(Server(models, MODELS_POLL_INTERVAL=str(POLL_INTERVAL)))
            a, b = servers
            load = Load(b.url, body)
            try:
                time.sleep(1.0)
                steady = steady_figures(load.since(0))
                rounds, current = alternate(a.url, load, current, ROUNDS_REPLICAS, b)
            finally:
                load.stop()
            results["replicas"] = rounds
            results["replicas_total"] = {"answers": len(load.answers), "dropped": sum(not ok for _, _, ok, _ in load.answers),
                                         "failures": load.failures[:5], **steady}
        finally:
            for server in servers:
                server.stop()
    results["seconds"] = time.monotonic() - started
    return results


# ---- report -------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _stats(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known or len(known) < len(values):
        return (statistics.median(known) if known else None), None  # a round without it: no max to claim
    return statistics.median(known), max(known)


def _default_target(name: str, measured: str, met: bool) -> str:
    return f"| {name} | {measured} | {'yes' if met else '**no**'} |"


def report(measured: dict, target=_default_target) -> list[str]:
    one, two = measured["one_server"], measured["replicas"]
    interval = measured["interval"]
    lines = [
        "",
        HEADING,
        "",
        f"gunicorn with 2 sync workers; {measured['clients']} Python client threads post single-row "
        "/predict without pause (keep-alive sessions) while promotions through `POST /models/<name>/promote` "
        "alternate between two versions of the default model. Seconds from sending the promote request; "
        "dropped = non-200 answers and connection errors (none retried). All rounds in one run; the "
        f"whole part took {measured['seconds']:.0f} s.",
        "",
        "| scenario | rounds | first new answer, median / max s | last old answer, median / max s | "
        "promote answered, median s | slowest answer, max s | longest pause in answers, max s | answers | dropped |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, rounds in (("one server, promote under load", one),
                          (f"replica B (MODELS_POLL_INTERVAL={interval} s), promote on A, load on B", two)):
        first = _stats([r["first_new"] for r in rounds])
        last = _stats([r["last_old"] for r in rounds])
        ack = statistics.median(r["acknowledged"] for r in rounds)
        lines.append(f"| {label} | {len(rounds)} | {_fmt(first[0])} / {_fmt(first[1])} | {_fmt(last[0])} / "
                     f"{_fmt(last[1])} | {ack:.2f} | {max(r['slowest'] for r in rounds):.2f} | "
                     f"{max(r['pause'] for r in rounds):.2f} | {sum(r['answers'] for r in rounds):,} | "
                     f"{sum(r['dropped'] for r in rounds)} |")

    def step_medians(rounds: list[dict]) -> str:
        names = {"noticed": "poller noticed", "hup": "master handles HUP", "reloaded": "models reloaded",
                 "booted": "last new worker booted", "old_gone": "last old worker exited"}
        parts = []
        for key, words in names.items():
            values = [r["steps"][key] for r in rounds if r["steps"][key] is not None]
            if values:
                parts.append(f"{words} {statistics.median(values):.2f} s")
        return ", ".join(parts)

    one_last = [r["last_old"] for r in one]
    reload_max = max(one_last)
    # the replica's clock starts when the change is on disk: at the latest when A answered the promote
    noticed = [r["steps"]["noticed"] - r["acknowledged"] if r["steps"]["noticed"] is not None else float("inf")
               for r in two]
    b_reload = [r["last_old"] - r["steps"]["noticed"] if r["steps"]["noticed"] is not None else float("inf")
                for r in two]
    b_done = [r["last_old"] - r["acknowledged"] for r in two]
    bound = interval + reload_max
    one_dropped = measured["one_server_total"]["dropped"]
    two_dropped = measured["replicas_total"]["dropped"]
    all_new = all(r["all_new"] for r in one + two)
    steady = ", ".join(f"{label}: {total['steady_per_second']:,.0f} answers/s, p99 {total['steady_p99'] * 1e3:.1f} ms, "
                       f"slowest {total['steady_slowest'] * 1e3:.0f} ms"
                       for label, total in (("one server", measured["one_server_total"]),
                                            ("replica B", measured["replicas_total"])))
    lines += [
        "",
        f"Before any promotion (the same clients, for comparison) {steady}. A round lasts until {SETTLE} s of "
        "answers from the new version only; the slowest answer and the longest pause between two answers "
        "(any client) are over the rounds.",
        "",
        f"Steps, medians from the promote request (server logs, timestamped on arrival): one server: "
        f"{step_medians(one)}; replica B: {step_medians(two)}. On B, from A's answer to the promote (the pin "
        f"is written by then): change noticed after {statistics.median(noticed):.2f} s median, "
        f"{max(noticed):.2f} s max; B's own reload (noticed to its last old answer) {statistics.median(b_reload):.2f} s "
        f"median, {max(b_reload):.2f} s max (A reloads on the same 2 cores at the same time).",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        target(f"every worker serves the new default within {TARGET_SECONDS:.0f} s (one server)",
               f"last old answer {reload_max:.2f} s at most (median {statistics.median(one_last):.2f} s)",
               reload_max <= TARGET_SECONDS and all_new),
        target("no dropped request during promotions (one server)", f"{one_dropped} of "
               f"{measured['one_server_total']['answers']:,}", one_dropped == 0),
        target(f"a replica notices the change by itself within the interval ({interval} s, + 0.1 s for the look "
               "and the log line)", f"{max(noticed):.2f} s at most (median {statistics.median(noticed):.2f} s)",
               max(noticed) <= interval + 0.1),
        target(f"the replica serves only the new version within interval + reload time ({interval} s + "
               f"{reload_max:.2f} s, the one-server max = {bound:.2f} s, from A's answer)",
               f"{max(b_done):.2f} s at most (median {statistics.median(b_done):.2f} s; from the promote request: "
               f"{max(r['last_old'] for r in two):.2f} s at most)", max(b_done) <= bound),
        target("no dropped request on the replica", f"{two_dropped} of {measured['replicas_total']['answers']:,}",
               two_dropped == 0),
        "",
        "Noisy machine (2 cores shared with other work, here also with the client threads and, in the replica "
        "rounds, with A's own reload): every figure is from one run.",
    ]
    return lines


def write_section(lines: list[str], path: Path) -> None:
    """Replace this part's section of RESULTS.md (up to the next `## ` heading), or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = "\n".join(lines).strip("\n") + "\n"
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        rest = text[end + 1:] if end >= 0 else ""
        text = text[:start] + section + ("\n" + rest if rest else "")
    path.write_text(text)


def main() -> int:
    from bench import models

    source = models.ensure(ROOT / "build" / "bench-models")
    measured = measure(source)
    lines = report(measured)
    print(json.dumps(measured, indent=1, default=str), file=sys.stderr)  # every round, for a closer look
    write_section(lines, ROOT / "bench" / "RESULTS.md")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
