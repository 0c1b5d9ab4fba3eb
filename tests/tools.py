"""Install the outside tools a test needs (Debian packages, npm packages), once per machine.

A test calls these and skips, with the reason, only when the tool truly cannot be had here
(no apt-get or npm, not root); everything else that goes wrong is a failure.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "build" / "node"  # npm packages the tests use (gitignored)


@functools.lru_cache(maxsize=None)
def _apt_updated() -> None:
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, timeout=300)


def apt_install(*packages: str, binary: str | None = None) -> str:
    """Ensure Debian ``packages`` are installed; return the path of ``binary`` (default: the first package)."""
    binary = binary or packages[0]
    found = shutil.which(binary)
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip(f"{binary} is not installed and this machine has no apt-get to install {' '.join(packages)}")
    if os.geteuid() != 0:
        pytest.skip(f"{binary} is not installed and installing {' '.join(packages)} needs root")
    _apt_updated()
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        capture_output=True, text=True, timeout=600, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert done.returncode == 0, f"apt-get install {' '.join(packages)} failed:\n{done.stderr[-3000:]}"
    found = shutil.which(binary)
    assert found, f"installed {' '.join(packages)} but {binary} is not on PATH"
    return found


def npm_tool(package: str, version: str, binary: str | None = None) -> Path:
    """Ensure ``package@version`` is installed under build/node; return its binary."""
    binary = binary or package
    path = NODE_DIR / "node_modules" / ".bin" / binary
    marker = NODE_DIR / f".{package.replace('/', '_')}-{version}"
    if path.exists() and marker.exists():
        return path
    if shutil.which("npm") is None:
        pytest.skip(f"{package} needs npm, and this machine has no npm (install Node.js)")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), f"{package}@{version}"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"npm install {package}@{version} failed:\n{done.stderr[-3000:]}"
    marker.touch()
    return path


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of its own on a free 127.0.0.1 port, keeping nothing on disk; its URL
    (redis://127.0.0.1:PORT), stopped by its PID on the way out."""
    import redis

    from tests.server import free_port

    binary = apt_install("redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
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
