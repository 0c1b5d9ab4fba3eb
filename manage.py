"""Operate on published models: import one fitted elsewhere, list versions, pin, roll back, unpin.

    python manage.py import MODEL_FILE --name NAME [--sample CSV] [--target COLUMN] [--features A,B,...] [--trust TYPE]
    python manage.py keygen PRIVATE_KEY PUBLIC_KEY   # an Ed25519 key pair for signed versions
    python manage.py score --model NAME[:VERSION] INPUT OUTPUT [--engine local|spark] [--master URL]
                           [--id-column COL] [--errors PATH]   # score a CSV or Parquet file
    python manage.py worker [--burst]       # run the RQ worker for training jobs (JOBS_QUEUE_URL)
    python manage.py versions [NAME]
    python manage.py pin [NAME] VERSION   # serve VERSION by default (after a reload)
    python manage.py rollback [NAME]      # pin the version before the one served now
    python manage.py unpin [NAME]         # serve the newest version again

A pin is a file beside the versions (models/NAME/pinned), so it survives restarts and every
server reading the folder agrees. A running server picks it up on reload (make reload, which
sends HUP to gunicorn). MODEL_VERSION in the environment, when set, still wins for the default
model. NAME defaults to DEFAULT_MODEL, the folder to MODELS_DIR (app/config.py reads both).

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
import shlex
import signal
import sys
from pathlib import Path

from app import config
from app.model import artifacts
from app.model.registry import default_version
from app.model.signing import SigningError, generate_key_pair


def served_version(models_dir: str, name: str, settings: dict) -> int | None:
    """What a server reading this folder serves by default: the registry's rule, from the files."""
    return default_version(name, artifacts.list_versions(models_dir, name), artifacts.read_pin(models_dir, name),
                           settings["DEFAULT_MODEL"], settings["MODEL_VERSION"])


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
    from app.model.importing import ImportRefused, import_file

    features = [f for f in args.features.split(",")] if args.features is not None else None
    try:
        artifact = import_file(args.model_file, args.name, args.models_dir, sample=args.sample, target=args.target,
                               features=features, command=shlex.join(["python", "manage.py", *argv]),
                               trust=[*settings["TRUSTED_TYPES"], *args.trust],
                               signing_key=artifacts.signing_key(settings))
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
        version = int(version_text) if version_text else served_version(args.models_dir, name, settings)
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


def run(argv: list[str]) -> int:
    try:
        settings = config.load()
    except config.ConfigError as exc:
        raise CommandError(str(exc)) from None
    parser = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=settings["MODELS_DIR"])
    commands = parser.add_subparsers(dest="command", required=True)
    default_name = settings["DEFAULT_MODEL"]
    for command in ("versions", "rollback", "unpin"):
        commands.add_parser(command).add_argument("name", nargs="?", default=default_name)
    pin = commands.add_parser("pin", usage="manage.py pin [NAME] VERSION")
    pin.add_argument("words", nargs="+", metavar="[NAME] VERSION")
    imports = commands.add_parser("import", help="publish a model fitted elsewhere (joblib, pickle or skops file)")
    imports.add_argument("model_file", metavar="MODEL_FILE")
    imports.add_argument("--name", required=True, help="the model's name; the file becomes its next version")
    imports.add_argument("--sample", metavar="CSV", help="rows the model takes (test data, ideally): the types, ranges, "
                                                        "examples and categories of the input contract")
    imports.add_argument("--target", metavar="COLUMN", help="the sample's column with the true answers: test metrics")
    imports.add_argument("--features", metavar="A,B,...", help="the column names, in order, for a model fitted on an "
                                                                "array without names")
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
    if args.command == "worker":
        return worker(args, settings)
    if args.command == "score":
        return score(args, settings)
    if args.command == "import":
        return import_model(args, argv, settings)
    if args.command == "keygen":
        return keygen(args)
    if args.command == "pin":
        if len(args.words) > 2 or not args.words[-1].isascii() or not args.words[-1].isdigit():
            pin.error("give the version as a whole number, optionally after the model's name")
        args.name, args.version = (args.words[0] if len(args.words) == 2 else default_name), int(args.words[-1])

    try:
        artifacts.check_name(args.name)
        versions = artifacts.list_versions(args.models_dir, args.name)
        if not versions:
            raise CommandError(f"no versions of {args.name!r} in {args.models_dir}/")
        current = served_version(args.models_dir, args.name, settings)
        if args.command == "versions":
            pinned = artifacts.read_pin(args.models_dir, args.name)
            for version in versions:
                marks = [m for m, on in (("default", version == current), ("pinned", version == pinned)) if on]
                print(f"{args.name} {version}{'  (' + ', '.join(marks) + ')' if marks else ''}")
            return 0
        if args.command == "unpin":
            artifacts.write_pin(args.models_dir, args.name, None)
            print(f"{args.name}: unpinned; the newest version, {versions[-1]}, is the default after a reload")
            return 0
        if args.command == "pin":
            target = args.version
            if target not in versions:
                raise CommandError(f"{args.name} has no version {target}; its versions: {versions}")
        else:
            older = [v for v in versions if v < (current or 0)]
            if not older:
                raise CommandError(f"{args.name} {current} is the oldest version; nothing to roll back to")
            target = older[-1]
        artifacts.write_pin(args.models_dir, args.name, target)
        print(f"{args.name}: pinned to version {target} (was {current}); run make reload to serve it")
        if settings["MODEL_VERSION"] is not None and args.name == default_name:
            print("note: MODEL_VERSION is set in this environment and wins over the pin for the default model",
                  file=sys.stderr)
        return 0
    except (artifacts.ArtifactError, ValueError) as exc:
        raise CommandError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
