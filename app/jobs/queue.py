"""Training jobs on RQ, the Redis queue, when replicas share the work (``JOBS_QUEUE_URL=redis://...``).

The server enqueues ``app.jobs.training.run`` with the job's folder (on the models volume every
replica and worker mounts); ``python manage.py worker`` runs RQ's worker, which trains wherever it
runs. RQ keeps the queue, retries nothing by itself, and records a job whose worker died as
failed, which ``GET /jobs/<id>`` reports.
"""
from __future__ import annotations

from pathlib import Path

QUEUE = "model-training"
KEEP = 7 * 24 * 3600  # seconds RQ keeps a finished job's record


def _connection(url: str):
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def enqueue(folder: Path, url: str, timeout: int) -> None:
    from rq import Queue

    Queue(QUEUE, connection=_connection(url)).enqueue(
        "app.jobs.training.run", str(folder), job_id=folder.name, job_timeout=timeout, result_ttl=KEEP,
        failure_ttl=KEEP, description=f"train {folder.name}")


def failure(job_id: str, url: str) -> str | None:
    """Why RQ says the job ended without writing its state (its worker died, a timeout), or None."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(job_id, connection=_connection(url))
    except NoSuchJobError:
        return "the queue has no record of this job"
    status = job.get_status()
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        result = job.latest_result()
        detail = (result.exc_string or "").strip().splitlines()[-1:] if result is not None else []
        return f"the queue reports the job {status.value}" + (f": {detail[0][:500]}" if detail else "")
    return None


def work(url: str, burst: bool = False) -> bool:
    """Run an RQ worker on the training queue (``python manage.py worker``)."""
    from rq import Worker

    return Worker([QUEUE], connection=_connection(url), name=None).work(burst=burst, with_scheduler=False)
