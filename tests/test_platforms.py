"""Platforms people deploy to from the tutorials: a Procfile (Heroku-style) and conda's environment.yml."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests import server
from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        found = PIN.match(line.split("#")[0].strip())
        if found:
            pins[found.group(1).lower()] = found.group(2)
    return pins


def test_environment_yml_pins_exactly_what_requirements_txt_pins():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = [d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert python == [f"python={(ROOT / '.python-version').read_text().strip()}"]
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    pinned = dict(PIN.match(entry).groups() for entry in pip)
    assert {name.lower(): version for name, version in pinned.items()} == requirement_pins()
    assert len(pinned) == len(pip)  # nothing unpinned


def web_command() -> str:
    (line,) = [l for l in (ROOT / "Procfile").read_text().splitlines() if l.startswith("web:")]
    return line.removeprefix("web:").strip()


@pytest.mark.integration
def test_the_procfile_web_process_serves_on_the_port_the_platform_gives(models_dir, tmp_path, env_without_settings):
    port = server.free_port()
    environment = {**env_without_settings, "PORT": str(port), "HOST": "127.0.0.1", "WORKERS": "2",
                   "MODELS_DIR": str(models_dir),  # the platform's python (here the venv's) comes first on PATH
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env_without_settings.get('PATH', '')}"}
    log = open(tmp_path / "web.log", "wb")
    process = subprocess.Popen(["bash", "-c", web_command()], cwd=ROOT, env=environment, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "web.log").read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail(f"not ready on $PORT={port}:\n{(tmp_path / 'web.log').read_text()}")
        assert requests.post(f"http://127.0.0.1:{port}/predict", json={"Pregnancies": 1, "Glucose": 85,
                             "BloodPressure": 66, "SkinThickness": 29, "BMI": 26.6, "DiabetesPedigreeFunction": 0.351,
                             "Age": 31}, timeout=10).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group we started: bash, then gunicorn by exec
        process.wait(timeout=40)
        log.close()
