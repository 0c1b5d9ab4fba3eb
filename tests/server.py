"""A real gunicorn serving the app on a free 127.0.0.1 port, started and stopped by PID."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(models_dir: Path, log: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "2",
                   "MODELS_DIR": str(models_dir), **settings}
    stream = open(log, "wb")
    process = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=environment,
                               stdout=stream, stderr=subprocess.STDOUT)
    stream.close()
    return process, f"http://127.0.0.1:{port}"


def wait_until_healthy(process: subprocess.Popen, url: str, log: Path, seconds: float = 30, workers: int = 2) -> None:
    """Healthy, and every worker booted: a TERM that reaches a worker in the first instants after
    its fork (before gunicorn installs its handlers) is lost, and shutdown then waits 30 s."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            healthy = requests.get(f"{url}/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            healthy = False
        if healthy and log.read_text(errors="replace").count("Booting worker") >= workers:
            time.sleep(0.2)
            return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn not healthy after {seconds} s:\n{log.read_text()}")


def stop(process: subprocess.Popen, seconds: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


@contextmanager
def running(models_dir: Path, log: Path, **settings: str) -> Iterator[str]:
    process, url = start(models_dir, log, **settings)
    try:
        wait_until_healthy(process, url, log, workers=int(settings.get("WORKERS", 2)))
        yield url
    finally:
        stop(process)
