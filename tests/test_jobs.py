"""Training jobs in local processes: options checked up front, state and progress, promotion rules, faults."""
from __future__ import annotations

import fcntl
import time
from pathlib import Path

import pandas as pd
import pytest

from app import create_app, reload_models
from app.jobs import jobs_dir
from app.model import artifacts
from tests.conftest import PIMA, ROOT
from tests.records import ADMIN_KEY, RECORD

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TRAINING = ROOT / "data" / "training.csv"
QUICK = "target=Outcome&estimator=logreg&folds=2"


@pytest.fixture
def app(models_copy):
    return create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,)})


@pytest.fixture
def admin(app):
    return app.test_client()


def start(admin, query: str, body: bytes | None = None):
    return admin.post(f"/models/{PIMA}/train?{query}", headers=ADMIN, data=TRAINING.read_bytes() if body is None
                      else body, content_type="text/csv")


def finished(admin, job_id: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = admin.get(f"/jobs/{job_id}", headers=ADMIN).json
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s: {job}")


def test_a_job_trains_a_new_version_and_promotes_it_when_asked(app, admin, models_copy):
    answer = start(admin, f"{QUICK}&promote=always&class_names=0%3Dhealthy%2C1%3Ddiabetic")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.headers["Location"] == f"/jobs/{answer.json['id']}"
    job = finished(admin, answer.json["id"])
    assert job["state"] == "succeeded", job
    assert job["result"]["version"] == 2 and job["result"]["promoted"] is True
    assert job["progress"] == {"step": "done", "fraction": 1.0}
    reload_models(app)  # under gunicorn the job's process asks the master (test_admin_server.py)
    assert admin.post("/predict", headers=ADMIN, json=RECORD).json["model"]["version"] == 2
    assert admin.get(f"/models/{PIMA}/2", headers=ADMIN).json["class_names"] == {"0": "healthy", "1": "diabetic"}


def test_if_better_compares_on_the_held_out_rows_by_log_loss_and_says_so(app, admin, models_copy):
    job = finished(admin, start(admin, QUICK).json["id"])  # promote defaults to if-better
    assert job["state"] == "succeeded", job
    comparison = job["result"]["comparison"]
    assert comparison["metric"] == "log_loss" and comparison["served_version"] == 1 and comparison["comparable"]
    better = comparison["new"] < comparison["served"]
    assert job["result"]["promoted"] is better
    assert ("promoted: log_loss" if better else "not promoted: log_loss") in job["result"]["reason"]
    expected = 2 if better else 1
    assert lifecycle_served(models_copy) == expected


def lifecycle_served(models_copy: Path) -> int:
    from app.model import lifecycle

    return lifecycle.served_version(lifecycle.Settings(models_copy, PIMA), PIMA)


def test_a_version_trained_with_promote_never_is_kept_but_not_served(admin, models_copy):
    job = finished(admin, start(admin, f"{QUICK}&promote=never").json["id"])
    assert job["state"] == "succeeded" and job["result"]["promoted"] is False
    assert artifacts.list_versions(models_copy, PIMA) == [1, 2]
    assert lifecycle_served(models_copy) == 1


def test_a_failed_job_says_why_and_leaves_the_service_as_it_was(admin, models_copy, tmp_path):
    frame = pd.read_csv(TRAINING)
    frame["Outcome"] = 1  # one class: nothing to learn
    job = finished(admin, start(admin, QUICK, frame.to_csv(index=False).encode()).json["id"])
    assert job["state"] == "failed" and "class" in job["error"], job
    assert artifacts.list_versions(models_copy, PIMA) == [1]
    assert lifecycle_served(models_copy) == 1


@pytest.mark.parametrize("query, fields", [
    ("estimator=logreg", ["target"]),
    ("target=Nope", ["target"]),
    ("target=Outcome&estimator=xgboost&folds=1&test_size=2", ["estimator", "folds", "test_size"]),
    ("target=Outcome&promote=sometimes&colour=red", ["promote", "colour"]),
    ("target=Outcome&drop=Nope", ["drop"]),
    ("target=Outcome&class_names=healthy", ["class_names"]),
    ("target=Outcome&seed=-1&seed=2", ["seed"]),
])
def test_a_job_with_bad_options_is_refused_before_it_starts_with_every_problem(admin, models_copy, query, fields):
    answer = start(admin, query)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert sorted(e["field"] for e in answer.json["errors"]) == sorted(fields)
    assert not any(jobs_dir(models_copy).glob("*/spec.json"))  # no job was left behind


def test_a_job_needs_its_training_data(admin):
    answer = admin.post(f"/models/{PIMA}/train?target=Outcome", headers=ADMIN, data={}, content_type="multipart/form-data")
    assert answer.status_code == 422 and answer.json["errors"][0]["field"] == "data"


def test_with_every_local_slot_taken_a_job_is_refused_with_retry_after(admin, models_copy):
    jobs_dir(models_copy).mkdir(parents=True, exist_ok=True)
    with open(jobs_dir(models_copy) / ".slot-0", "a+b") as slot:  # as a running job holds it
        fcntl.flock(slot.fileno(), fcntl.LOCK_EX)
        answer = start(admin, QUICK)
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "MAX_RUNNING_JOBS" in answer.json["detail"]


def test_a_job_whose_process_died_is_reported_failed(admin, models_copy):
    from app.jobs import update_state

    answer = start(admin, f"{QUICK}&promote=never")
    folder = jobs_dir(models_copy) / answer.json["id"]
    finished(admin, answer.json["id"])
    update_state(folder, state="running")  # as if its process had been killed before it could say so
    job = admin.get(f"/jobs/{answer.json['id']}", headers=ADMIN).json
    assert job["state"] == "failed" and "ended without a result" in job["error"]


def test_an_unknown_job_is_a_404(admin):
    assert admin.get("/jobs/0123456789abcdef0123456789abcdef", headers=ADMIN).status_code == 404
    assert admin.get("/jobs/..%2F..%2Fetc", headers=ADMIN).status_code == 404


def test_an_empty_training_file_is_refused_before_a_job_exists(admin, models_copy):
    answer = start(admin, QUICK, b"")
    assert answer.status_code == 422 and answer.json["errors"][0]["field"] == "data"


def test_a_failed_job_takes_back_its_pin_and_a_new_models_folder(admin, models_copy):
    frame = pd.read_csv(TRAINING)
    frame["Outcome"] = 1
    body = frame.to_csv(index=False).encode()
    assert artifacts.read_pin(models_copy, PIMA) is None
    assert finished(admin, start(admin, QUICK, body).json["id"])["state"] == "failed"
    assert artifacts.read_pin(models_copy, PIMA) is None  # the newest is served again, as before the job
    answer = admin.post(f"/models/brand-new/train?{QUICK}", headers=ADMIN, data=body, content_type="text/csv")
    assert finished(admin, answer.json["id"])["state"] == "failed"
    assert not (models_copy / "brand-new").exists()
