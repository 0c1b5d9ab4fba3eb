"""Integration: replicas on one host (deploy/compose/replicas.yml), brought up with docker-compose.

Two replicas of the service image behind HAProxy, with Redis for the rate limits, published on
127.0.0.1 only, under a project name of their own that the module takes down (`down -v`) at the end.
Under load from a few threads, one replica is killed, and another is made alive-but-unready, and
the balancer's answers (the X-Replica header names the replica) and its status page show what it
did; a low rate limit shows that the replicas count in one shared budget.

The replicas run the service image (tests/docker_engine.py: built FROM the local Debian base with
wheels made outside the build), which has the Redis client itself; HAProxy and Redis are built here
from Debian's packages on the same base. With the images cached the module takes about 30 s on two
cores; building the HAProxy and Redis images adds a few seconds. The numbers measured here are
written to build/test-artifacts/compose-replicas.json.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest
import requests
import yaml

from tests.docker_engine import ROOT, Docker, base_image, docker, hadolint, image, wheels  # noqa: F401 - fixtures
from tests.records import RECORD
from tests.server import free_port
from tests.tools import apt_install

pytestmark = [pytest.mark.integration, pytest.mark.compose]

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "replicas.yml"
ARTIFACTS = ROOT / "build" / "test-artifacts" / "compose-replicas.json"
REPLICAS = ("replica-1", "replica-2")
MODEL = "pima-diabetes"
THREADS = 8  # load: this many clients, each on one kept-alive connection to the balancer
CHECK_INTERVAL = 1.0  # haproxy.cfg: inter 1s, fall 2, rise 2
MEASURED: dict[str, object] = {}

# Run inside a replica: its own /health and /ready, as seen from the container itself.
PROBE = """
import json, urllib.error, urllib.request
seen = {}
for path in ("health", "ready"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/" + path, timeout=2) as answer:
            seen[path] = [answer.status, answer.read().decode()]
    except urllib.error.HTTPError as error:
        seen[path] = [error.code, error.read().decode()]
    except OSError as error:
        seen[path] = [None, str(error)]
print(json.dumps(seen))
"""


@dataclass
class Answer:
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    replica: str | None
    error: str | None = None


class Load:
    """THREADS clients sending predictions through the balancer until the block ends."""

    def __init__(self, url: str, threads: int = THREADS):
        self.url = url
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]

    def _client(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = session.post(f"{self.url}/predict", json=RECORD, timeout=10)
                    answer = Answer(started, time.monotonic(), response.status_code, response.headers.get("X-Replica"))
                except requests.RequestException as exc:
                    answer = Answer(started, time.monotonic(), None, None, f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.answers.append(answer)

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in self._threads), "a load thread did not stop"


class Stack:
    """One docker-compose project of replicas.yml, addressed by its unique name."""

    def __init__(self, docker: Docker, command: list[str], settings: dict[str, str]):
        self.docker = docker
        self.command = command
        self.project = f"sklearn-serve-replicas-{uuid.uuid4().hex[:8]}"
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings['BALANCER_PORT']}"
        self.stats_url = f"http://127.0.0.1:{settings['STATS_PORT']}/;csv"

    def compose(self, *args: str, timeout: float = 180, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.command, "-p", self.project, "-f", str(COMPOSE_FILE), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.settings, **env})
        if check:
            assert done.returncode == 0, (f"docker-compose {' '.join(args)} exited with {done.returncode}:\n"
                                          f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def up(self, rate_limit: str = "") -> None:
        """Every service running with these settings (containers whose settings changed are
        recreated, stopped ones started), and both replicas in service at the balancer."""
        self.compose("up", "-d", "--no-build", RATE_LIMIT=rate_limit)
        self.wait_for(REPLICAS, "UP", seconds=90)

    def container(self, service: str) -> str:
        found = self.compose("ps", "-q", service).stdout.split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def servers(self) -> dict[str, dict[str, str]]:
        """HAProxy's view of the replicas: status (UP, DOWN, ...), check_status, check_code, ..."""
        text = requests.get(self.stats_url, timeout=5).text.lstrip("# ")
        return {row["svname"]: row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] == "replicas"}

    def wait_for(self, names: tuple[str, ...], status: str, seconds: float) -> float:
        """Until the balancer reports every one of ``names`` with ``status``; when that was."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                servers = self.servers()
                if all(servers[name]["status"] == status for name in names):
                    return time.monotonic()
            except requests.RequestException:
                servers = {}
            if time.monotonic() > deadline:
                pytest.fail(f"{', '.join(names)} not {status} after {seconds} s: "
                            f"{ {n: (s['status'], s['check_status'], s['check_code']) for n, s in servers.items()} }\n"
                            f"{self.logs()}")
            time.sleep(0.1)

    def probe(self, container: str) -> dict[str, list]:
        return json.loads(self.docker("exec", container, "python3", "-c", PROBE).stdout)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-6000:]


@pytest.fixture(scope="module")
def compose(docker) -> list[str]:
    """docker-compose (Debian's 1.29), or the docker compose plugin, or else Debian's package installed."""
    found = shutil.which("docker-compose")
    if found:
        return [found]
    if docker("compose", "version", check=False).returncode == 0:
        return [docker.binary, "compose"]
    return [apt_install("docker-compose")]


@pytest.fixture(scope="module")
def stack(docker, compose, base_image, image) -> Iterator[Stack]:
    settings = {
        "SERVICE_IMAGE": image, "BASE_IMAGE": base_image, "IMAGE_TAG": "test",
        "BALANCER_PORT": str(free_port()), "STATS_PORT": str(free_port()),
    }
    project = Stack(docker, compose, settings)
    tags = [f"sklearn-serve-{name}:test" for name in ("haproxy", "redis")]  # the replicas' image is `image`
    try:
        previous = {tag: docker.image_id(tag) for tag in tags}
        started = time.monotonic()
        project.compose("build", "--force-rm", timeout=900)
        built = time.monotonic()
        for tag, old in previous.items():
            if old not in (None, docker.image_id(tag)):
                # The image this tag named before, kept if a container still uses it.
                docker("image", "rm", old, check=False)
        project.up()
        MEASURED["setup_s"] = {"build": round(built - started, 1), "up_until_both_in_service": round(
            time.monotonic() - built, 1)}
        yield project
    finally:
        project.compose("down", "-v", "--remove-orphans", "--timeout", "10", timeout=120, check=False)
        ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.write_text(json.dumps(MEASURED, indent=2) + "\n")


def test_the_compose_files_build_and_publish_as_documented():
    """Without an engine: the Dockerfiles pass hadolint, the replicas run the service image as it
    is (nothing built for them), and every port replicas.yml publishes is on 127.0.0.1."""
    for dockerfile in sorted(COMPOSE_DIR.glob("*.Dockerfile")):
        done = subprocess.run([hadolint(), "--no-color", dockerfile.name], cwd=COMPOSE_DIR, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
        assert done.returncode == 0, f"hadolint found problems in {dockerfile.name}:\n{done.stdout}{done.stderr}"

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    # The Redis client comes with requirements.txt (tests/test_kubernetes.py checks the pin).
    assert all(services[r]["image"] == "${SERVICE_IMAGE:-sklearn-serve:latest}" and "build" not in services[r]
               for r in REPLICAS)
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published == {"replica-1": [], "replica-2": [], "redis": [], "worker": [],
                         "balancer": ["127.0.0.1:${BALANCER_PORT:-8000}:8000", "127.0.0.1:${STATS_PORT:-8404}:8404"]}
    assert all(services[r]["environment"]["RATE_LIMIT_STORAGE_URI"] == "redis://redis:6379" for r in REPLICAS)


def test_the_training_worker_runs_the_replicas_image_on_their_models_volume_and_queue():
    """Without an engine: the jobs the replicas queue reach the worker (one Redis database, not the
    rate limits' one), it publishes where they read (one named volume, written by both), they poll
    for what it publishes (it cannot HUP them), and the admin key comes from outside the image."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services = document["services"]
    worker = services["worker"]
    assert worker["image"] == services["replica-1"]["image"] and "build" not in worker
    assert worker["command"] == ["python", "manage.py", "worker"]
    assert worker["healthcheck"] == {"disable": True}  # the image's check asks /health, which a worker lacks
    assert "models" in document["volumes"]
    for name in (*REPLICAS, "worker"):
        assert services[name]["volumes"] == ["models:/app/models"], name  # read-write: jobs and versions
        assert services[name]["environment"]["JOBS_QUEUE_URL"] == "redis://redis:6379/1", name
        assert "redis" in services[name]["depends_on"], name
    for name in REPLICAS:
        environment = services[name]["environment"]
        assert int(environment["MODELS_POLL_INTERVAL"]) > 0
        assert environment["ADMIN_API_KEYS"] == "${ADMIN_API_KEYS:-}"  # off unless given, never built in
    servers = [line.split()[1] for line in (COMPOSE_DIR / "haproxy.cfg").read_text().splitlines()
               if line.strip().startswith("server ")]
    assert servers == list(REPLICAS)


def predict(session: requests.Session, url: str) -> requests.Response:
    return session.post(f"{url}/predict", json=RECORD, timeout=10)


def failures(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.status != 200]


def summary(answers: list[Answer]) -> str:
    counts: dict[str, int] = {}
    for a in answers:
        key = f"{a.status} {a.replica}" if a.status is not None else f"no answer: {a.error}"
        counts[key] = counts.get(key, 0) + 1
    return json.dumps(counts, indent=1)


def test_both_replicas_answer_in_turn_and_only_the_balancer_is_published_on_loopback(stack):
    stack.up()
    with requests.Session() as session:
        answers = [predict(session, stack.url) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10, answers[-1].text
    assert all(a.headers["X-Model-Version"] == f"{MODEL}/1" for a in answers)
    assert all(a.json()["predictions"][0]["label"] == 1 for a in answers)
    # Round robin per request, even on one kept-alive connection.
    replicas = [a.headers["X-Replica"] for a in answers]
    assert all(replicas.count(r) >= 3 for r in REPLICAS), replicas

    published = {}
    for service in (*REPLICAS, "balancer", "redis"):
        ports = json.loads(stack.docker("inspect", "--format", "{{json .NetworkSettings.Ports}}",
                                        stack.container(service)).stdout)
        published[service] = sorted((b["HostIp"], int(b["HostPort"]), inner)
                                    for inner, bindings in ports.items() for b in (bindings or []))
    expected = sorted([("127.0.0.1", int(stack.settings["BALANCER_PORT"]), "8000/tcp"),
                       ("127.0.0.1", int(stack.settings["STATS_PORT"]), "8404/tcp")])
    assert published == {"replica-1": [], "replica-2": [], "redis": [], "balancer": expected}


def test_a_replica_alive_but_not_ready_gets_no_requests_until_it_is_ready_again(stack):
    """/ready, not /health, decides: a replica whose default model cannot be served (pinned to a
    version that does not exist, EXIT_IF_UNREADY=false) answers /health 200 and /ready 503, and
    the balancer sends it nothing; fixed and reloaded (HUP), it gets its share again. A reload
    refuses models that cannot serve while the current ones can, so the bad pin takes effect
    through a restart, which is graceful (SIGTERM): no request is lost across it either."""
    stack.up()
    replica = stack.container("replica-2")
    pin = f"/app/models/{MODEL}/pinned"
    stack.docker("exec", replica, "sh", "-c", f"echo 99 > {pin}")
    try:
        with Load(stack.url) as load:
            time.sleep(1)
            restarted = time.monotonic()
            stack.docker("restart", "--time", "30", replica, timeout=90)
            down = stack.wait_for(("replica-2",), "DOWN", seconds=30)
            deadline = time.monotonic() + 60
            while (probe := stack.probe(replica))["health"][0] != 200:  # booting again
                assert time.monotonic() < deadline, probe
                time.sleep(0.2)
            alive = time.monotonic()
            time.sleep(3 * CHECK_INTERVAL)  # several checks, with the replica alive and unready
            server = stack.servers()["replica-2"]
            quiet_until = time.monotonic()

            stack.docker("exec", replica, "rm", "-f", pin)
            stack.docker("exec", replica, "python3", "-c", "import os, signal; os.kill(1, signal.SIGHUP)")
            reloaded = time.monotonic()
            back = stack.wait_for(("replica-2",), "UP", seconds=30)
            time.sleep(1.5)
    finally:
        stack.docker("exec", replica, "sh", "-c", f"test ! -e {pin} || (rm -f {pin} && kill -HUP 1)", check=False)

    assert probe["health"][0] == 200, probe
    assert probe["ready"][0] == 503 and "99" in probe["ready"][1], probe
    assert (server["status"], server["check_status"], server["check_code"]) == ("DOWN", "L7STS", "503"), server

    answers = load.answers
    assert not failures(answers), f"lost across a graceful restart and a reload:\n{summary(failures(answers))}"
    while_unready = [a for a in answers if alive <= a.started and a.ended <= quiet_until]
    assert len(while_unready) > 50, summary(answers)
    assert {a.replica for a in while_unready} == {"replica-1"}, summary(while_unready)
    after = [a for a in answers if a.started >= back]
    assert {a.replica for a in after} == set(REPLICAS), summary(after)
    MEASURED["unready"] = {
        "requests": len(answers), "lost": len(failures(answers)),
        "while_alive_and_unready": len(while_unready), "seconds_alive_and_unready": round(quiet_until - alive, 1),
        "restart_to_out_of_service_s": round(down - restarted, 2),
        "reload_to_back_in_service_s": round(back - reloaded, 2),
    }


def test_killing_a_replica_under_load_loses_at_most_the_requests_in_flight(stack):
    stack.up()
    victim = stack.container("replica-1")
    with Load(stack.url) as load:
        time.sleep(2)
        kill_sent = time.monotonic()
        stack.docker("kill", victim)
        killed = time.monotonic()
        down = stack.wait_for(("replica-1",), "DOWN", seconds=30)
        time.sleep(3)
    state = stack.docker.state(victim)
    assert not state["Running"] and state["ExitCode"] == 137, state  # SIGKILL, and not restarted

    answers = load.answers
    # At most THREADS requests are in flight at any moment; `docker kill` takes a while, so more than
    # that overlap the command itself.
    overlapping = [a for a in answers if a.started < killed and a.ended > kill_sent]
    lost = failures(answers)
    assert len(answers) > 300, summary(answers)
    assert len(lost) <= min(len(overlapping), THREADS), (
        f"{len(lost)} lost, {len(overlapping)} in flight during the kill:\n{summary(lost)}")
    before = [a for a in answers if a.ended < kill_sent]
    assert {a.replica for a in before} == set(REPLICAS), summary(before)
    after = [a for a in answers if a.started > killed]
    assert after and {a.replica for a in after if a.status == 200} == {"replica-2"}, summary(after)
    slowest = max(a.ended - a.started for a in after)
    MEASURED["kill"] = {
        "requests": len(answers), "lost": len(lost), "overlapping_the_kill_command": len(overlapping),
        "kill_command_s": round(killed - kill_sent, 2),
        "kill_to_out_of_service_s": round(down - killed, 2),
        "slowest_after_kill_s": round(slowest, 2),
    }


def test_rate_limits_count_across_replicas_in_redis(stack):
    limit = 20
    # Per hour rather than per minute: the sliding window may let one more through when the requests
    # (a fraction of a second) straddle the start of a new window, 60 times less likely per hour.
    stack.up(rate_limit=f"{limit}/hour")
    with requests.Session() as session:
        answers = [predict(session, stack.url) for _ in range(2 * limit + 6)]
    statuses = [a.status_code for a in answers]
    # One budget for both replicas: 20 answered, then refused, whichever replica is asked (with
    # memory:// each replica, and each of its workers, would count alone: up to 4 x 20 here).
    assert statuses == [200] * limit + [429] * (limit + 6), statuses
    served = [a.headers["X-Replica"] for a in answers[:limit]]
    refused = [a.headers["X-Replica"] for a in answers[limit:]]
    assert all(served.count(r) >= limit // 2 - 1 for r in REPLICAS), served
    assert set(refused) == set(REPLICAS), refused
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers[limit:])
    assert answers[-1].json()["type"].endswith("/rate-limited")
    # The client is the address HAProxy saw (it appends it to X-Forwarded-For and the replicas trust
    # one proxy): a client that writes its own X-Forwarded-For is still the same client.
    forged = requests.post(f"{stack.url}/predict", json=RECORD, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert forged.status_code == 429, forged.text
    # The count lives in Redis, keyed by the client's address, not the balancer's.
    keys = stack.docker("exec", stack.container("redis"), "redis-cli", "--scan").stdout.split()
    balancer = stack.docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                            stack.container("balancer")).stdout.split()
    counted = [key for key in keys if "address:" in key]
    assert counted and not any(address in key for key in counted for address in balancer), (counted, balancer)
