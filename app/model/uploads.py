"""A version received over the network: staged beside the versions, checked as at startup, published.

The parts (``model.skops``, ``metadata.json``, ``signature.json``) are written straight into a
hidden staging folder in ``models/<name>/`` (the same file system, so publishing is one rename),
checked exactly as the server checks a version at startup (signature, library versions, sha256,
trusted types, the contract, the compiled model against scikit-learn) plus a dry run of the
model's example through the serving path, and only then renamed to the next version number. A
crash, a refusal or a full disk leaves no version behind, and the staging folder is removed.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from . import artifacts, signing
from .errors import ArtifactRefused, InputError, InvalidInput
from .output import from_scikit_learn, rows_for
from .predict import predict
from .registry import LoadedModel, load_folder

PARTS = {"model": artifacts.MODEL_FILE, "metadata": artifacts.METADATA_FILE, "signature": signing.SIGNATURE_FILE}
# ... and one part per other file the metadata lists, named by its path: "card/roc.svg".


def extra_part(part: str) -> str | None:
    """Where an upload's part for one of the version's other files goes (its own name), or None."""
    return part if artifacts.EXTRA_FILE_PATTERN.match(part) else None
STAGING_PREFIX = ".upload-"
STALE_AFTER = 24 * 3600  # seconds: a staging folder this old was left by a crash


@contextlib.contextmanager
def staging(models_dir: Path | str, name: str) -> Iterator[Path]:
    """A fresh hidden folder in models/<name>/, removed on the way out unless it was published."""
    parent = Path(models_dir) / artifacts.check_name(name)
    new_model = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    sweep(parent)
    folder = parent / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir()
        yield folder
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        if new_model and not artifacts.list_versions(models_dir, name):  # a refused first version: no trace
            shutil.rmtree(parent, ignore_errors=True)


def sweep(parent: Path) -> None:
    """Remove staging folders a crashed upload or trainer left more than a day ago."""
    cutoff = time.time() - STALE_AFTER
    for entry in parent.iterdir():
        if entry.name.startswith((STAGING_PREFIX, ".staging-", ".deleted-")) and entry.is_dir():
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)


def check(folder: Path, name: str, policy: artifacts.LoadPolicy, compile_models: bool = True) -> LoadedModel:
    """The staged version, loaded as the server would load it; ArtifactRefused with every problem."""
    found = artifacts.problems(folder, policy)
    if found:
        raise ArtifactRefused([InputError(None, part, _for_client(problem, folder)) for part, problem in found])
    try:
        loaded = load_folder(folder, name, 0, policy, compile_models)
    except artifacts.ArtifactError as exc:
        raise ArtifactRefused([InputError(None, "model", _for_client(str(exc), folder))]) from None
    problem = dry_run(loaded)
    if problem is not None:
        raise ArtifactRefused([InputError(None, "example", problem)])
    return loaded


def _for_client(problem: str, folder: Path) -> str:
    """The loader's words without the server's staging path: the upload's part names instead."""
    return problem.replace(f"{folder}/", "").replace(str(folder), "the uploaded version")


def dry_run(model: LoadedModel) -> str | None:
    """The model answers its own example through the serving path, finitely, as scikit-learn does;
    None, or what went wrong."""
    example = model.schema.example()
    try:
        decoded = model.decoder.records([example])
        served = predict(model, decoded)
        direct = from_scikit_learn(model.model, rows_for(model.model, decoded.frame), model.task, model.classes)
    except InvalidInput as exc:
        return "the model's own example does not meet its input contract: " + "; ".join(
            f"{e.field}: {e.message}" for e in exc.errors)
    except Exception as exc:  # noqa: BLE001 - any failure here is the model failing on its own example
        return f"the model fails on its own example ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if model.is_regressor:
        if not np.all(np.isfinite(served.values)):
            return "the model answers its own example with a value that is not a finite number"
        if not np.allclose(served.values, direct.values, rtol=1e-9, atol=1e-9):
            return "the served answer to the model's example differs from scikit-learn's"
    elif not np.array_equal(served.winners, direct.winners):
        return "the served label for the model's example differs from scikit-learn's"
    elif served.probabilities is not None and not np.all(np.isfinite(served.probabilities)):
        return "the model answers its own example with probabilities that are not finite numbers"
    return None

