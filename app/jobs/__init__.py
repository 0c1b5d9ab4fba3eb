"""Training jobs: ``POST /models/<name>/train`` creates one, ``GET /jobs/<id>`` reads it.

A job is a folder under ``MODELS_DIR/.jobs/<id>/``: its options (``spec.json``), its data files,
and its state (``state.json``: queued, running, succeeded or failed, with progress and result),
written whole and renamed into place by whoever runs it. The folder is on the models volume, so
whichever process trains (a local process by default, an RQ worker with ``JOBS_QUEUE_URL``) reads
the data and publishes the version where every replica sees them. The queue is RQ's; nothing
here queues: a local job that finds no free slot is refused (app/jobs/local.py).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

JOBS_FOLDER = ".jobs"
SPEC_FILE = "spec.json"
STATE_FILE = "state.json"
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)
KEEP_FINISHED = 7 * 24 * 3600  # seconds a finished job's folder is kept


def jobs_dir(models_dir: Path | str) -> Path:
    return Path(models_dir) / JOBS_FOLDER


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_job(models_dir: Path | str) -> tuple[str, Path]:
    """A fresh job folder (its files are written by the caller, then ``submit``)."""
    root = jobs_dir(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    sweep(root)
    job_id = secrets.token_hex(16)
    folder = root / job_id
    folder.mkdir()
    return job_id, folder


def sweep(root: Path) -> None:
    """Forget finished jobs older than a week (their versions stay)."""
    cutoff = time.time() - KEEP_FINISHED
    for entry in root.iterdir():
        state = entry / STATE_FILE
        try:
            if state.stat().st_mtime < cutoff and read_json(state).get("state") in FINISHED:
                shutil.rmtree(entry, ignore_errors=True)
        except (OSError, ValueError):
            continue


def job_folder(models_dir: Path | str, job_id: str) -> Path | None:
    folder = jobs_dir(models_dir) / job_id
    return folder if ID_PATTERN.match(job_id) and (folder / STATE_FILE).is_file() else None


def read_json(path: Path) -> dict[str, Any]:
    found = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(found, dict):
        raise ValueError(f"{path} does not hold an object")
    return found


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Whole or not at all: a reader never sees half a state."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    staging.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(staging, path)


def read_state(folder: Path) -> dict[str, Any]:
    return read_json(folder / STATE_FILE)


def update_state(folder: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the job's state (one writer per job at a time: whoever runs it)."""
    try:
        state = read_state(folder)
    except (OSError, ValueError):
        state = {}
    state.update(fields, updated=now())
    write_json(folder / STATE_FILE, state)
    return state
