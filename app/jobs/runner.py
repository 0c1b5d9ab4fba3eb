"""Where a job runs: RQ when JOBS_QUEUE_URL is set, else a local process (app/jobs/local.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from . import FAILED, FINISHED, RUNNING, read_state, update_state


def submit(folder: Path, config: Mapping[str, Any]) -> None:
    """Start or enqueue the job; local.NoFreeSlot or a Redis error when it cannot be."""
    if config["JOBS_QUEUE_URL"]:
        from . import queue

        queue.enqueue(folder, config["JOBS_QUEUE_URL"], config["JOB_TIMEOUT"])
    else:
        from . import local

        local.start(folder, config["MAX_RUNNING_JOBS"], config["JOB_TIMEOUT"])


def describe(folder: Path, config: Mapping[str, Any]) -> dict[str, Any]:
    """The job's state; one whose process or worker ended without saying so is marked failed."""
    state = read_state(folder)
    if state.get("state") not in FINISHED:
        reason = None
        if config["JOBS_QUEUE_URL"]:
            from . import queue

            try:
                reason = queue.failure(folder.name, config["JOBS_QUEUE_URL"])
            except Exception:  # noqa: BLE001 - Redis unreachable: report what the folder says
                reason = None
        elif state.get("state") == RUNNING:
            from . import local

            if not local.alive(folder):
                reason = "the job's process ended without a result (it was killed, or the machine restarted)"
        if reason is not None:
            state = update_state(folder, state=FAILED, error=reason)
    return {"id": folder.name, **{key: state.get(key) for key in
                                  ("name", "state", "progress", "result", "error", "created", "updated", "by")}}
