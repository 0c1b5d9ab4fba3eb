#!/usr/bin/env python3
"""The benchmark: the real service under gunicorn on 127.0.0.1, driven by wrk, in one run.

Absolute numbers drift on shared machines, so every figure is also given as a ratio to
GET /health measured in the same run. Writes bench/RESULTS.md (and prints it).

    make bench                      # or: .venv/bin/python bench/run.py --seconds 10
    .venv/bin/python bench/run.py --part explanations   # one part, printed only (or --part drift)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.config import DEFAULT_MODEL_NAME  # noqa: E402 - the project's root is on the path now
from bench import lifecycle, models, scoring  # noqa: E402

BIN = Path(sys.executable).parent
CACHE = ROOT / "build" / "bench-models"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    rows_per_request: int = 1

    @property
    def rows_per_second(self) -> float:
        return self.requests_per_second * self.rows_per_request


# ---- setup ------------------------------------------------------------------------------------
def ensure_tool(binary: str, package: str) -> str:
    """A Debian package's binary, installed when missing (wrk; Java for the spark engine)."""
    found = shutil.which(binary)
    if found:
        return found
    print(f"installing {package} (Debian package)...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], check=True, capture_output=True)
    return shutil.which(binary)


def ensure_models() -> Path:
    """Every model the benchmark serves, built once into build/bench-models (bench/models.py)."""
    return models.ensure(CACHE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn on a free loopback port; stopped by PID."""

    def __init__(self, target: str, workers: int, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
        environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "WORKERS": str(workers), **env}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--access-logfile", "/dev/null", target],
            cwd=ROOT, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.ready_seconds = self._wait("/ready" if target == "wsgi:app" else "/health")

    def _wait(self, path: str, seconds: float = 60) -> float:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as answer:
                    if answer.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"not ready after {seconds} s")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        stop_process(self.process)
        os.unlink(self.log.name)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- measuring --------------------------------------------------------------------------------
def stop_process(process: subprocess.Popen) -> None:
    """TERM a server we started (gunicorn stops gracefully), KILL it after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def duration_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_wrk(wrk: str, name: str, url: str, seconds: int, connections: int, body: Path | None = None,
            content_type: str = "application/json", rows: int = 1) -> Result:
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ)
    if body is not None:
        command += ["-s", str(ROOT / "bench" / "wrk_body.lua")]
        env.update(BODY_FILE=str(body), CONTENT_TYPE=content_type)
    output = subprocess.run(command + [url], capture_output=True, text=True, env=env, timeout=seconds + 60).stdout
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(map(int, match.groups()))
    return Result(
        name=name,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=duration_ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        p99_ms=duration_ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        errors=errors,
        rows_per_request=rows,
    )


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(models: Path, body: Path, workers: int) -> dict:
    """Total PSS of master + workers after every worker has served predictions."""
    with Server("wsgi:app", workers, MODELS_DIR=str(models)) as server:
        data = body.read_bytes()
        for _ in range(workers * 50):
            request = urllib.request.Request(server.url + "/predict", data=data, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=10).read()
        pids = [server.process.pid, *server.workers()]
        return {
            "workers": workers,
            "total_pss_mb": sum(pss_kb(p) for p in pids) / 1024,
            "worker_rss_mb": [rss_kb(p) / 1024 for p in server.workers()],
            "worker_pss_mb": [pss_kb(p) / 1024 for p in server.workers()],
            "ready_seconds": server.ready_seconds,
        }


DRIFT_ROUNDS = 6  # pairs of rounds, drift on and off back to back: the median of the pairs' ratios is the cost
DRIFT_ON, DRIFT_OFF = ("service SVM, drift counting on: POST /predict, 1 row",
                       "service SVM, drift counting off: POST /predict, 1 row")


@dataclass
class DriftCost:
    on: Result  # the median round of each
    off: Result
    ratios: list[float]  # requests/s on / off, per pair of rounds
    cpu_us: dict[str, float]  # the server's CPU time per request (master and workers), median round, on and off
    rows: int  # rows the counting server counted: it must have, or the cost is not measured

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_us[DRIFT_ON] / self.cpu_us[DRIFT_OFF]


def cpu_seconds(server: Server) -> float:
    """User and system time of the server's master and workers so far."""
    total = 0
    for pid in (server.process.pid, *server.workers()):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def drift_cost(wrk: str, models: Path, body: Path, seconds: int, connections: int) -> DriftCost:
    """Single-row POST /predict with drift counting on (DRIFT=true) and off, side by side: two
    servers over the same models, measured in pairs of rounds back to back (on then off, then off
    then on, ...). This machine's speed drifts by a third within a minute with other work, far more
    than the cost measured, so each pair's ratio is taken and the median of them reported; beside
    it, the CPU time the server spent per request, which other work on the machine moves far less."""
    rounds: dict[str, list[Result]] = {DRIFT_ON: [], DRIFT_OFF: []}
    cpu: dict[str, list[float]] = {DRIFT_ON: [], DRIFT_OFF: []}
    ratios = []
    each = max(3, seconds // 2)
    with Server("wsgi:app", 2, MODELS_DIR=str(models), DRIFT="true") as counting, \
            Server("wsgi:app", 2, MODELS_DIR=str(models), DRIFT="false") as not_counting:
        for pair in range(DRIFT_ROUNDS):
            order = [(DRIFT_ON, counting), (DRIFT_OFF, not_counting)]
            for name, server in order if pair % 2 == 0 else order[::-1]:
                before = cpu_seconds(server)
                found = run_wrk(wrk, name, server.url + "/predict", each, connections, body)
                cpu[name].append((cpu_seconds(server) - before) / (found.requests_per_second * each) * 1e6)
                rounds[name].append(found)
            ratios.append(rounds[DRIFT_ON][-1].requests_per_second / rounds[DRIFT_OFF][-1].requests_per_second)
        time.sleep(1.5)  # the workers fold what they hold every second
        default = json.load(urllib.request.urlopen(f"{counting.url}/models/{DEFAULT_MODEL_NAME}"))["default_version"]
        drift = json.load(urllib.request.urlopen(f"{counting.url}/models/{DEFAULT_MODEL_NAME}/{default}/drift"))
    on, off = (sorted(found, key=lambda r: r.requests_per_second)[len(found) // 2] for found in rounds.values())
    return DriftCost(on, off, ratios, {name: statistics.median(values) for name, values in cpu.items()},
                     int(drift.get("rows", 0)))


# ---- bodies -----------------------------------------------------------------------------------
def write_bodies(folder: Path) -> dict[str, Path]:
    test = pd.read_csv(ROOT / "data" / "test.csv").drop(columns="Outcome")
    records = test.to_dict(orient="records")
    many = (records * (10_000 // len(records) + 1))[:10_000]
    bodies = {"single": records[0], "batch100": records[:100], "batch10k": many}
    paths = {}
    for name, payload in bodies.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(payload))
    query = "&".join(f"{k}={v}" for k, v in records[0].items())
    paths["query"] = query
    for name, payload in (("passenger", models.PASSENGER), ("patient", models.PATIENT)):
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(payload))
    return paths


# ---- report -----------------------------------------------------------------------------------
def report(results: list[Result], memories: list[dict], seconds: int, connections: int,
           backends: dict[str, str], drift: DriftCost) -> str:
    healths = {label: next(r for r in results if r.name == f"service {label}: GET /health")
               for label in ("SVM", "RF", "others", "explained")}

    def health_for(result: Result) -> Result:
        """Each model's figures against /health of the same server, measured minutes apart at most."""
        for label in ("RF", "others", "explained"):
            if f" {label}:" in result.name:
                return healths[label]
        return healths["SVM"]

    def ratio(name: str) -> float:
        found = next(r for r in results if r.name == name)
        return found.requests_per_second / health_for(found).requests_per_second

    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"gunicorn with 2 sync workers on 127.0.0.1, wrk with 2 threads, {connections} connections, "
        f"{seconds} s per line, all in one run. Ratios are to `GET /health` of the same model's server in the "
        "same run (for the baselines: of the service with the same model).",
        "",
        "| scenario | requests/s | x /health | rows/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r.name} | {r.requests_per_second:,.0f} | {r.requests_per_second / health_for(r).requests_per_second:.2f} | "
                     f"{r.rows_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |")
    by_name = {r.name: r for r in results}
    svm = by_name["service SVM: POST /predict, 1 row"]
    rf = by_name["service RF: POST /predict, 1 row"]
    base_svm = by_name["tutorial baseline SVM: POST /predict, 1 row"]
    base_rf = by_name["tutorial baseline RF: POST /predict, 1 row"]
    big = by_name["service SVM: POST /predict, 10,000 rows"]
    one, three = memories
    per_worker = (three["total_pss_mb"] - one["total_pss_mb"]) / 2
    lines += [
        "",
        "## Against the targets",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        _target("single-row POST /predict, SVM, >= 0.8x /health", f"{svm.requests_per_second / healths['SVM'].requests_per_second:.2f}x",
                svm.requests_per_second >= 0.8 * healths["SVM"].requests_per_second),
        _target("single-row POST /predict, RF, >= 0.8x /health", f"{rf.requests_per_second / healths['RF'].requests_per_second:.2f}x",
                rf.requests_per_second >= 0.8 * healths["RF"].requests_per_second),
        *[_target(f"single-row POST /predict, {what}, >= {floor}x /health", f"{ratio(name):.2f}x", ratio(name) >= floor)
          for what, name, floor in OTHER_TARGETS + EXPLAINED_TARGETS],
        _target("single-row p99 < 20 ms (SVM, RF)", f"{svm.p99_ms:.1f} ms, {rf.p99_ms:.1f} ms", svm.p99_ms < 20 and rf.p99_ms < 20),
        _target("10,000-row batch >= 200,000 rows/s", f"{big.rows_per_second:,.0f} rows/s", big.rows_per_second >= 200_000),
        _target(">= 3x the tutorial baseline (SVM; RF)",
                f"{svm.requests_per_second / base_svm.requests_per_second:.1f}x; {rf.requests_per_second / base_rf.requests_per_second:.1f}x",
                svm.requests_per_second >= 3 * base_svm.requests_per_second and rf.requests_per_second >= 3 * base_rf.requests_per_second),
        _target("each extra worker <= 30 MB PSS", f"{per_worker:.1f} MB (1 worker: {one['total_pss_mb']:.0f} MB in all, "
                f"3 workers: {three['total_pss_mb']:.0f} MB)", per_worker <= 30),
        _target("ready in < 3 s", f"{one['ready_seconds']:.2f} s (1 worker), {three['ready_seconds']:.2f} s (3 workers)",
                max(one["ready_seconds"], three["ready_seconds"]) < 3),
        *_drift_targets(drift),
        "",
        f"Worker RSS with 3 workers: {', '.join(f'{m:.0f}' for m in three['worker_rss_mb'])} MB; "
        f"PSS: {', '.join(f'{m:.0f}' for m in three['worker_pss_mb'])} MB (the models load in the master before fork).",
        "",
        "Backends of the other models (from `/models/<name>`): "
        + "; ".join(f"{name}: {backend}" for name, backend in backends.items()) + ".",
        "",
        "Errors count non-2xx responses and socket errors. Reproduce with `make bench` "
        "(`BENCH_SECONDS` sets the seconds per line).",
    ]
    return "\n".join(lines) + "\n"


OTHER_TARGETS = [  # (what, the result's name, the floor as a multiple of /health)
    ("HistGradientBoosting classifier (default model)", "service others: POST /predict, 1 row, HGB classifier (default)", 0.8),
    ("HistGradientBoosting classifier (?model=)", "service others: POST /predict?model=, 1 row, HGB classifier", 0.8),
    ("HistGradientBoosting regressor (?model=)", "service others: POST /predict?model=, 1 row, HGB regressor", 0.8),
    ("imported ColumnTransformer Pipeline, categories and gaps (?model=)",
     "service others: POST /predict?model=, 1 row, imported ColumnTransformer", 0.8),
    ("imported Pipeline with a step the compiled backend does not know (?model=)",
     "service others: POST /predict?model=, 1 row, imported with QuantileTransformer", 0.3),
]


def _drift_targets(cost: DriftCost) -> list[str]:
    """Drift counting's cost: single-row POST /predict with it on against off, same run and model:
    in requests/s, and in the server's CPU time per request."""
    return [
        _target("drift counting costs single-row POST /predict <= 5% in requests/s (on / off, SVM, median of "
                f"{DRIFT_ROUNDS} back-to-back pairs of rounds)",
                f"{cost.ratio:.3f}x, a cost of {(1 - cost.ratio) * 100:.1f}% (pairs: "
                f"{', '.join(f'{r:.2f}' for r in cost.ratios)}; median rounds {cost.on.requests_per_second:,.0f} "
                f"against {cost.off.requests_per_second:,.0f} requests/s; {cost.rows:,} rows counted in the window)",
                cost.ratio >= 0.95 and cost.rows > 0),
        _target("drift counting costs single-row POST /predict <= 5% in the server's CPU time per request",
                f"{cost.cpu_us[DRIFT_ON]:.0f} us against {cost.cpu_us[DRIFT_OFF]:.0f} us "
                f"(master and workers, median rounds): {(cost.cpu_ratio - 1) * 100:+.1f}%",
                cost.cpu_ratio <= 1.05 and cost.rows > 0),
    ]


EXPLAINED = [  # (label, the model, the body): single-row POST /predict?explain=true
    ("logistic regression (linear)", models.LOGREG, "single"),
    ("random forest (tree-shap)", models.RF, "single"),
    ("HistGradientBoosting classifier (tree-shap)", models.HGB_CLASSIFIER, "single"),
    ("default SVM (approximation, no target)", DEFAULT_MODEL_NAME, "single"),
]
EXPLAINED_TARGETS = [(f"explained, {label}", f"service explained: POST /predict?explain=true, 1 row, {label}", 0.3)
                     for label, _, _ in EXPLAINED if "no target" not in label]


def explained(wrk: str, served: Path, bodies: dict, seconds: int, connections: int) -> list[Result]:
    """Single-row predictions with explanations, beside /health of the same server."""
    results = []
    with Server("wsgi:app", 2, MODELS_DIR=str(served)) as server:
        results.append(run_wrk(wrk, "service explained: GET /health", server.url + "/health", seconds, connections))
        for label, model, body in EXPLAINED:
            results.append(run_wrk(wrk, f"service explained: POST /predict?explain=true, 1 row, {label}",
                                   f"{server.url}/predict?model={model}&explain=true", seconds, connections,
                                   bodies[body]))
    return results


def explained_report(results: list[Result]) -> str:
    """``--part explanations``: the part's lines and targets alone."""
    health = results[0].requests_per_second
    lines = ["| scenario | requests/s | x /health | p50 ms | p99 ms | errors |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r.name} | {r.requests_per_second:,.0f} | {r.requests_per_second / health:.2f} | {r.p50_ms:.2f} | "
              f"{r.p99_ms:.2f} | {r.errors} |" for r in results]
    ratios = {r.name: r.requests_per_second / health for r in results}
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    lines += [_target(f"single-row POST /predict, {what}, >= {floor}x /health", f"{ratios[name]:.2f}x",
                      ratios[name] >= floor) for what, name, floor in EXPLAINED_TARGETS]
    return "\n".join(lines) + "\n"


def _target(name: str, measured: str, met: bool) -> str:
    return f"| {name} | {measured} | {'yes' if met else '**no**'} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--part", choices=["explanations", "drift"],
                        help="measure one part only and print it (nothing written)")
    arguments = parser.parse_args()
    wrk = ensure_tool("wrk", "wrk")
    if arguments.part == "explanations":
        with tempfile.TemporaryDirectory() as folder:
            results = explained(wrk, ensure_models(), write_bodies(Path(folder)), arguments.seconds,
                                arguments.connections)
        print(explained_report(results))
        return 0
    if arguments.part == "drift":
        with tempfile.TemporaryDirectory() as folder:
            cost = drift_cost(wrk, ensure_models(), write_bodies(Path(folder))["single"], arguments.seconds,
                              arguments.connections)
        print("\n".join([*(f"| {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
                            for r in (cost.on, cost.off)), *_drift_targets(cost)]))
        return 0
    ensure_tool("java", "openjdk-17-jre-headless")
    served = ensure_models()
    seconds, connections = arguments.seconds, arguments.connections
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        bodies = write_bodies(Path(folder))
        for label, model in (("SVM", DEFAULT_MODEL_NAME), ("RF", "pima-rf")):
            with Server("wsgi:app", 2, MODELS_DIR=str(served), DEFAULT_MODEL=model) as server:
                results.append(run_wrk(wrk, f"service {label}: GET /health", server.url + "/health", seconds, connections))
                results.append(run_wrk(wrk, f"service {label}: POST /predict, 1 row", server.url + "/predict",
                                       seconds, connections, bodies["single"]))
                results.append(run_wrk(wrk, f"service {label}: GET /predict?query", f"{server.url}/predict?{bodies['query']}",
                                       seconds, connections))
                results.append(run_wrk(wrk, f"service {label}: POST /predict, 100 rows", server.url + "/predict",
                                       seconds, connections, bodies["batch100"], rows=100))
                results.append(run_wrk(wrk, f"service {label}: POST /predict, 10,000 rows", server.url + "/predict",
                                       seconds, 4, bodies["batch10k"], rows=10_000))
            if label == "SVM":
                drift = drift_cost(wrk, served, bodies["single"], seconds, connections)
                results += [drift.on, drift.off]
            model_file = next((served / model).glob("*/model.skops"))
            with Server("bench.baseline_app:app", 2, MODEL_FILE=str(model_file)) as baseline:
                results.append(run_wrk(wrk, f"tutorial baseline {label}: POST /predict, 1 row", baseline.url + "/predict",
                                       seconds, connections, bodies["single"]))
        with Server("wsgi:app", 2, MODELS_DIR=str(served), DEFAULT_MODEL=models.HGB_CLASSIFIER) as server:
            def predict(label: str, query: str, body: str, rows: int = 1, at_once: int = connections) -> None:
                results.append(run_wrk(wrk, f"service others: POST /predict{'?model=' if query else ''}, {label}",
                                       f"{server.url}/predict{'?model=' + query if query else ''}", seconds, at_once,
                                       bodies[body], rows=rows))
            results.append(run_wrk(wrk, "service others: GET /health", server.url + "/health", seconds, connections))
            predict("1 row, HGB classifier (default)", "", "single")
            predict("1 row, HGB classifier", models.HGB_CLASSIFIER, "single")
            predict("1 row, HGB regressor", models.HGB_REGRESSOR, "patient")
            predict("1 row, imported ColumnTransformer", models.IMPORTED, "passenger")
            predict("1 row, imported with QuantileTransformer", models.IMPORTED_UNKNOWN_STEP, "passenger")
            predict("10,000 rows, HGB classifier", "", "batch10k", rows=10_000, at_once=4)
            backends = {name: json.load(urllib.request.urlopen(f"{server.url}/models/{name}"))["backend"]
                        for name in (models.HGB_CLASSIFIER, models.HGB_REGRESSOR, models.IMPORTED,
                                     models.IMPORTED_UNKNOWN_STEP)}
        results += explained(wrk, served, bodies, seconds, connections)
        memories = [memory(served, bodies["single"], workers) for workers in (1, 3)]
        batch = scoring.measure(served, Path(folder), DEFAULT_MODEL_NAME)
        promotions = lifecycle.measure(served)
    text = report(results, memories, seconds, connections, backends, drift)
    text += "\n".join(scoring.report(batch, _target)) + "\n"
    text += "\n".join(lifecycle.report(promotions, _target)) + "\n"
    arguments.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
