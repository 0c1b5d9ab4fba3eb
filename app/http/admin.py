"""Blueprint: the admin API, the model lifecycle over HTTP (admin keys only: app/gateway/).

Upload a signed version, promote one, roll back, delete one that is not served, retrain in a
job. Each change is made by the model core (app/model/lifecycle.py, uploads.py, app/jobs/), then
every worker is brought to it by a reload (gunicorn's master, on HUP, as ``make reload`` does) and
one audit line names the admin key's id (never the key), what changed, and when.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import shutil
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import parse_form_data

from .. import jobs
from ..jobs import runner
from ..jobs.training import DATA, FILES, csv_header, options
from ..model import artifacts, lifecycle, uploads
from ..model.errors import InputError, InvalidInput, LifecycleConflict, ModelNotFound
from ..model.registry import Registry, load_version
from .problems import Busy, InsufficientStorage, NotFound, MalformedRequest, PayloadTooLarge, UnsupportedMediaType

bp = Blueprint("admin", __name__)
audit_log = logging.getLogger("app.audit")
FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
RETRY_BUSY = 30  # seconds: Retry-After when every local job slot is taken


def registry() -> Registry:
    return current_app.extensions["registry"]


def settings() -> lifecycle.Settings:
    return lifecycle.Settings.of(current_app.config)


def admin_key() -> str | None:
    return request.environ.get("app.admin_key")


def audit(action: str, name: str, **fields: Any) -> None:
    """One line per change: who (the key's id), what, when (the log line's time)."""
    details = {"key": admin_key(), "action": action, "model": name, **fields}
    audit_log.info("audit: %s", " ".join(f"{k}={v}" for k, v in details.items() if v is not None),
                   extra={"audit": details})


def reload_servers() -> str:
    return current_app.extensions["reload"]()


def model_name(name: str) -> str:
    try:
        return artifacts.check_name(name)
    except ValueError as exc:
        raise MalformedRequest(str(exc)) from None


def flag(text: str | None, field: str) -> bool:
    if text is None or text.lower() in ("", "0", "false", "no"):
        return False
    if text.lower() in ("1", "true", "yes"):
        return True
    raise InvalidInput([InputError(None, field, f"expected true or false, got {text[:20]!r}")])


# ---- receiving files -----------------------------------------------------------------------------
def receive(folder: Path, names: dict[str, str], extra: Callable[[str], str | None] = lambda part: None
            ) -> tuple[MultiDict, set[str]]:
    """Parse a multipart body, writing each expected file part straight into ``folder`` under its
    name in ``names``, or the path ``extra`` gives it (no copy in /tmp); returns the text fields and
    the parts received."""
    limit = current_app.config["MAX_UPLOAD_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(too_large(limit))
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            f"send multipart/form-data with the parts {', '.join(names)}, got {request.mimetype or 'no Content-Type'}")
    opened: list[tuple[IO[bytes], Path]] = []

    def stream_factory(total_content_length, content_type, filename, content_length=None) -> IO[bytes]:
        path = folder / f".part-{len(opened)}"
        handle = open(path, "w+b")
        opened.append((handle, path))
        return handle

    try:
        _, form, files = parse_form_data(request.environ, stream_factory=stream_factory, max_content_length=limit,
                                         max_form_memory_size=1 << 20, silent=False)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(too_large(limit)) from None
    except ValueError as exc:
        raise MalformedRequest(f"the multipart body cannot be read: {exc}") from None
    try:
        targets = {part: names.get(part) or extra(part) for part in files}
        problems = [InputError(None, part, "unknown part; expected one of: " + ", ".join(names))
                    for part, target in targets.items() if target is None]
        problems += [InputError(None, part, f"sent {len(files.getlist(part))} times; send it once")
                     for part in targets if len(files.getlist(part)) > 1]
        if problems:
            raise InvalidInput(problems)
        for part, storage in files.items():
            storage.stream.flush()
            path = next(p for handle, p in opened if handle is storage.stream)
            (folder / targets[part]).parent.mkdir(exist_ok=True)
            path.rename(folder / targets[part])
        return form, set(files)
    finally:
        for handle, _ in opened:
            handle.close()


def too_large(limit: int) -> str:
    return f"the request body exceeds the limit of {limit} bytes (MAX_UPLOAD_LENGTH)"


@contextlib.contextmanager
def disk_errors(kept: str) -> Iterator[None]:
    """A full models volume is the client's 507, saying what was kept (``kept``), not a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in FULL_DISK:
            raise InsufficientStorage(f"the models volume is full ({exc.strerror}); {kept}; free space and retry") \
                from None
        raise


# ---- upload --------------------------------------------------------------------------------------
@bp.post("/models/<name>/versions")
def upload(name: str) -> tuple[Response, int, dict[str, str]]:
    name = model_name(name)
    config = current_app.config
    with disk_errors("nothing was kept"), uploads.staging(config["MODELS_DIR"], name) as folder:
        form, _ = receive(folder, uploads.PARTS, uploads.extra_part)
        unknown = [InputError(None, field, "unknown field; the only option is promote") for field in
                   [*form, *request.args] if field != "promote"]
        if unknown:
            raise InvalidInput(unknown)
        promote = flag(request.args.get("promote", form.get("promote")), "promote")
        loaded = uploads.check(folder, name, registry().policy, config["COMPILED_MODELS"])
        published = lifecycle.publish(settings(), name, folder, promote, admin_key())
    version = published.version
    default = lifecycle.served_version(settings(), name)
    audit("upload", name, version=version, promoted=promote, previous=published.previous,
          sha256=loaded.metadata["model_sha256"][:12])
    reloaded = reload_servers()
    meta = loaded.metadata
    body = {"name": name, "version": version, "promoted": default == version, "default_version": default,
            "reload": reloaded, "estimator": meta.get("estimator"), "task": loaded.task, "classes": loaded.classes,
            "created": meta.get("created"), "test_metrics": meta.get("test_metrics"), "backend": loaded.backend,
            "model_sha256": meta["model_sha256"], "url": f"/models/{name}/{version}"}
    return jsonify(body), 201, {"Location": f"/models/{name}/{version}"}


