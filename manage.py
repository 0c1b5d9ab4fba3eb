"""Operate on published models: import, list versions, pin, roll back, unpin, delete; here or on a server.

    python manage.py import MODEL_FILE --name NAME [--sample CSV] [--target COLUMN] [--features A,B,...] [--trust TYPE]
    python manage.py keygen PRIVATE_KEY PUBLIC_KEY   # an Ed25519 key pair for signed versions
    python manage.py score --model NAME[:VERSION] INPUT OUTPUT [--engine local|spark] [--master URL]
                           [--id-column COL] [--errors PATH]   # score a CSV or Parquet file
    python manage.py worker [--burst]       # run the RQ worker for training jobs (JOBS_QUEUE_URL)
    python manage.py [--url URL [--key-file PATH]] versions [NAME]
    python manage.py [--url URL [--key-file PATH]] pin [NAME] VERSION   # serve VERSION by default
    python manage.py [--url URL [--key-file PATH]] rollback [NAME]      # serve the version served before
    python manage.py [--url URL [--key-file PATH]] delete [NAME] VERSION  # remove a version that is not served
    python manage.py unpin [NAME]         # serve the newest version again (here only)
    python manage.py --url URL push FOLDER [--name NAME] [--promote]    # upload a version folder
    python manage.py --url URL train --data CSV --target COL [--test-data CSV] [--columns JSON]
                     [--estimator E] [--task T] [--test-size F] [--folds N] [--seed N] [--scoring S]
                     [--drop COL]... [--promote if-better|always|never] [--name NAME] [--wait]
    python manage.py --url URL job ID     # a training job's state, progress and result

Without --url the commands act on the folder (MODELS_DIR) through app/model/lifecycle.py, the
rules the admin API uses too. A pin is a file beside the versions (models/NAME/pinned), so it
survives restarts and every server reading the folder agrees; each change is noted in
models/NAME/history.jsonl, which is how rollback knows the version served before. A running server
picks local changes up on reload (make reload, which sends HUP to gunicorn). MODEL_VERSION in the
environment, when set, pins the default model and refuses pins and rollbacks of it. NAME defaults
to DEFAULT_MODEL, the folder to MODELS_DIR (app/config.py reads both).

With --url URL (e.g. http://127.0.0.1:8000) the commands act on that server through its admin API,
which reloads its workers itself. The admin key (one of the server's ADMIN_API_KEYS) is read from
the file --key-file names, else from the environment variable ADMIN_API_KEY; it is sent as
``Authorization: Bearer`` and never printed. ``versions`` takes a prediction key too. ``push``
uploads a version folder (model.skops, metadata.json, signature.json when present and the card's files), not served
until pinned unless --promote; ``train`` uploads a CSV and retrains there in a job (with --wait:
follows it, progress on stderr, exit code 0 when it succeeds, 1 when it fails). ``unpin`` and the
local-only commands (import, keygen, score, worker) refuse --url.

``import`` publishes a fitted estimator or Pipeline saved with joblib, pickle or skops as the next
version of NAME (app/model/importing.py); unpickling runs the file's code, so import only files
you trust. Every refusal is one ``error:`` line and exit code 2, with nothing written.

``score`` predicts every row of a file with the same artifact, input rules and compiled model as
the service (app/scoring/). Rows with problems go to the errors file (default: OUTPUT's name with
``.errors`` before the suffix) with their row numbers and the API's words. Exit code 0: every row
scored; 1: some rows are in the errors file; 2: nothing was scored (a bad option, file or model);
130: interrupted, nothing written.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from app import config
from app.model.signing import SigningError, generate_key_pair

if TYPE_CHECKING:
    from app.model import lifecycle

ADMIN_KEY_VARIABLE = "ADMIN_API_KEY"
LOCAL_ONLY = ("import", "keygen", "score", "worker")
REMOTE_ONLY = ("push", "train", "job")
TIMEOUT = 60  # seconds for one request (an upload is checked and dry-run before the answer)
POLL_INTERVAL = 1.0  # seconds between GET /jobs/<id> with train --wait
CHUNK = 1 << 16
# app/model/uploads.py's PARTS: the upload's parts and their files, named here so that the --url
# commands do not import scikit-learn (app/model/artifacts.py does; a test checks they agree)
UPLOAD_PARTS = {"model": "model.skops", "metadata": "metadata.json", "signature": "signature.json"}


def local_settings(args: argparse.Namespace, settings: dict) -> lifecycle.Settings:
    from app.model import lifecycle

    return lifecycle.Settings(Path(args.models_dir), settings["DEFAULT_MODEL"], settings["MODEL_VERSION"])


class CommandError(Exception):
    """One line for the person at the terminal; exit code 2."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def import_model(args: argparse.Namespace, argv: list[str], settings: dict) -> int:
    from app.model import artifacts
    from app.model.importing import ImportRefused, import_file

    from app.model.class_names import parse_class_names

    features = [f for f in args.features.split(",")] if args.features is not None else None
    try:
        class_names = parse_class_names(args.class_names) if args.class_names else None
    except ValueError as exc:
        raise CommandError(f"--class-names: {exc}") from None
    try:
        artifact = import_file(args.model_file, args.name, args.models_dir, sample=args.sample, target=args.target,
                               features=features, command=shlex.join(["python", "manage.py", *argv]),
                               trust=[*settings["TRUSTED_TYPES"], *args.trust],
                               signing_key=artifacts.signing_key(settings), class_names=class_names)
    except (ImportRefused, SigningError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
    metadata = artifact.metadata
    print(f"imported {args.model_file} as {artifact.name} version {artifact.version} "
          f"({metadata['estimator']}, {metadata['task']}), served by "
          f"{'numpy (' + metadata['fast_path']['kind'] + ')' if metadata['fast_path']['backend'] == 'numpy' else 'scikit-learn'}")
    metrics = metadata.get("test_metrics")
    if metrics:
        shown = {k: metrics[k] for k in ("accuracy", "roc_auc", "rmse", "mae", "r2") if metrics.get(k) is not None}
        print(f"on the sample's {metrics['rows']} rows: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    print(f"written to {artifact.path}; run make reload to serve it")
    return 0


def keygen(args: argparse.Namespace) -> int:
    try:
        identity = generate_key_pair(args.private_key, args.public_key)
    except SigningError as exc:
        raise CommandError(str(exc)) from None
    print(f"key {identity}: private key in {args.private_key} (keep it with whoever publishes models: "
          f"SIGNING_KEY_FILE), public key in {args.public_key} (append it to the server's VERIFY_KEYS_FILE)")
    return 0


def score(args: argparse.Namespace, settings: dict) -> int:
    from app.model import artifacts, lifecycle
    from app.model.errors import InvalidInput
    from app.model.registry import load_version
    from app.scoring.files import FileError, TableSource, output_format

    name, _, version_text = args.model.partition(":")
    name = name or settings["DEFAULT_MODEL"]
    if version_text and not (version_text.isascii() and version_text.isdigit()):
        raise CommandError(f"--model {args.model}: give the version as a whole number, as in {name}:3")
    errors_path = args.errors or default_errors_path(args.output)
    paths = [Path(p).resolve() for p in (args.input, args.output, errors_path)]
    if len(set(paths)) < 3:
        raise CommandError("INPUT, OUTPUT and the errors file must be three different files")
    signal.signal(signal.SIGTERM, _interrupt)  # kill or a timeout: clean up as for Ctrl-C
    try:
        artifacts.check_name(name)
        for path in (args.output, errors_path):
            output_format(path)
        if args.engine == "local":
            source = TableSource(args.input)  # refuse a missing or unreadable input before loading the model
        versions = artifacts.list_versions(args.models_dir, name)
        version = (int(version_text) if version_text
                   else lifecycle.served_version(local_settings(args, settings), name))
        if version is None or version not in versions:
            raise CommandError(f"model {name!r} has no version {version}; its versions: {versions}" if versions
                               else f"no versions of {name!r} in {args.models_dir}/")
        policy = artifacts.load_policy(settings)
        model = load_version(args.models_dir, name, version, policy, settings["COMPILED_MODELS"])
        if args.engine == "spark":
            from app.scoring import spark
            summary = spark.score(model, args.models_dir, args.input, args.output, errors_path, args.id_column,
                                  master=args.master, policy=policy)
        else:
            from app.scoring import local
            with progress_bar(args.quiet) as advance:
                summary = local.score(model, source, args.output, errors_path, args.id_column, advance)
    except InvalidInput as exc:
        problems = "; ".join(f"{e.field + ': ' if e.field else ''}{e.message}" for e in exc.errors)
        raise CommandError(f"{args.input}: {problems}") from None
    except (FileError, artifacts.ArtifactError, SigningError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:  # a full disk, a folder where the output goes: nothing was moved into place
        where = f": {exc.filename}" if exc.filename else ""
        raise CommandError(f"{exc.strerror or exc}{where}; nothing written") from None
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        return 130
    print(summary.line())
    return 1 if summary.failed else 0


def worker(args: argparse.Namespace, settings: dict) -> int:
    """RQ's worker on the training queue; it needs the models volume and the server's settings."""
    if not settings["JOBS_QUEUE_URL"]:
        raise CommandError("JOBS_QUEUE_URL is not set: give the Redis the servers enqueue training jobs on, "
                           "e.g. JOBS_QUEUE_URL=redis://redis:6379/1")
    from app.jobs.queue import work
    from app.logs import configure_logging

    configure_logging(settings["LOG_LEVEL"], settings["LOG_FORMAT"])
    try:
        work(settings["JOBS_QUEUE_URL"], burst=args.burst)
    except Exception as exc:  # noqa: BLE001 - Redis unreachable, a bad URL: one line
        raise CommandError(f"the worker stopped: {type(exc).__name__}: {exc}") from None
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def default_errors_path(output: str) -> str:
    """scores.csv -> scores.errors.csv; scores.parquet -> scores.errors.parquet."""
    head, dot, suffix = output.rstrip("/").rpartition(".")
    return f"{head}.errors.{suffix}" if dot else f"{output}.errors.csv"


@contextlib.contextmanager
def progress_bar(quiet: bool):
    """Rows and rows/s on stderr while a terminal watches (tqdm); nothing in a pipe or with --quiet."""
    from tqdm import tqdm

    with tqdm(unit=" rows", unit_scale=True, disable=True if quiet else None, file=sys.stderr,
              desc="scoring", mininterval=0.5) as bar:
        yield bar.update


# ---- the lifecycle, here: app/model/lifecycle.py on the folder ------------------------------------
def local_lifecycle(args: argparse.Namespace, settings: dict) -> int:
    from app.model import artifacts, lifecycle
    from app.model.errors import LifecycleConflict, ModelNotFound

    where = local_settings(args, settings)
    try:
        artifacts.check_name(args.name)
        versions = artifacts.list_versions(where.models_dir, args.name)
        if not versions:  # checked first: the lifecycle's lock would make the model's folder
            raise CommandError(f"no versions of {args.name!r} in {args.models_dir}/")
        if args.command == "versions":
            current = lifecycle.served_version(where, args.name)
            pinned = artifacts.read_pin(where.models_dir, args.name)
            for version in versions:
                marks = [m for m, on in (("default", version == current), ("pinned", version == pinned)) if on]
                print(f"{args.name} {version}{'  (' + ', '.join(marks) + ')' if marks else ''}")
            return 0
        if args.command == "unpin":
            change = lifecycle.unpin(where, args.name)
            print(f"{args.name}: unpinned; the newest version, {change.version}, is the default after a reload")
            configured_note(args.name, settings)
            return 0
        if args.command == "delete":
            change = lifecycle.delete(where, args.name, args.version)
            print(f"{args.name}: version {change.version} deleted (version {change.previous} stays the default)")
            return 0
        if args.command == "pin":
            change = lifecycle.promote(where, args.name, args.version)
        else:
            change = lifecycle.rollback(where, args.name)
        print(f"{args.name}: pinned to version {change.version} (was {change.previous}); run make reload to serve it")
        return 0
    except (LifecycleConflict, ModelNotFound, artifacts.ArtifactError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{exc.strerror or exc}: {exc.filename or args.models_dir}") from None


def configured_note(name: str, settings: dict) -> None:
    if settings["MODEL_VERSION"] is not None and name == settings["DEFAULT_MODEL"]:
        print("note: MODEL_VERSION is set in this environment and wins over the pin for the default model",
              file=sys.stderr)


# ---- the lifecycle on a server: its admin API ----------------------------------------------------
class Server:
    """The admin API at ``url`` over urllib; every failure is a CommandError of one line."""

    def __init__(self, url: str, key: str | None):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CommandError(f"--url {url}: give the server's address, as in http://127.0.0.1:8000")
        self.url = url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             expect: tuple[int, ...] = (200,)) -> dict[str, Any]:
        """The JSON answer to one request; ``body`` is bytes, an iterable of bytes (with a
        Content-Length in ``headers``) or a dict sent as JSON."""
        headers = {"Accept": "application/json, application/problem+json", **(headers or {})}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        where = self.url + path
        request = urllib.request.Request(where, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, text = exc.code, exc.read()
        except urllib.error.URLError as exc:
            reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                reason = f"no answer within {TIMEOUT} s"
            raise CommandError(f"cannot reach {self.url}: {reason}") from None
        except (TimeoutError, socket.timeout):
            raise CommandError(f"{method} {where}: no answer within {TIMEOUT} s") from None
        except (ConnectionError, OSError) as exc:  # reset or closed mid-answer
            raise CommandError(f"{method} {where}: {exc.strerror or exc}") from None
        try:
            answer = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if status not in expect:
            raise CommandError(self.refusal(method, where, status, answer, text))
        if not isinstance(answer, dict):
            raise CommandError(f"{method} {where} answered {status} without JSON "
                               f"({text[:60].decode(errors='replace')!r}); is --url the model server?")
        return answer

    def refusal(self, method: str, where: str, status: int, answer: Any, text: bytes) -> str:
        if not isinstance(answer, dict) or not isinstance(answer.get("detail"), str):
            return (f"{method} {where} answered {status} without a problem document "
                    f"({text[:60].decode(errors='replace')!r}); is --url the model server?")
        line = f"{status} {answer.get('title') or ''}: {answer['detail']}".replace(" :", ":")
        items = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
        if items:
            line += ": " + "; ".join(f"{e['field'] + ': ' if e.get('field') else ''}{e.get('problem')}"
                                     for e in items)
        if status == 401 and not self.key:
            line += f" (no admin key given: set {ADMIN_KEY_VARIABLE} or --key-file)"
        return " ".join(line.split())


def admin_key(key_file: str | None) -> str | None:
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"--key-file {key_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"--key-file {key_file}: not a text file") from None
        key = text.strip()
        if not key or len(key.split()) != 1:
            raise CommandError(f"--key-file {key_file}: expected one key on one line")
        return key
    return os.environ.get(ADMIN_KEY_VARIABLE, "").strip() or None


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


class Multipart:
    """A multipart/form-data body streamed from files (never read whole), with its length known."""

    def __init__(self, fields: list[tuple[str, str]], files: list[tuple[str, Path, str]]):
        self.boundary = "manage-py-" + secrets.token_hex(16)
        self.pieces: list[bytes | Path] = []
        for name, value in fields:
            self.pieces.append(self.head(name, None, None) + value.encode() + b"\r\n")
        for name, path, content_type in files:
            self.pieces += [self.head(name, path.name, content_type), path, b"\r\n"]
        self.pieces.append(f"--{self.boundary}--\r\n".encode())

    def head(self, name: str, filename: str | None, content_type: str | None) -> bytes:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        lines = [f"--{self.boundary}", f"Content-Disposition: {disposition}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @property
    def headers(self) -> dict[str, str]:
        length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in self.pieces)
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}", "Content-Length": str(length)}

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if isinstance(piece, Path):
                with open(piece, "rb") as stream:
                    while chunk := stream.read(CHUNK):
                        yield chunk
            else:
                yield piece


def readable(path: str, option: str) -> Path:
    found = Path(path)
    if not found.is_file():
        raise CommandError(f"{option} {path}: no such file")
    try:
        with open(found, "rb"):
            pass
    except OSError as exc:
        raise CommandError(f"{option} {path}: {exc.strerror or exc}") from None
    return found


def remote(args: argparse.Namespace, settings: dict) -> int:
    server = Server(args.url, admin_key(args.key_file))
    if args.command == "job":
        return show_job(server, args.id, server.call("GET", f"/jobs/{quoted(args.id)}"))
    if args.command == "push":
        return push(server, args)
    if args.command == "train":
        return train_remote(server, args)
    name = quoted(args.name)
    if args.command == "versions":
        model = server.call("GET", f"/models/{name}")
        versions, default = model.get("versions") or [], model.get("default_version")
        for version in versions:
            print(f"{args.name} {version}{'  (default)' if version == default else ''}")
        return 0
    if args.command == "pin":
        change = server.call("POST", f"/models/{name}/promote", {"version": args.version})
        print(f"{args.name}: serving version {change['version']} (was {change['previous']}) on {server.url}")
    elif args.command == "rollback":
        change = server.call("POST", f"/models/{name}/rollback")
        print(f"{args.name}: rolled back to version {change['version']} (was {change['previous']}) on {server.url}")
    else:
        change = server.call("DELETE", f"/models/{name}/versions/{args.version}")
        print(f"{args.name}: version {change['version']} deleted on {server.url} "
              f"(version {change['previous']} stays the default)")
    return 0


def listed_files(metadata: Path) -> list[str]:
    """The version's other files (its model card) its metadata lists: each is a part of its own."""
    try:
        listed = json.loads(metadata.read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError, AttributeError):
        return []  # the server names what is wrong with the metadata
    return sorted(listed) if isinstance(listed, dict) else []


def push(server: Server, args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CommandError(f"{args.folder}: no such folder; give a version's folder, as in models/NAME/3")
    parts = [(part, folder / filename) for part, filename in UPLOAD_PARTS.items()]
    missing = [path.name for part, path in parts[:2] if not path.is_file()]
    if missing:
        raise CommandError(f"{args.folder} has no {' or '.join(missing)}; give a version's folder, "
                           "as in models/NAME/3")
    name = args.name
    if name is None:
        metadata = folder / UPLOAD_PARTS["metadata"]
        try:
            name = json.loads(metadata.read_text(encoding="utf-8"))["name"]
        except (OSError, ValueError, KeyError, TypeError):
            raise CommandError(f"{metadata} names no model; give --name") from None
        if not isinstance(name, str):
            raise CommandError(f"{metadata} names no model; give --name")
    files = [(part, readable(str(path), part), "application/octet-stream" if part == "model" else "application/json")
             for part, path in parts if path.is_file()]
    files += [(relative, readable(str(folder / relative), relative), "application/octet-stream")
              for relative in listed_files(folder / UPLOAD_PARTS["metadata"])]
    body = Multipart([], files)
    query = "?promote=true" if args.promote else ""
    answer = server.call("POST", f"/models/{quoted(name)}/versions{query}", body, body.headers, expect=(201,))
    version = answer["version"]
    if answer.get("promoted"):
        print(f"{name}: version {version} uploaded and served on {server.url}")
    else:
        print(f"{name}: version {version} uploaded (not served; promote it with manage.py --url {server.url} "
              f"pin {name} {version})")
    return 0


def train_remote(server: Server, args: argparse.Namespace) -> int:
    fields = [(option, str(value)) for option, value in
              (("target", args.target), ("task", args.task), ("estimator", args.estimator),
               ("test_size", args.test_size), ("folds", args.folds), ("seed", args.seed),
               ("scoring", args.scoring), ("promote", args.promote), ("class_names", args.class_names))
               if value is not None]
    fields += [("drop", column) for column in args.drop]
    files = [(part, readable(path, option), content_type) for part, path, option, content_type in
             (("data", args.data, "--data", "text/csv"), ("test_data", args.test_data, "--test-data", "text/csv"),
              ("columns", args.columns, "--columns", "application/json")) if path is not None]
    body = Multipart(fields, files)
    job = server.call("POST", f"/models/{quoted(args.name)}/train", body, body.headers, expect=(202,))
    if not args.wait:
        print(f"{args.name}: training job {job['id']} queued; follow it with manage.py --url {server.url} "
              f"job {job['id']}")
        return 0
    print(f"{args.name}: training job {job['id']} queued", file=sys.stderr)
    shown = None
    while True:
        state = server.call("GET", f"/jobs/{quoted(job['id'])}")
        if state.get("state") in ("succeeded", "failed"):
            return show_job(server, job["id"], state)
        line = progress_line(state)
        if line != shown:
            print(f"job {job['id']}: {line}", file=sys.stderr)
            shown = line
        time.sleep(POLL_INTERVAL)


def progress_line(state: dict[str, Any]) -> str:
    progress = state.get("progress") or {}
    fraction = progress.get("fraction")
    percent = f" ({fraction:.0%})" if isinstance(fraction, (int, float)) else ""
    return f"{state.get('state')}: {progress.get('step') or 'waiting'}{percent}"


def show_job(server: Server, job_id: str, state: dict[str, Any]) -> int:
    """The job's state in one line: exit code 0, 1 when it failed."""
    if state.get("state") == "failed":
        print(f"error: training job {job_id} for {state.get('name')} failed: {state.get('error')}", file=sys.stderr)
        return 1
    if state.get("state") != "succeeded" or not isinstance(state.get("result"), dict):
        print(f"{state.get('name')}: training job {job_id} {progress_line(state)}")
        return 0
    result = state["result"]
    metrics = result.get("test_metrics") or {}
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("accuracy", "roc_auc", "rmse", "mae", "r2")
                      if isinstance(metrics.get(k), (int, float)))
    print(f"{result.get('name')}: version {result.get('version')} trained"
          f"{' (' + shown + ')' if shown else ''}; {result.get('reason')}; "
          f"version {result.get('served_version')} is served")
    return 0


# ---- the command line ----------------------------------------------------------------------------
def name_and_version(words: list[str], default_name: str, parser: argparse.ArgumentParser) -> tuple[str, int]:
    if len(words) > 2 or not words[-1].isascii() or not words[-1].isdigit():
        parser.error("give the version as a whole number, optionally after the model's name")
    return (words[0] if len(words) == 2 else default_name), int(words[-1])


def run(argv: list[str]) -> int:
    try:
        settings = config.load()
    except config.ConfigError as exc:
        raise CommandError(str(exc)) from None
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=settings["MODELS_DIR"])
    parser.add_argument("--url", metavar="URL", help="act on this server through its admin API "
                                                     "(versions, pin, rollback, delete, push, train, job)")
    parser.add_argument("--key-file", metavar="PATH", help=f"a file holding the admin key (default: the "
                                                           f"environment variable {ADMIN_KEY_VARIABLE})")
    commands = parser.add_subparsers(dest="command", required=True)
    default_name = settings["DEFAULT_MODEL"]
    for command in ("versions", "rollback", "unpin"):
        commands.add_parser(command).add_argument("name", nargs="?", default=default_name)
    with_version = {}
    for command in ("pin", "delete"):
        with_version[command] = commands.add_parser(command, usage=f"manage.py {command} [NAME] VERSION")
        with_version[command].add_argument("words", nargs="+", metavar="[NAME] VERSION")
    pushes = commands.add_parser("push", help="upload a version folder to --url (model.skops, metadata.json, "
                                              "signature.json)")
    pushes.add_argument("folder", metavar="FOLDER", help="a version's folder, as in models/NAME/3")
    pushes.add_argument("--name", help="the model to add it to (default: the name in its metadata.json)")
    pushes.add_argument("--promote", action="store_true", help="serve it at once")
    trains = commands.add_parser("train", help="retrain on --url's server from a CSV, in a job")
    trains.add_argument("--data", required=True, metavar="CSV")
    trains.add_argument("--target", required=True, metavar="COL")
    trains.add_argument("--test-data", metavar="CSV")
    trains.add_argument("--columns", metavar="JSON")
    for option in ("estimator", "task", "test-size", "folds", "seed", "scoring", "class-names"):
        trains.add_argument(f"--{option}")
    trains.add_argument("--drop", action="append", default=[], metavar="COL")
    trains.add_argument("--promote", choices=("if-better", "always", "never"))
    trains.add_argument("--name", default=default_name)
    trains.add_argument("--wait", action="store_true", help="follow the job until it ends")
    commands.add_parser("job", help="a training job's state on --url's server").add_argument("id", metavar="ID")
    imports = commands.add_parser("import", help="publish a model fitted elsewhere (joblib, pickle or skops file)")
    imports.add_argument("model_file", metavar="MODEL_FILE")
    imports.add_argument("--name", required=True, help="the model's name; the file becomes its next version")
    imports.add_argument("--sample", metavar="CSV", help="rows the model takes (test data, ideally): the types, ranges, "
                                                        "examples and categories of the input contract")
    imports.add_argument("--target", metavar="COLUMN", help="the sample's column with the true answers: test metrics")
    imports.add_argument("--features", metavar="A,B,...", help="the column names, in order, for a model fitted on an "
                                                                "array without names")
    imports.add_argument("--class-names", metavar="LABEL=NAME,...",
                         help='display names of the classes for people, e.g. "0=stays,1=churns"')
    imports.add_argument("--trust", action="append", default=[], metavar="TYPE",
                         help="a type the model holds that you vouch for (repeatable); the server needs it in "
                              "TRUSTED_TYPES too")
    keys = commands.add_parser("keygen", help="make an Ed25519 key pair for signing versions")
    keys.add_argument("private_key", metavar="PRIVATE_KEY", help="where the private key goes (SIGNING_KEY_FILE)")
    keys.add_argument("public_key", metavar="PUBLIC_KEY", help="where the public key goes (add it to VERIFY_KEYS_FILE)")
    scores = commands.add_parser("score", help="score a CSV or Parquet file with a model, as POST /predict would")
    scores.add_argument("input", metavar="INPUT", help="a .csv or .parquet file (spark: any path Spark reads)")
    scores.add_argument("output", metavar="OUTPUT", help="where the predictions go: .csv or .parquet")
    scores.add_argument("--model", default=default_name, metavar="NAME[:VERSION]",
                        help=f"the model, and the version (default: {default_name} at the version served)")
    scores.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="local: stream the file here (default); spark: run on PySpark")
    scores.add_argument("--master", default="local[*]", metavar="URL", help="Spark's master (default: local[*])")
    scores.add_argument("--id-column", action="append", default=[], metavar="COL",
                        help="a column copied to the output beside each prediction (repeatable; default: the row number)")
    scores.add_argument("--errors", metavar="PATH", help="the errors file (default: OUTPUT with .errors before its suffix)")
    scores.add_argument("--quiet", action="store_true", help="no progress bar")
    workers = commands.add_parser("worker", help="run an RQ worker for the admin API's training jobs (JOBS_QUEUE_URL)")
    workers.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    args = parser.parse_args(argv)
    if args.command in with_version:
        args.name, args.version = name_and_version(args.words, default_name, with_version[args.command])
    if args.url is not None:
        if args.command in LOCAL_ONLY:
            raise CommandError(f"{args.command} works on this machine's files only; drop --url")
        if args.command == "unpin":
            raise CommandError(f"unpin has no admin API; pin the version to serve instead: manage.py --url "
                               f"{args.url} pin {args.name} VERSION")
        return remote(args, settings)
    if args.command in REMOTE_ONLY:
        raise CommandError(f"{args.command} acts on a server: give its address with --url, as in "
                           f"manage.py --url http://127.0.0.1:8000 {args.command} ...")
    if args.command == "worker":
        return worker(args, settings)
    if args.command == "score":
        return score(args, settings)
    if args.command == "import":
        return import_model(args, argv, settings)
    if args.command == "keygen":
        return keygen(args)
    return local_lifecycle(args, settings)


if __name__ == "__main__":
    sys.exit(main())
