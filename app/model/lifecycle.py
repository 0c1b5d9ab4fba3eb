"""Which versions exist and which one is served: the core under manage.py and the admin API.

A model's default version is its pin file (``models/<name>/pinned``) or, with none, its newest
version; ``MODEL_VERSION`` in the configuration wins for the default model. ``promote`` writes the
pin; ``rollback`` pins the version served before the current one, read from the model's history
(``models/<name>/history.jsonl``, one line per change); ``delete`` removes a version that is not
served. A version published without promotion first pins the one served now when nothing is
pinned (``keep_serving``), so it is not served until promoted. Changes to one model are made under
a lock file, so two at once cannot interleave; reloading the servers is the caller's (HUP, or
MODELS_POLL_INTERVAL on other replicas).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from . import artifacts
from .errors import LifecycleConflict, ModelNotFound
from .registry import default_version

log = logging.getLogger("app.lifecycle")

HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Change:
    action: str  # promote, rollback, delete, publish
    name: str
    version: int
    previous: int | None  # the version served by default before the change
    by: str | None = None  # the id of the admin key (never the key), or None from the command line
    at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    """What decides the served version besides the files: app/config.py's DEFAULT_MODEL and MODEL_VERSION."""
    models_dir: Path
    default_name: str
    configured: int | None = None

    @classmethod
    def of(cls, config: Any) -> "Settings":
        return cls(Path(config["MODELS_DIR"]), config["DEFAULT_MODEL"], config["MODEL_VERSION"])


def served_version(settings: Settings, name: str) -> int | None:
    """What a server reading the folder serves by default: the registry's rule, from the files.
    A pin file that says nothing usable is a conflict that promoting a version repairs."""
    try:
        pin = artifacts.read_pin(settings.models_dir, name)
    except artifacts.ArtifactError as exc:
        raise LifecycleConflict(f"{exc}; promote a version to replace it") from None
    return default_version(name, artifacts.list_versions(settings.models_dir, name), pin, settings.default_name,
                           settings.configured)


def _served_before(settings: Settings, name: str) -> int | None:
    """The served version, or None when a broken pin says nothing (a promotion replaces it)."""
    try:
        return served_version(settings, name)
    except LifecycleConflict:
        return None


