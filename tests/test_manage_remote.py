"""manage.py --url: the lifecycle commands over a real gunicorn's admin API, and local delete.

One server for the module (2 workers, admin and prediction keys) over a private copy of the
session's models plus a logistic-regression version trained here; each test sets the state it
needs through the commands themselves, and reads what is served from POST /predict.
"""
from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from app.model import artifacts
from tests.conftest import PIMA, ROOT
from tests.records import ADMIN_KEY, KEY, RECORD, WRONG_KEY
from tests.server import free_port, running

PLAIN_PAGE = ""  # the plain_page fixture's address


@pytest.fixture(scope="module")
def server(models_dir, logreg_version, tmp_path_factory):
    """(url, models folder): gunicorn serving versions 1 and 2 of the default model, 1 pinned."""
    models = tmp_path_factory.mktemp("remote") / "models"
    shutil.copytree(models_dir, models)
    shutil.copytree(logreg_version, models / PIMA / "2")
    artifacts.write_pin(models, PIMA, 1)
    log = models.parent / "gunicorn.log"
    # two job slots: a finished job's process may still hold its slot when the next test starts one
    with running(models, log, ADMIN_API_KEYS=ADMIN_KEY, API_KEYS=KEY, MAX_RUNNING_JOBS="2") as url:
        yield url, models


@pytest.fixture
def env(env_without_settings) -> dict:
    return {**env_without_settings, "ADMIN_API_KEY": ADMIN_KEY}


