"""Operate on published models: list versions, pin a default version, roll back, unpin.

    python manage.py versions [NAME]
    python manage.py pin NAME VERSION     # serve VERSION by default (after a reload)
    python manage.py rollback [NAME]      # pin the version before the one served now
    python manage.py unpin [NAME]         # serve the newest version again

A pin is a file beside the versions (models/NAME/pinned), so it survives restarts and every
server reading the folder agrees. A running server picks it up on reload (make reload, which
sends HUP to gunicorn). MODEL_VERSION in the environment, when set, still wins for the default
model. NAME defaults to DEFAULT_MODEL, the folder to MODELS_DIR.
"""
from __future__ import annotations

import argparse
import os
import sys

from app import artifacts


def served_version(models_dir: str, name: str) -> int | None:
    """What a server reading this folder serves by default: the configuration's pin, the file's, or the newest."""
    configured = os.environ.get("MODEL_VERSION", "").strip()
    if configured.isdigit() and name == os.environ.get("DEFAULT_MODEL", "pima-diabetes"):
        return int(configured)
    return artifacts.read_pin(models_dir, name) or (artifacts.list_versions(models_dir, name) or [None])[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=os.environ.get("MODELS_DIR", "models"))
    commands = parser.add_subparsers(dest="command", required=True)
    default_name = os.environ.get("DEFAULT_MODEL", "pima-diabetes")
    for command in ("versions", "rollback", "unpin"):
        commands.add_parser(command).add_argument("name", nargs="?", default=default_name)
    pin = commands.add_parser("pin")
    pin.add_argument("name")
    pin.add_argument("version", type=int)
    args = parser.parse_args(argv)

    try:
        artifacts.check_name(args.name)
        versions = artifacts.list_versions(args.models_dir, args.name)
        if not versions:
            raise SystemExit(f"error: no versions of {args.name!r} in {args.models_dir}/")
        current = served_version(args.models_dir, args.name)
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
                raise SystemExit(f"error: {args.name} has no version {target}; its versions: {versions}")
        else:
            older = [v for v in versions if v < (current or 0)]
            if not older:
                raise SystemExit(f"error: {args.name} {current} is the oldest version; nothing to roll back to")
            target = older[-1]
        artifacts.write_pin(args.models_dir, args.name, target)
        print(f"{args.name}: pinned to version {target} (was {current}); run make reload to serve it")
        if os.environ.get("MODEL_VERSION") and args.name == default_name:
            print("note: MODEL_VERSION is set in this environment and wins over the pin for the default model",
                  file=sys.stderr)
        return 0
    except (artifacts.ArtifactError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
