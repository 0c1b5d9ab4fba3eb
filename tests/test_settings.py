"""Settings: one module parses every variable, for the app, gunicorn, train.py and manage.py alike."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from app import StartupError, config, create_app
from tests.conftest import ROOT
from tests.server import GUNICORN


@pytest.mark.parametrize("name, value, words", [
    ("MAX_BATCH_ROWS", "many", "whole number"),
    ("MAX_BATCH_ROWS", "0", "at least 1"),
    ("LOG_FORMAT", "xml", "one of text, json"),
    ("EXIT_IF_UNREADY", "maybe", "true or false"),
    ("DRIFT", "sometimes", "true or false, got 'sometimes'"),
    ("DRIFT_WINDOW", "an hour", "whole number, got 'an hour'"),
    ("DRIFT_WINDOW", "0", "at least 1, got 0"),
    ("DRIFT_WINDOW", "99999999", "at most 2592000, got 99999999"),
    ("DRIFT_MIN_ROWS", "-5", "at least 1, got -5"),
    ("EXPLAIN_TIME_LIMIT", "0", "at least 1, got 0"),
])
def test_bad_settings_stop_startup_with_a_clear_message(monkeypatch, models_dir, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(StartupError, match=f"{name} .*{words}"):
        create_app({"MODELS_DIR": str(models_dir)})


BAD_SERVER_SETTINGS = [
    ("PORT", "abc", "PORT must be a whole number, got 'abc'"),
    ("PORT", "70000", "PORT must be at most 65535, got 70000"),
    ("WORKERS", "0", "WORKERS must be at least 1, got 0"),
    ("TIMEOUT", "soon", "TIMEOUT must be a whole number, got 'soon'"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'loud'"),
    ("LIMIT_REQUEST_LINE", "9000", "LIMIT_REQUEST_LINE must be at most 8190, got 9000"),
    ("METRICS", "perhaps", "METRICS must be true or false, got 'perhaps'"),
]


@pytest.mark.parametrize("name, value, message", BAD_SERVER_SETTINGS, ids=[f"{n}={v}" for n, v, _ in BAD_SERVER_SETTINGS])
def test_gunicorn_refuses_a_bad_setting_with_one_line_naming_it(env_without_settings, tmp_path, name, value, message):
    done = subprocess.run([str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"], cwd=tmp_path,
                          env={**env_without_settings, name: value}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"error: cannot start: configuration: {message}"], done.stderr


@pytest.mark.parametrize("command", [["train.py", "--if-missing"], ["manage.py", "versions"]])
def test_the_command_line_tools_refuse_a_bad_setting_with_one_line(env_without_settings, tmp_path, command):
    done = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]], cwd=tmp_path,
                          env={**env_without_settings, "MODEL_VERSION": "latest"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    (line,) = done.stderr.strip().splitlines()
    assert re.fullmatch(r"(train\.py: )?error: MODEL_VERSION must be a whole number, got 'latest'", line), line


def test_earlier_names_of_settings_are_still_read():
    assert config.from_environment({"FAST_PATH": "false", "HOT_PATH": "off"}) == {
        "COMPILED_MODELS": False, "DIRECT_PATH": False}
    assert config.from_environment({"HOT_PATH": "off", "DIRECT_PATH": "on"}) == {"DIRECT_PATH": True}
    with pytest.raises(config.ConfigError, match="HOT_PATH must be true or false"):
        config.from_environment({"HOT_PATH": "sometimes"})


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    documented = {name for line in table for name in re.findall(r"`([A-Z_]+)`", line.split("|")[1])}
    assert set(config.SETTINGS) <= documented, sorted(set(config.SETTINGS) - documented)


def test_the_default_model_name_is_written_once():
    """Only app/config.py names the default model; the code, the Makefile and the images ask it."""
    candidates = [*ROOT.glob("*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("bench/*.py"),
                  ROOT / "Makefile", ROOT / "Dockerfile", ROOT / "docker-compose.yml"]
    naming = sorted(str(path.relative_to(ROOT)) for path in candidates
                    if config.DEFAULT_MODEL_NAME in path.read_text(encoding="utf-8"))
    assert naming == ["app/config.py"]


def test_debug_mode_cannot_be_switched_on_from_the_environment(monkeypatch, models_dir):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app({"MODELS_DIR": str(models_dir)})
    assert app.debug is False
    response = app.test_client().post("/predict", data="{oops", content_type="application/json")
    assert response.status_code == 400 and "Traceback" not in response.get_data(as_text=True)
