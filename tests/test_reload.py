"""Model lifecycle in process: reloads, pin files, rollback and manage.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app, reload_models
from app.model import artifacts
from tests.conftest import PIMA, ROOT
from tests.records import RECORD


def add_version_2(models_copy: Path, logreg_version: Path) -> Path:
    target = models_copy / PIMA / "2"
    shutil.copytree(logreg_version, target)
    return target


def served(client) -> tuple[int, str]:
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 200, response.get_data(as_text=True)
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json["default_model"]["version"] == response.json["model"]["version"]
    return response.json["model"]["version"], response.headers["X-Model-Version"]


def test_reload_picks_up_a_new_version(models_copy, logreg_version):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client) == (1, f"{PIMA}/1")
    add_version_2(models_copy, logreg_version)
    assert served(client) == (1, f"{PIMA}/1")  # nothing changes until a reload
    assert reload_models(app) is None
    assert served(client) == (2, f"{PIMA}/2")
    assert client.post("/predict?version=1", json=RECORD).json["model"]["version"] == 1


def test_a_pin_file_makes_reload_serve_the_pinned_version(models_copy, logreg_version):
    add_version_2(models_copy, logreg_version)
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client)[0] == 2
    artifacts.write_pin(models_copy, PIMA, 1)
    assert reload_models(app) is None
    assert served(client)[0] == 1
    assert client.get("/models").json["default"] == {"name": PIMA, "version": 1}
    artifacts.write_pin(models_copy, PIMA, None)
    assert reload_models(app) is None
    assert served(client)[0] == 2


def tampered_model(folder: Path, models: Path) -> str:
    with open(folder / artifacts.MODEL_FILE, "ab") as stream:
        stream.write(b"tampered")
    return "sha256"


def truncated_model(folder: Path, models: Path) -> str:
    path = folder / artifacts.MODEL_FILE
    path.write_bytes(path.read_bytes()[:1000])
    return "changed or truncated"


def deleted_metadata(folder: Path, models: Path) -> str:
    (folder / artifacts.METADATA_FILE).unlink()
    return "metadata.json is missing"


def garbage_pin(folder: Path, models: Path) -> str:
    (models / PIMA / artifacts.PIN_FILE).write_text("banana\n")
    return "should hold a version number"


def pin_to_a_missing_version(folder: Path, models: Path) -> str:
    artifacts.write_pin(models, PIMA, 7)
    return "has no version 7"


@pytest.mark.parametrize("damage", [tampered_model, truncated_model, deleted_metadata, garbage_pin,
                                    pin_to_a_missing_version])
def test_a_bad_new_state_is_refused_on_reload_and_the_old_version_keeps_serving(models_copy, logreg_version, damage):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client)[0] == 1
    words = damage(add_version_2(models_copy, logreg_version), models_copy)
    reason = reload_models(app)
    assert reason is not None and words in reason
    assert served(client) == (1, f"{PIMA}/1")
    assert client.get("/ready").status_code == 200
    assert client.post("/predict", json=RECORD).status_code == 200


NOTHING_OLDER = "is the oldest version and was not promoted from another; nothing to roll back to"


def manage(models: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "--models-dir", str(models), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_manage_lists_pins_rolls_back_and_unpins(models_copy, logreg_version, env_without_settings):
    add_version_2(models_copy, logreg_version)
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()

    listed = manage(models_copy, env_without_settings, "versions")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{PIMA} 1", f"{PIMA} 2  (default)"]

    rolled = manage(models_copy, env_without_settings, "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert "pinned to version 1 (was 2)" in rolled.stdout
    assert artifacts.read_pin(models_copy, PIMA) == 1
    assert reload_models(app) is None and served(client)[0] == 1

    again = manage(models_copy, env_without_settings, "rollback")
    assert again.returncode == 2 and NOTHING_OLDER in again.stderr
    assert artifacts.read_pin(models_copy, PIMA) == 1

    pinned = manage(models_copy, env_without_settings, "pin", PIMA, "2")
    assert pinned.returncode == 0 and artifacts.read_pin(models_copy, PIMA) == 2
    assert reload_models(app) is None and served(client)[0] == 2

    unpinned = manage(models_copy, env_without_settings, "unpin")
    assert unpinned.returncode == 0 and "newest version, 2" in unpinned.stdout
    assert artifacts.read_pin(models_copy, PIMA) is None
    assert reload_models(app) is None and served(client)[0] == 2


def pinned_to_1(models: Path) -> None:
    artifacts.write_pin(models, PIMA, 1)


def garbage_pin_file(models: Path) -> None:
    (models / PIMA / artifacts.PIN_FILE).write_text("two\n")


MANAGE_CASES = [
    # id, prepare a copy holding version 1 only, arguments, words in the error (None: succeeds), pin afterwards
    ("versions-marks-the-pin", pinned_to_1, ("versions",), None, 1),
    ("rollback-from-the-only-version", None, ("rollback",), NOTHING_OLDER, None),
    ("pin-a-missing-version", None, ("pin", PIMA, "9"), "has no version 9", None),
    ("unknown-model", None, ("versions", "no-such-model"), "no versions of 'no-such-model'", None),
    ("path-in-the-name", None, ("rollback", "../escape"), "invalid model name", None),
    ("garbage-pin-file", garbage_pin_file, ("rollback",), "should hold a version number", ...),
]


@pytest.mark.parametrize("prepare, args, error, pin", [c[1:] for c in MANAGE_CASES], ids=[c[0] for c in MANAGE_CASES])
def test_manage_refuses_what_it_cannot_do_with_a_message(models_dir, tmp_path, capsys, prepare, args, error, pin):
    """In process (manage.main), to keep the file fast; the subprocess test above covers the command line."""
    import manage

    copy = tmp_path / "models"
    shutil.copytree(models_dir / PIMA, copy / PIMA)
    if prepare:
        prepare(copy)
    if error is None:
        assert manage.main(["--models-dir", str(copy), *args]) == 0
        assert f"{PIMA} 1  (default, pinned)" in capsys.readouterr().out
    else:
        assert manage.main(["--models-dir", str(copy), *args]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and error in line
    if pin is not ...:
        assert artifacts.read_pin(copy, PIMA) == pin


def test_a_reload_reads_a_version_whose_files_were_replaced_even_with_the_same_times(models_copy, logreg_version):
    """Registry reuse goes by the metadata's digest: a version folder replaced by another model with
    the same file times (coarse clocks, copies that keep them) is read again, never served stale."""
    import os

    from app.model.registry import Registry

    target = add_version_2(models_copy, logreg_version)
    first = Registry.load(models_copy, PIMA)
    times = [(path, path.stat()) for path in target.iterdir()]
    shutil.rmtree(target)
    shutil.copytree(models_copy / PIMA / "1", target)  # another model under the same number
    for path, stat in times:
        if path.exists():
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = Registry.load(models_copy, PIMA, previous=first)
    assert again.get(PIMA, 2).metadata["model_sha256"] == first.get(PIMA, 1).metadata["model_sha256"]
    assert again.get(PIMA, 2).metadata["model_sha256"] != first.get(PIMA, 2).metadata["model_sha256"]
