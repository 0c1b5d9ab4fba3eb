"""The artifact format: the only code that reads or writes model files.

A model version lives in ``<models_dir>/<name>/<version>/`` as ``model.skops`` plus
``metadata.json`` (and ``signature.json`` when the publisher signs). The metadata records the
sha256 of the model file, so a file that was tampered with or truncated is refused *before* it
is read, and the library versions that made it, so a model is never silently run under a
different scikit-learn.

Loading never runs code from the artifact: skops builds only trusted types (app/model/trust.py),
with signature verification configured an unsigned or wrongly signed version is refused before
its model file is read (app/model/signing.py), and pickles (``model.joblib``, the format before
skops) are refused unless ``ALLOW_PICKLE_MODELS`` says otherwise.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import joblib
import numpy
import pandas
import sklearn

from . import signing
from .trust import DEFAULT_TRUSTED_TYPES, SETTINGS_HINT, untrusted_in

FORMAT_VERSION = 1
MODEL_FILE = "model.skops"
PICKLE_FILE = "model.joblib"  # versions written before skops; read only with ALLOW_PICKLE_MODELS
METADATA_FILE = "metadata.json"
EXTRA_FILE_PATTERN = re.compile(r"^[a-z]+/[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")  # card/roc.svg: one folder deep
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_PATTERN = re.compile(r"^[1-9][0-9]{0,8}$")


class ArtifactError(Exception):
    """A model version that cannot be served; the message says why and what to do."""


class ArtifactNotFound(ArtifactError):
    pass


class ArtifactCorrupt(ArtifactError):
    pass


class ArtifactIncompatible(ArtifactError):
    pass


class ArtifactUntrusted(ArtifactError):
    """A version that could run code or make types nobody vouched for: refused unread."""


@dataclass(frozen=True)
class LoadPolicy:
    """What the loader accepts: the settings' trusted types, pickles or not, and the public keys
    versions must be signed with (None: signatures are not checked)."""
    trusted_types: frozenset[str] = DEFAULT_TRUSTED_TYPES
    allow_pickle: bool = False
    verify_keys: dict[str, Any] | None = None


DEFAULT_POLICY = LoadPolicy()


def load_policy(settings: dict[str, Any]) -> LoadPolicy:
    """The loader's policy from the settings (app/config.py); TrustError or SigningError for a
    file that cannot be read."""
    from .trust import trusted_types

    keys = signing.load_public_keys(settings["VERIFY_KEYS_FILE"]) if settings.get("VERIFY_KEYS_FILE") else None
    return LoadPolicy(trusted_types=trusted_types(settings.get("TRUSTED_TYPES", ()), settings.get("TRUSTED_TYPES_FILE")),
                      allow_pickle=bool(settings.get("ALLOW_PICKLE_MODELS")), verify_keys=keys)


def signing_key(settings: dict[str, Any]) -> Any:
    """The publisher's private key (SIGNING_KEY_FILE), or None to publish unsigned."""
    return signing.load_private_key(settings["SIGNING_KEY_FILE"]) if settings.get("SIGNING_KEY_FILE") else None


@dataclass(frozen=True)
class Artifact:
    name: str
    version: int
    path: Path
    metadata: dict[str, Any]
    model: Any = field(repr=False, default=None)


