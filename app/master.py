"""Asking the gunicorn master to reload (HUP), from a worker or a job it started.

gunicorn.conf.py puts the master's PID in ``MODEL_SERVER_MASTER_PID`` before any worker forks, so
workers and the local training processes they start inherit it. The master then loads the models
again and replaces its workers without dropping a request, as ``make reload`` does. Imports no Flask.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

MASTER_PID = "MODEL_SERVER_MASTER_PID"


def master_pid() -> int | None:
    """The gunicorn master this process belongs to, if it still runs (a reused PID is not taken for it)."""
    text = os.environ.get(MASTER_PID, "")
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here: trust the variable
        return pid
    return pid if b"gunicorn" in command else None


def request_reload() -> bool:
    """HUP the master; False when this process is not under a gunicorn master."""
    pid = master_pid()
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True
