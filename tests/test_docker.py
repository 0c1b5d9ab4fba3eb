"""Integration: the image the Dockerfile builds, run as a user runs it, and hadolint on the Dockerfile.

Needs a Docker engine, and builds the image FROM a local Debian base with wheels prepared outside
the build: tests/docker_engine.py (shared with test_compose.py) says how, and skips with the reason
where no engine can run.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import requests

from tests.docker_engine import ROOT, Docker, base_image, docker, hadolint, image, wheels  # noqa: F401 - fixtures
from tests.records import RECORD
from tests.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.docker]


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
    done = subprocess.run([hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, f"hadolint found problems:\n{done.stdout}{done.stderr}"