@contextlib.contextmanager
def locked(settings: Settings, name: str) -> Iterator[None]:
    """One change to a model at a time, across workers, processes and (on a shared volume) hosts."""
    folder = settings.models_dir / artifacts.check_name(name)
    if not folder.is_dir():  # no lock file for a mistyped name: nothing to change there
        raise ModelNotFound(f"no model named {name!r} in {settings.models_dir}/")
    with open(folder / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(settings: Settings, change: Change) -> Change:
    """Append the change to the model's history: one line, written with one O_APPEND write.

    Written after the change itself, and never undoing it: a history line that cannot be written
    (a full disk) is logged, and rollback then falls back to the newest older version."""
    line = (json.dumps(change.as_dict(), separators=(",", ":")) + "\n").encode()
    try:
        descriptor = os.open(settings.models_dir / change.name / HISTORY_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                             0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        log.error("%s %s/%s done, but its history line was not written: %s", change.action, change.name,
                  change.version, exc)
    return change


def history(settings: Settings, name: str) -> list[dict[str, Any]]:
    """The model's changes, oldest first; a line that does not parse (a torn write) is skipped."""
    try:
        text = (settings.models_dir / name / HISTORY_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _versions(settings: Settings, name: str) -> list[int]:
    versions = artifacts.list_versions(settings.models_dir, artifacts.check_name(name))
    if not versions:
        raise ModelNotFound(f"no model named {name!r} in {settings.models_dir}/")
    return versions


def _check_exists(settings: Settings, name: str, version: int) -> None:
    versions = _versions(settings, name)
    if version not in versions:
        raise ModelNotFound(f"model {name!r} has no version {version}; its versions are: "
                            f"{', '.join(map(str, versions))}")


def _remove(settings: Settings, name: str, version: int) -> None:
    """A version's folder, renamed out of sight first, so no reader sees half of it. Call it under ``locked``."""
    folder = settings.models_dir / name
    doomed = folder / f".deleted-{version}-{secrets.token_hex(4)}"
    os.rename(folder / str(version), doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _check_not_configured(settings: Settings, name: str) -> None:
    if name == settings.default_name and settings.configured is not None:
        raise LifecycleConflict(f"MODEL_VERSION={settings.configured} pins {name} in the server's configuration, "
                                "and wins over promotions; unset it to manage the default version here")


def promote(settings: Settings, name: str, version: int, by: str | None = None, action: str = "promote") -> Change:
    """Serve ``version`` by default (after a reload): write the pin, note it in the history."""
    with locked(settings, name):
        _check_exists(settings, name, version)
        _check_not_configured(settings, name)
        previous = _served_before(settings, name)
        artifacts.write_pin(settings.models_dir, name, version)
        return _record(settings, Change(action, name, version, previous, by, _now()))


def publish(settings: Settings, name: str, staging: Path, promote: bool, by: str | None = None) -> Change:
    """Rename a checked staging folder in models/<name>/ to the next version, and serve it by
    default only if ``promote``: one locked step, so nothing is published that a refusal would
    contradict. The first version of a new model is its default whatever ``promote`` says."""
    with locked(settings, name):
        if promote:
            _check_not_configured(settings, name)
        previous = _served_before(settings, name) if artifacts.list_versions(settings.models_dir, name) else None
        if not promote:
            keep_serving(settings, name)
        version = artifacts.publish_folder(staging, settings.models_dir / name, first=next_number(settings, name))
        if promote:
            artifacts.write_pin(settings.models_dir, name, version)
        published = _record(settings, Change("publish", name, version, previous, by, _now()))
        if promote:
            _record(settings, Change("promote", name, version, previous, by, _now()))
        return published


def next_number(settings: Settings, name: str) -> int:
    """Past every version the model ever had (the history remembers deleted ones): a number,
    once deleted, is never given to another version, so name/version always means one artifact."""
    seen = [entry.get("version") for entry in history(settings, name)]
    return max([0, *artifacts.list_versions(settings.models_dir, name), *(v for v in seen if isinstance(v, int))]) + 1


def rollback_target(settings: Settings, name: str) -> tuple[int, int | None]:
    """(the version to serve again, the one served now): the version the current one was promoted
    from, as the history says; without history, the newest version older than the current one."""
    versions = _versions(settings, name)
    current = served_version(settings, name)
    for entry in reversed(history(settings, name)):
        if entry.get("action") in ("promote", "publish") and entry.get("version") == current:
            previous = entry.get("previous")
            if isinstance(previous, int) and previous in versions and previous != current:
                return previous, current
            break
    older = [v for v in versions if v < (current or 0)]
    if not older:
        raise LifecycleConflict(f"{name} {current} is the oldest version and was not promoted from another; "
                                "nothing to roll back to")
    return older[-1], current


def rollback(settings: Settings, name: str, by: str | None = None) -> Change:
    with locked(settings, name):
        _check_not_configured(settings, name)
        target, _ = rollback_target(settings, name)
    return promote(settings, name, target, by, action="rollback")


def unpin(settings: Settings, name: str, by: str | None = None) -> Change:
    """Serve the newest version again."""
    with locked(settings, name):
        versions = _versions(settings, name)
        previous = served_version(settings, name)
        artifacts.write_pin(settings.models_dir, name, None)
        return _record(settings, Change("unpin", name, versions[-1], previous, by, _now()))


def delete(settings: Settings, name: str, version: int, by: str | None = None) -> Change:
    """Remove a version that is not served: renamed out of sight first, so no reader sees half of it."""
    with locked(settings, name):
        _check_exists(settings, name, version)
        current = served_version(settings, name)
        if version == current:
            raise LifecycleConflict(f"{name} {version} is the version served by default; promote another one "
                                    "first, then delete it")
        _remove(settings, name, version)
        return _record(settings, Change("delete", name, version, current, by, _now()))


def keep_serving(settings: Settings, name: str) -> int | None:
    """Before publishing a version that is not to be served yet: with nothing pinned the newest
    version is served, so pin the one served now. Call it under ``locked``; returns the version it
    pinned, or None when it did not have to."""
    if name == settings.default_name and settings.configured is not None:
        return None
    current = served_version(settings, name)
    if current is not None and artifacts.read_pin(settings.models_dir, name) is None:
        artifacts.write_pin(settings.models_dir, name, current)
        return current
    return None


def undo_keep_serving(settings: Settings, name: str, pinned: int | None) -> None:
    """A job that failed takes back the pin its ``keep_serving`` wrote, unless someone changed it since."""
    if pinned is None:
        return
    with locked(settings, name):
        with contextlib.suppress(artifacts.ArtifactError):
            if artifacts.read_pin(settings.models_dir, name) == pinned:
                artifacts.write_pin(settings.models_dir, name, None)


def discard(settings: Settings, name: str, version: int, by: str | None = None) -> Change:
    """Remove a version a job has just published and that does not load, served or not (it is a
    new model's only version): the job's own undo, not an operator's delete."""
    with locked(settings, name):
        _remove(settings, name, version)
        return _record(settings, Change("discard", name, version, None, by, _now()))


def note_published(settings: Settings, name: str, version: int, by: str | None, previous: int | None) -> Change:
    """The history's line for a new version (promoted or not)."""
    return _record(settings, Change("publish", name, version, previous, by, _now()))