# ---- promote, roll back, delete ------------------------------------------------------------------
def check_servable(name: str, version: int) -> None:
    """A version only becomes the default if it loads: its verification failure is the answer."""
    found = registry()
    reason = found.failures.get(name, {}).get(version)
    if reason is None and version not in found.models.get(name, {}):
        if version not in artifacts.list_versions(found.models_dir, name):
            raise ModelNotFound(f"model {name!r} has no version {version}")
        try:  # published since this worker loaded (another replica, a job): check it now
            load_version(found.models_dir, name, version, found.policy, current_app.config["COMPILED_MODELS"])
        except artifacts.ArtifactError as exc:
            reason = str(exc)
    if reason is not None:
        raise LifecycleConflict(f"{name} {version} cannot be served, so it is not promoted: {reason}")


def changed(change: lifecycle.Change) -> Response:
    audit(change.action, change.name, version=change.version, previous=change.previous)
    return jsonify({**change.as_dict(), "reload": reload_servers()})


@bp.post("/models/<name>/promote")
def promote(name: str) -> Response:
    name = model_name(name)
    body = request.get_json(silent=True)
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput([InputError(None, "version", 'expected a JSON body like {"version": 3} with a version '
                                                        f"number, got {str(body)[:60]!r}")])
    check_servable(name, version)
    with disk_errors("nothing changed"):
        change = lifecycle.promote(settings(), name, version, admin_key())
    return changed(change)


@bp.post("/models/<name>/rollback")
def rollback(name: str) -> Response:
    name = model_name(name)
    target, _ = lifecycle.rollback_target(settings(), name)
    check_servable(name, target)
    with disk_errors("nothing changed"):
        change = lifecycle.rollback(settings(), name, admin_key())
    return changed(change)


@bp.delete("/models/<name>/versions/<int:version>")
def delete_version(name: str, version: int) -> Response:
    name = model_name(name)
    with disk_errors("nothing changed"):
        change = lifecycle.delete(settings(), name, version, admin_key())
    return changed(change)


# ---- retrain -------------------------------------------------------------------------------------
def receive_job(folder: Path, name: str) -> dict[str, Any]:
    """The training data and options, written into the job's folder with its spec and first state."""
    config = current_app.config
    if request.mimetype == "text/csv":
        limit = config["MAX_UPLOAD_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(too_large(limit))
        request.max_content_length = limit
        try:
            with open(folder / FILES[DATA], "wb") as stream:
                shutil.copyfileobj(request.stream, stream, 1 << 20)
        except RequestEntityTooLarge:
            raise PayloadTooLarge(too_large(limit)) from None
        fields, parts = MultiDict(), {DATA}
    else:
        fields, parts = receive(folder, FILES)
    header = csv_header(folder / FILES[DATA]) if DATA in parts else None
    if header is None:
        raise InvalidInput([InputError(None, DATA, "required: the training CSV with a header row, as a file part "
                                                   "named data (or the whole body as text/csv)")])
    given = MultiDict(request.args)
    for key, value in fields.items(multi=True):
        given.add(key, value)
    chosen = options({key: given.getlist(key) for key in given}, header)
    if chosen["promote"] == "always" and name == config["DEFAULT_MODEL"] and config["MODEL_VERSION"] is not None:
        raise LifecycleConflict(f"MODEL_VERSION={config['MODEL_VERSION']} pins {name} in the server's configuration, "
                                "so promote=always cannot be honoured; unset it, or train with promote=never")
    created = jobs.now()
    jobs.write_json(folder / jobs.SPEC_FILE, {
        "name": name, "options": chosen, "by": admin_key(), "created": created,
        "default_model": config["DEFAULT_MODEL"], "model_version": config["MODEL_VERSION"]})
    jobs.update_state(folder, name=name, state=jobs.QUEUED, created=created, by=admin_key(),
                      progress={"step": "queued", "fraction": 0.0})
    return chosen


@bp.post("/models/<name>/train")
def train(name: str) -> tuple[Response, int, dict[str, str]]:
    name = model_name(name)
    config = current_app.config
    with disk_errors("nothing was kept"):
        job_id, folder = jobs.new_job(config["MODELS_DIR"])
    try:
        with disk_errors("nothing was kept"):
            chosen = receive_job(folder, name)
            try:
                runner.submit(folder, config)
            except Exception as exc:
                from ..jobs.local import NoFreeSlot

                what = f"{exc}; retry when one is done, or set JOBS_QUEUE_URL to queue jobs on RQ" \
                    if isinstance(exc, NoFreeSlot) else f"the job queue cannot take the job ({type(exc).__name__}: {exc})"
                raise Busy(what, {"Retry-After": str(RETRY_BUSY)}) from None
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    audit("train", name, job=job_id, promote=chosen["promote"], estimator=chosen.get("estimator"))
    return (jsonify({"id": job_id, "name": name, "state": jobs.QUEUED, "url": f"/jobs/{job_id}",
                     "options": chosen}), 202, {"Location": f"/jobs/{job_id}"})


@bp.get("/jobs/<job_id>")
def show_job(job_id: str) -> Response:
    folder = jobs.job_folder(current_app.config["MODELS_DIR"], job_id)
    if folder is None:
        raise NotFound(f"no job {job_id[:40]!r}; jobs are kept for a week after they end")
    return jsonify(runner.describe(folder, current_app.config))
