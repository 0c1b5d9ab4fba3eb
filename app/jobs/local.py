"""Local training jobs: one process per job, outside the request workers, at most MAX_RUNNING_JOBS at once.

A request worker takes a free slot (an flock on ``.jobs/.slot-N``) and starts
``python -m app.jobs.local``, which inherits the locked slot and keeps it until it exits: a job
that ends, fails or is killed frees its slot, and a request that finds none free is refused
(503 with Retry-After) rather than queued. The job also holds ``running.lock`` in its folder, so
``GET /jobs/<id>`` can tell a running job from one whose process died. The process runs at a
lower priority than the server (nice 10), so predictions keep the CPU they need.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RUNNING_LOCK = "running.lock"
NICENESS = 10


class NoFreeSlot(Exception):
    """Every local slot is taken by a running job."""


def start(folder: Path, max_running: int, timeout: int) -> None:
    """Start the job in ``folder`` in its own process, or NoFreeSlot."""
    for slot in range(max_running):
        handle = open(folder.parent / f".slot-{slot}", "a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            process = subprocess.Popen(
                [sys.executable, "-m", "app.jobs.local", str(folder), str(timeout), str(handle.fileno())],
                pass_fds=(handle.fileno(),),
                stdin=subprocess.DEVNULL, start_new_session=True, env=environment)
        finally:
            handle.close()  # the job's copy of the descriptor keeps the slot locked
        threading.Thread(target=process.wait, daemon=True, name=f"reap-job-{folder.name[:8]}").start()
        return
    raise NoFreeSlot(f"{max_running} training job{'s' * (max_running != 1)} already running (MAX_RUNNING_JOBS)")


def alive(folder: Path) -> bool:
    """Whether the job's process still runs (it holds running.lock until it exits)."""
    try:
        with open(folder / RUNNING_LOCK, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def _timed_out(signum, frame) -> None:
    raise TimeoutError(f"the job ran longer than JOB_TIMEOUT ({os.environ.get('JOB_TIMEOUT', '3600')} s) and was stopped")


def main(argv: list[str]) -> int:
    from .. import config
    from ..logs import configure_logging
    from .training import run

    folder, timeout, slot = Path(argv[0]), int(argv[1]), int(argv[2])
    settings = config.load()
    configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    os.nice(NICENESS)
    with open(folder / RUNNING_LOCK, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        signal.signal(signal.SIGALRM, _timed_out)
        signal.alarm(timeout)
        state = run(folder, release=lambda: os.close(slot))
    return 0 if state.get("state") == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