def runtime_versions() -> dict[str, str]:
    """Library versions that decide whether a pickled Pipeline behaves as it did in training."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid model name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_names(models_dir: Path | str) -> list[str]:
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and NAME_PATTERN.match(p.name))


def list_versions(models_dir: Path | str, name: str) -> list[int]:
    """Published versions, ascending; half-written folders (dot-prefixed) are not versions."""
    folder = Path(models_dir) / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name))


PIN_FILE = "pinned"  # models/<name>/pinned: the version to serve by default, for rollback


def version_stamp(folder: Path | str) -> tuple | None:
    """What changes when a version folder is replaced or its files rewritten: the digest of its
    metadata (which holds the model's sha256, so it names the model) and of its signature.
    A few kilobytes read per version: cheap enough to poll. None: no metadata."""
    stamp = []
    for name in (METADATA_FILE, signing.SIGNATURE_FILE):
        try:
            stamp.append(hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest())
        except OSError:
            if name == METADATA_FILE:
                return None
            stamp.append(None)
    return tuple(stamp)


def folder_state(models_dir: Path | str) -> tuple:
    """Everything under MODELS_DIR that decides what a server loads and serves: the models, their
    versions (each by its stamp) and their pins. Cheap (a metadata digest per version), so a server can
    look every few seconds for changes made by another replica (MODELS_POLL_INTERVAL)."""
    state = []
    for name in list_names(models_dir):
        folder = Path(models_dir) / name
        try:
            pin = (folder / PIN_FILE).read_bytes()
        except OSError:
            pin = None
        versions = tuple((version, version_stamp(folder / str(version))) for version in list_versions(models_dir, name))
        state.append((name, pin, versions))
    return tuple(state)


def read_pin(models_dir: Path | str, name: str) -> int | None:
    """The version an operator pinned ``name`` to, or None; a pin file that says nothing usable is an error."""
    path = Path(models_dir) / name / PIN_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtifactCorrupt(f"{path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ArtifactCorrupt(f"{path} should hold a version number, holds bytes that are not text; fix or delete it") from None
    if not VERSION_PATTERN.match(text):
        raise ArtifactCorrupt(f"{path} should hold a version number, holds {text[:20]!r}; fix or delete it")
    return int(text)


def write_pin(models_dir: Path | str, name: str, version: int | None) -> None:
    """Pin ``name`` to ``version`` (None removes the pin), atomically."""
    folder = Path(models_dir) / check_name(name)
    path = folder / PIN_FILE
    if version is None:
        path.unlink(missing_ok=True)
        return
    staging = folder / f".{PIN_FILE}.{secrets.token_hex(4)}"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(f"{version}\n")
        handle.flush()
        os.fsync(handle.fileno())  # a power cut leaves the old pin or the new one, never an empty file
    os.replace(staging, path)


def save(models_dir: Path | str, name: str, model: Any, metadata: dict[str, Any], signing_key: Any = None,
         first: int = 1, files: dict[str, bytes] | None = None) -> Artifact:
    """Publish ``model`` as the next version of ``name``, atomically.

    Everything is written into a hidden staging folder and then renamed into place, so a crash
    leaves no half version behind and a concurrent trainer can never overwrite a version: the
    rename fails if the version exists, and we move on to the next number. With a signing key,
    the metadata's exact bytes are signed (signature.json) before the rename. ``files`` are the
    version's other files (the model card: ``card/README.md``, ``card/roc.svg``), listed with their
    sha256 in the metadata's "files", so the signature covers them too (``read_file`` checks).
    """
    import skops.io as sio

    check_name(name)
    parent = Path(models_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        model_path = staging / MODEL_FILE
        _write_bytes(model_path, sio.dumps(model))
        record = dict(metadata)
        if files:
            record["files"] = _write_files(staging, files)
        record.update(
            format_version=FORMAT_VERSION,
            name=name,
            model_file=MODEL_FILE,
            model_format="skops",
            model_sha256=sha256_file(model_path),
            versions=runtime_versions(),
        )

        def finish(version: int) -> None:
            record["version"] = version
            _write_json(staging / METADATA_FILE, record)
            if signing_key is not None:
                _write_bytes(staging / signing.SIGNATURE_FILE,
                             signing.sign(signing_key, (staging / METADATA_FILE).read_bytes()))

        version = publish_folder(staging, parent, finish, first)
        return Artifact(name=name, version=version, path=parent / str(version), metadata=record, model=model)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_files(staging: Path, files: dict[str, bytes]) -> dict[str, str]:
    listed = {}
    for relative, data in sorted(files.items()):
        if not EXTRA_FILE_PATTERN.match(relative):
            raise ValueError(f"a version's file is named folder/name, got {relative!r}")
        path = staging / relative
        path.parent.mkdir(exist_ok=True)
        _write_bytes(path, data)
        listed[relative] = hashlib.sha256(data).hexdigest()
    return listed


def read_file(folder: Path | str, metadata: dict[str, Any], relative: str) -> bytes:
    """One of a version's other files (``card/roc.svg``), checked against the sha256 its metadata
    lists: ArtifactNotFound if it is not listed or not there, ArtifactCorrupt if it was changed."""
    listed = metadata.get("files") or {}
    expected = listed.get(relative) if isinstance(listed, dict) else None
    if not isinstance(expected, str) or not EXTRA_FILE_PATTERN.match(relative):
        raise ArtifactNotFound(f"{relative} is not one of this version's files")
    path = Path(folder) / relative
    try:
        data = path.read_bytes()
    except OSError:
        raise ArtifactNotFound(f"{path} is missing (the version lists it)") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ArtifactCorrupt(f"{path} was changed after the version was made (its sha256 does not match the metadata)")
    return data


def publish_folder(staging: Path, parent: Path, finish: Callable[[int], None] | None = None, first: int = 1) -> int:
    """Rename a complete staging folder to the next version number under ``parent``; returns it.

    The rename fails if that version exists (another publisher won it), and we move on to the
    next number, so two publishers at once get two versions and neither overwrites the other.
    ``finish`` writes what depends on the number (train.py's metadata) before each attempt;
    ``first`` is the lowest number to give (past deleted versions).
    """
    version = max(first, (list_versions(parent.parent, parent.name) or [0])[-1] + 1)
    while True:
        if finish is not None:
            finish(version)
        target = parent / str(version)
        try:
            os.rename(staging, target)  # fails if target exists and is not empty
        except OSError:
            if not target.exists():
                raise
            version += 1
            continue
        if (target / METADATA_FILE).exists():
            break
    _fsync_dir(parent)
    return version


def read_metadata(path: Path | str, data: bytes | None = None) -> dict[str, Any]:
    """The metadata of one version folder (or these bytes of it), checked for the fields the
    service relies on."""
    folder = Path(path)
    meta_path = folder / METADATA_FILE
    if data is None and not meta_path.is_file():
        raise ArtifactNotFound(f"{meta_path} is missing; retrain with: python train.py")
    try:
        metadata = json.loads((data if data is not None else meta_path.read_bytes()).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactCorrupt(f"{meta_path} is not readable JSON ({exc}); retrain with: python train.py") from exc
    if not isinstance(metadata, dict):
        raise ArtifactCorrupt(f"{meta_path} does not hold a JSON object; retrain with: python train.py")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ArtifactIncompatible(
            f"{meta_path} has artifact format {metadata.get('format_version')!r}, this service reads "
            f"format {FORMAT_VERSION}; retrain with: python train.py"
        )
    expected = {"name": str, "version": int, "model_sha256": str, "versions": dict, "schema": dict, "classes": list}
    wrong = [key for key, kind in expected.items() if not isinstance(metadata.get(key), kind)]
    if wrong:
        raise ArtifactCorrupt(f"{meta_path} lacks {', '.join(wrong)} (or has the wrong type); retrain with: python train.py")
    return metadata


def load(path: Path | str, policy: LoadPolicy = DEFAULT_POLICY) -> Artifact:
    """Verify, then read, one version folder.

    Order matters: the signature (when keys are configured), the library versions and the sha256
    are checked before the model file is read, and a skops file is read only after every type it
    would build has been found on the trusted list; nothing from the artifact decides what is trusted.
    """
    folder = Path(path)
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise ArtifactNotFound(f"{meta_path} is missing; retrain with: python train.py")
    metadata_bytes = meta_path.read_bytes()
    _check_signature(folder, metadata_bytes, policy)
    metadata = read_metadata(folder, metadata_bytes)
    _check_made_with(folder, metadata)
    model_path = _model_path(folder, metadata, policy)
    data = model_path.read_bytes()  # hash and read the same bytes: no swap in between
    _check_sha256(model_path, data, metadata)
    model = _read_skops(model_path, data, policy) if model_path.name == MODEL_FILE else _read_pickle(model_path, data)
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]
    if classes != metadata["classes"]:
        raise ArtifactCorrupt(f"{folder}: metadata lists classes {metadata['classes']}, the model has {classes}")
    return Artifact(
        name=metadata["name"], version=int(metadata["version"]), path=folder, metadata=metadata, model=model
    )


def problems(path: Path | str, policy: LoadPolicy) -> list[tuple[str, str]]:
    """Every problem ``load`` would stop at first that can be found without reading the model,
    as (part, problem) with part one of model, metadata, signature: an upload is told them all."""
    folder = Path(path)
    found: list[tuple[str, str]] = []
    meta_path = folder / METADATA_FILE
    if not (folder / MODEL_FILE).is_file():
        found.append(("model", f"missing: send the version's {MODEL_FILE}"))
    if not meta_path.is_file():
        return [*found, ("metadata", f"missing: send the version's {METADATA_FILE}")]
    metadata_bytes = meta_path.read_bytes()
    try:
        _check_signature(folder, metadata_bytes, policy)
    except ArtifactError as exc:
        found.append(("signature", str(exc)))
    try:
        metadata = read_metadata(folder, metadata_bytes)
    except ArtifactError as exc:
        return [*found, ("metadata", str(exc))]
    try:
        _check_made_with(folder, metadata)
    except ArtifactError as exc:
        found.append(("metadata", str(exc)))
    if metadata.get("model_file", PICKLE_FILE) != MODEL_FILE:
        found.append(("metadata", f"names the model file {str(metadata.get('model_file'))[:40]!r}; only {MODEL_FILE} "
                                  "versions are accepted over the network (pickles run code when loaded)"))
    elif (folder / MODEL_FILE).is_file():
        try:
            _check_sha256(folder / MODEL_FILE, (folder / MODEL_FILE).read_bytes(), metadata)
        except ArtifactError as exc:
            found.append(("model", str(exc)))
    listed = metadata.get("files") or {}
    for relative in (sorted(listed) if isinstance(listed, dict) else []):
        if (folder / relative).is_file():  # the card's files are optional (the model serves without them)
            try:
                read_file(folder, metadata, relative)
            except ArtifactError:
                found.append((relative, "differs from the sha256 the metadata lists"))
    extra = [str(p.relative_to(folder)) for p in folder.glob("*/*") if p.is_file()
             and str(p.relative_to(folder)) not in listed]
    found += [(relative, "not listed in the metadata's files") for relative in sorted(extra)]
    return found


def _check_signature(folder: Path, metadata_bytes: bytes, policy: LoadPolicy) -> None:
    if policy.verify_keys is None:
        return
    signature_path = folder / signing.SIGNATURE_FILE
    try:
        signing.verify(signature_path.read_bytes() if signature_path.is_file() else None, metadata_bytes,
                       policy.verify_keys)
    except signing.SignatureInvalid as exc:
        raise ArtifactUntrusted(f"{folder} is refused unread: {exc}") from None


def _check_made_with(folder: Path, metadata: dict[str, Any]) -> None:
    made_with = metadata["versions"].get("scikit-learn")
    if made_with != sklearn.__version__:
        raise ArtifactIncompatible(
            f"{folder} was trained with scikit-learn {made_with}, but {sklearn.__version__} is installed; "
            f"install scikit-learn=={made_with} or retrain with: python train.py"
        )


def _model_path(folder: Path, metadata: dict[str, Any], policy: LoadPolicy) -> Path:
    """The model file the metadata names, if the policy lets it be read and it is there."""
    file_name = metadata.get("model_file", PICKLE_FILE)
    if file_name not in (MODEL_FILE, PICKLE_FILE):
        raise ArtifactCorrupt(f"{folder / METADATA_FILE} names the model file {str(file_name)[:40]!r}; "
                              f"expected {MODEL_FILE}")
    model_path = folder / file_name
    if file_name == PICKLE_FILE and not policy.allow_pickle:
        raise ArtifactUntrusted(
            f"{model_path} is a pickle, which runs code when it is loaded; retrain it (python train.py), convert it "
            f"(python manage.py import {model_path} --name {metadata['name']}), or, for a file you trust, set "
            "ALLOW_PICKLE_MODELS=true (dangerous)")
    if not model_path.is_file():
        raise ArtifactNotFound(f"{model_path} is missing; retrain with: python train.py")
    return model_path


def _check_sha256(model_path: Path, data: bytes, metadata: dict[str, Any]) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != metadata["model_sha256"]:
        raise ArtifactCorrupt(
            f"{model_path} has sha256 {actual[:12]}..., but its metadata expects "
            f"{str(metadata['model_sha256'])[:12]}...: the file was changed or truncated; "
            "restore it or retrain with: python train.py"
        )


def _read_skops(model_path: Path, data: bytes, policy: LoadPolicy) -> Any:
    import skops.io as sio

    try:
        listed, refused = untrusted_in(data, policy.trusted_types)
    except Exception as exc:  # noqa: BLE001 - not a readable skops file
        raise ArtifactCorrupt(f"{model_path} is not a readable skops file ({type(exc).__name__}: {exc})") from None
    if refused:
        raise ArtifactUntrusted(f"{model_path} holds types nobody vouched for: {', '.join(refused)}; an operator "
                                f"who trusts them adds them to {SETTINGS_HINT}")
    try:
        return sio.loads(data, trusted=listed)
    except Exception as exc:  # noqa: BLE001 - any failure to build the model means the same thing here
        raise ArtifactCorrupt(f"{model_path} could not be read ({type(exc).__name__}: {exc})") from exc


def _read_pickle(model_path: Path, data: bytes) -> Any:
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise ArtifactCorrupt(f"{model_path} could not be unpickled ({type(exc).__name__}: {exc})") from exc


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _write_json(path: Path, record: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=2, sort_keys=False)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