def manage(env: dict, *args: str, url: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    where = ("--url", url) if url else ()
    return subprocess.run([sys.executable, "manage.py", *where, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def succeeded(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    assert ADMIN_KEY not in done.stdout + done.stderr
    return done.stdout


def served(url: str) -> int:
    response = requests.post(f"{url}/predict", json=RECORD, headers={"X-API-Key": KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["model"]["version"]


def serves(url: str, version: int, seconds: float = 5) -> bool:
    """The HUP'd master replaces its workers: wait until every answer is ``version``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(served(url) == version for _ in range(4)):
            return True
        time.sleep(0.1)
    return False


def versions(url: str) -> list[int]:
    response = requests.get(f"{url}/models/{PIMA}", headers={"X-API-Key": KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["versions"]


def lists_without(url: str, version: int, seconds: float = 5) -> bool:
    """The reload a change asks for takes a moment: wait until every worker's list lacks ``version``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(version not in versions(url) for _ in range(4)):
            return True
        time.sleep(0.1)
    return False


def test_versions_over_url_marks_the_default_and_takes_a_prediction_key(server, env):
    url, _ = server
    succeeded(manage(env, "pin", PIMA, "1", url=url))
    assert serves(url, 1)
    assert succeeded(manage(env, "versions", url=url)).splitlines()[:2] == [f"{PIMA} 1  (default)", f"{PIMA} 2"]
    listed = succeeded(manage({**env, "ADMIN_API_KEY": KEY}, "versions", PIMA, url=url))
    assert f"{PIMA} 1  (default)" in listed.splitlines()


def test_push_uploads_a_version_that_is_served_only_after_pin(server, env, logreg_version):
    url, models = server
    before = versions(url)
    pushed = succeeded(manage(env, "push", str(logreg_version), url=url))
    new = max(before) + 1
    assert pushed.splitlines() == [f"{PIMA}: version {new} uploaded (not served; promote it with manage.py "
                                   f"--url {url} pin {PIMA} {new})"]
    assert (models / PIMA / str(new) / artifacts.MODEL_FILE).is_file()
    for relative in json.loads((logreg_version / "metadata.json").read_text())["files"]:  # the model card came too
        assert (models / PIMA / str(new) / relative).read_bytes() == (logreg_version / relative).read_bytes()
    current = served(url)
    assert current != new and serves(url, current)
    pinned = succeeded(manage(env, "pin", str(new), url=url))
    assert pinned.splitlines() == [f"{PIMA}: serving version {new} (was {current}) on {url}"]
    assert serves(url, new)


def test_push_with_promote_serves_it_at_once_under_another_name(server, env, logreg_version):
    url, models = server
    pushed = succeeded(manage(env, "push", str(logreg_version), "--name", "pima-copy", "--promote", url=url))
    assert pushed.splitlines() == [f"pima-copy: version 1 uploaded and served on {url}"]
    assert artifacts.list_versions(models, "pima-copy") == [1]


def test_rollback_over_url_serves_the_previous_version(server, env):
    url, _ = server
    succeeded(manage(env, "pin", "1", url=url))
    succeeded(manage(env, "pin", "2", url=url))
    assert serves(url, 2)
    rolled = succeeded(manage(env, "rollback", url=url))
    assert rolled.splitlines() == [f"{PIMA}: rolled back to version 1 (was 2) on {url}"]
    assert serves(url, 1)


def test_delete_over_url_removes_a_version_that_is_not_served(server, env, logreg_version):
    url, models = server
    succeeded(manage(env, "pin", "1", url=url))
    pushed = succeeded(manage(env, "push", str(logreg_version), url=url))
    new = int(pushed.split()[2])
    deleted = succeeded(manage(env, "delete", PIMA, str(new), url=url))
    assert deleted.splitlines() == [f"{PIMA}: version {new} deleted on {url} (version 1 stays the default)"]
    assert lists_without(url, new) and not (models / PIMA / str(new)).exists()
    assert serves(url, 1)


def test_train_over_url_waits_for_the_job_and_reports_the_new_version(server, env, tmp_path):
    url, models = server
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN_KEY + "\n")
    no_key = {k: v for k, v in env.items() if k != "ADMIN_API_KEY"}
    before = set(artifacts.list_versions(models, PIMA))  # the files: a worker's list may await its reload
    done = manage(no_key, "--key-file", str(key_file), "train", "--data", "data/training.csv", "--target", "Outcome",
                  "--estimator", "logreg", "--folds", "2", "--promote", "always", "--wait", url=url)
    (line,) = succeeded(done).splitlines()
    new = int(line.split()[2])  # past every version the model ever had, deleted ones too
    assert new > max(before) and set(artifacts.list_versions(models, PIMA)) == before | {new}
    assert line.startswith(f"{PIMA}: version {new} trained (accuracy ")
    assert line.endswith(f"; promoted: the request asked for it (promote=always); version {new} is served")
    progress = done.stderr.splitlines()
    assert progress[0].startswith(f"{PIMA}: training job ") and progress[0].endswith(" queued")
    job_id = progress[0].split()[3]
    assert len(progress) >= 2 and all(p.startswith(f"job {job_id}: ") for p in progress[1:]), done.stderr
    assert serves(url, new, seconds=10)
    assert (models / PIMA / str(new) / artifacts.METADATA_FILE).is_file()
    shown = succeeded(manage(env, "job", job_id, url=url))
    assert shown == done.stdout


def test_a_failed_training_job_exits_1_with_its_error(server, env, tmp_path):
    url, _ = server
    data = tmp_path / "constant.csv"
    data.write_text("a,b,Outcome\n" + "".join(f"{i},{i % 3},1\n" for i in range(40)))
    done = manage(env, "train", "--data", str(data), "--target", "Outcome", "--name", "constant", "--folds", "2",
                  "--wait", url=url)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: training job ") and " failed: " in errors[0]
    assert done.stdout == ""


def wrong_key(env, url, models):
    return {**env, "ADMIN_API_KEY": WRONG_KEY}, ("pin", "1"), "401"


def prediction_key(env, url, models):
    return {**env, "ADMIN_API_KEY": KEY}, ("rollback",), "this API key may predict but not change models"


def no_key(env, url, models):
    return {k: v for k, v in env.items() if k != "ADMIN_API_KEY"}, ("pin", "1"), "set ADMIN_API_KEY or --key-file"


def unreachable(env, url, models):
    closed = f"http://127.0.0.1:{free_port()}"
    return env, ("--url", closed, "versions"), f"cannot reach {closed}: Connection refused"


def unknown_version(env, url, models):
    return env, ("pin", PIMA, "99"), f"model {PIMA!r} has no version 99"


def served_version_deleted(env, url, models):
    return env, ("delete", str(artifacts.read_pin(models, PIMA))), "is the version served by default"


def unknown_job(env, url, models):
    return env, ("job", "0" * 32), "no job"


def bad_upload(env, url, models):
    folder = models.parent / "bad-version"
    folder.mkdir(exist_ok=True)
    (folder / artifacts.MODEL_FILE).write_bytes(b"not a model")
    (folder / artifacts.METADATA_FILE).write_text('{"name": "broken"}')
    return env, ("push", str(folder)), "422"


def bad_training_option(env, url, models):
    return env, ("train", "--data", "data/training.csv", "--target", "Nope"), "target: the training CSV has no column"


def unpin_over_url(env, url, models):
    return env, ("unpin",), "unpin has no admin API"


def local_only_command(env, url, models):
    return env, ("keygen", "a.pem", "b.pem"), "keygen works on this machine's files only; drop --url"


def push_without_url(env, url, models):
    return env, ("--models-dir", str(models), "push", "models/x/1"), "push acts on a server: give its address with --url"


def not_the_model_server(env, url, models):
    return env, ("--url", PLAIN_PAGE, "versions"), f"GET {PLAIN_PAGE}/models/{PIMA} answered 200 without JSON"


BAD = [wrong_key, prediction_key, no_key, unreachable, unknown_version, served_version_deleted, unknown_job, bad_upload,
       bad_training_option, unpin_over_url, local_only_command, push_without_url, not_the_model_server]


class PlainPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"<html>not the model server</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def plain_page():
    """A web server that is not the model server: an HTML page for every GET."""
    global PLAIN_PAGE
    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PlainPage)
    thread = threading.Thread(target=page.serve_forever, daemon=True)
    thread.start()
    PLAIN_PAGE = f"http://127.0.0.1:{page.server_address[1]}"
    yield PLAIN_PAGE
    page.shutdown()
    page.server_close()


@pytest.mark.parametrize("case", BAD, ids=[case.__name__ for case in BAD])
def test_a_bad_invocation_is_one_error_line_and_exit_2(server, plain_page, env, case):
    url, models = server
    pinned_before = artifacts.read_pin(models, PIMA)
    env, args, words = case(env, url, models)
    url_given = any(a.startswith("--") and a in ("--url", "--models-dir") for a in args)
    done = manage(env, *args, url=None if url_given else url)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and words in line, line
    assert done.stdout == ""
    for key in (ADMIN_KEY, KEY, WRONG_KEY):
        assert key not in done.stderr
    assert artifacts.read_pin(models, PIMA) == pinned_before


def test_local_delete_removes_a_version_and_refuses_the_served_one(models_dir, logreg_version, tmp_path, capsys):
    import manage as command

    copy = tmp_path / "models"
    shutil.copytree(models_dir / PIMA / "1", copy / PIMA / "1")
    shutil.copytree(logreg_version, copy / PIMA / "2")
    assert command.main(["--models-dir", str(copy), "delete", PIMA, "2"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"error: {PIMA} 2 is the version served by default; promote another one first, then delete it")
    assert command.main(["--models-dir", str(copy), "delete", "1"]) == 0
    assert capsys.readouterr().out == f"{PIMA}: version 1 deleted (version 2 stays the default)\n"
    assert artifacts.list_versions(copy, PIMA) == [2]
    assert command.main(["--models-dir", str(copy), "rollback"]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err


def test_a_server_that_does_not_answer_is_a_timeout_naming_the_url(monkeypatch, capsys):
    import manage as command

    monkeypatch.setattr(command, "TIMEOUT", 0.5)
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert command.main(["--url", url, "versions", PIMA]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and url in line and "no answer within 0.5 s" in line, line


def test_the_upload_parts_manage_py_names_are_the_servers():
    import manage as command
    from app.model import uploads

    assert command.UPLOAD_PARTS == uploads.PARTS
