"""Every model version under MODELS_DIR, loaded and verified once at startup.

The default model is ``DEFAULT_MODEL`` at its pinned version or, unpinned, its newest published
version. A pin comes from the configuration (``MODEL_VERSION``) or, for rollback, from the
``pinned`` file an operator writes beside the versions (``manage.py pin``); the configuration wins.
A version that fails verification is never skipped silently: asking for it answers 503 with the
reason, and if it is the default the service is not ready.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import artifacts, explain
from .class_names import check_class_names
from .compiled import CompiledPipeline, Unsupported, compile_pipeline, synthetic_rows, verify
from .contract import Schema
from .decoding import Decoder
from .output import CLASSIFICATION, REGRESSION, takes_frame
from .errors import ModelNotFound, ModelUnavailable

log = logging.getLogger("app.registry")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    model: Any
    schema: Schema
    classes: list[Any]
    metadata: dict[str, Any]
    decoder: Decoder
    compiled: CompiledPipeline | None = None
    backend: str = "scikit-learn"  # what answers: "numpy (<kind>)" or "scikit-learn (<why>)"
    task: str = CLASSIFICATION
    takes_frame: bool = True  # scikit-learn is given a DataFrame (fitted with column names) or an array
    explainer: "explain.Explainer | explain.Unexplained | None" = None  # built at load (app/model/explain/)

    @property
    def is_regressor(self) -> bool:
        return self.task == REGRESSION

    @property
    def tag(self) -> str:
        return f"{self.name}/{self.version}"


def check_features(model: Any, schema: Schema) -> None:
    """The schema must name exactly the columns the Pipeline was fitted on."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and sorted(map(str, fitted)) != sorted(schema.names):
        raise artifacts.ArtifactCorrupt(
            f"the schema's fields ({', '.join(schema.names)}) differ from the model's ({', '.join(map(str, fitted))})")


def default_version(name: str, versions: list[int], pin_file: int | None, default_name: str,
                    configured: int | None) -> int | None:
    """The version served when none is asked for: MODEL_VERSION for the default model, then the
    pin file, then the newest. manage.py answers "which version is served" with the same rule."""
    if name == default_name and configured is not None:
        return configured
    if pin_file is not None:
        return pin_file
    return versions[-1] if versions else None


def load_version(models_dir: Path | str, name: str, version: int, policy: artifacts.LoadPolicy = artifacts.DEFAULT_POLICY,
                 compile_models: bool = True) -> LoadedModel:
    """One version, verified and compiled as the server loads it (batch scoring loads just this)."""
    return load_folder(Path(models_dir) / name / str(version), name, version, policy, compile_models)


def load_folder(folder: Path, name: str, version: int, policy: artifacts.LoadPolicy = artifacts.DEFAULT_POLICY,
                compile_models: bool = True) -> LoadedModel:
    """A version folder, wherever it is (an upload is checked in its staging folder)."""
    try:
        artifact = artifacts.load(folder, policy)
        schema = Schema.from_dict(artifact.metadata["schema"])
        check_features(artifact.model, schema)
        task = artifact.metadata.get("task", CLASSIFICATION)
        classes = list(artifact.metadata["classes"])
        check_class_names(artifact.metadata.get("class_names"), classes, task)  # shown on the page: checked too
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # metadata of the wrong shape
        raise artifacts.ArtifactCorrupt(f"its metadata is not usable ({type(exc).__name__}: {exc}); retrain it") from None
    program, backend = (compile_checked(artifact.model, schema, task, classes) if compile_models
                        else (None, "scikit-learn (COMPILED_MODELS off)"))
    loaded = LoadedModel(name=name, version=version, model=artifact.model, schema=schema, classes=classes,
                         metadata=artifact.metadata, decoder=Decoder(schema), compiled=program, backend=backend,
                         task=task, takes_frame=takes_frame(artifact.model))
    loaded = replace(loaded, explainer=explain.explainer_for(loaded))
    log.info("model %s/%s loaded from %s, served by %s, explained by %s", name, version, artifact.path, backend,
             getattr(loaded.explainer, "method", "nothing"))
    return loaded


def compile_checked(model: Any, schema: Schema, task: str, classes: list[Any]) -> tuple[CompiledPipeline | None, str]:
    """The compiled backend, only if it matches scikit-learn on synthetic valid rows right now."""
    try:
        program = compile_pipeline(model, schema)
        verify(program, model, schema, synthetic_rows(schema), task, classes)
    except Unsupported as exc:
        return None, f"scikit-learn (not compiled: {exc})"
    except Exception as exc:  # noqa: BLE001 - Mismatch, or any failure: scikit-learn answers
        log.warning("the compiled model disagrees with scikit-learn (%s); serving with scikit-learn", exc)
        return None, f"scikit-learn (compiled model disagreed: {exc})"
    return program, f"numpy ({program.kind})"


class Registry:
    def __init__(self, models_dir: Path, default_name: str, pinned_version: int | None = None,
                 compile_models: bool = True, policy: artifacts.LoadPolicy = artifacts.DEFAULT_POLICY):
        self.policy = policy
        self.models_dir = Path(models_dir)
        self.default_name = default_name
        self.pinned_version = pinned_version
        self.compile_models = compile_models
        self.models: dict[str, dict[int, LoadedModel]] = {}
        self.failures: dict[str, dict[int, str]] = {}
        self.pins: dict[str, int] = {}  # from the pinned files
        self.pin_errors: dict[str, str] = {}
        self._resolved: dict[tuple[str | None, int | None], LoadedModel] = {}  # get() on every prediction
        self.stamps: dict[tuple[str, int], tuple | None] = {}  # each loaded version's files, as found
        self.state: tuple = ()  # MODELS_DIR as it was when loading began (artifacts.folder_state)

    @classmethod
    def load(cls, models_dir: Path | str, default_name: str, pinned_version: int | None = None,
             compile_models: bool = True, policy: artifacts.LoadPolicy = artifacts.DEFAULT_POLICY,
             previous: "Registry | None" = None) -> "Registry":
        """Every version under ``models_dir``. A reload passes the registry it replaces: versions
        whose files are unchanged (same stamp, same policy) are taken from it rather than read and
        verified again, so a reload after one new version costs that version's load."""
        registry = cls(Path(models_dir), default_name, pinned_version, compile_models, policy)
        registry.state = artifacts.folder_state(models_dir)
        reusable = previous is not None and previous.policy == policy and previous.compile_models == compile_models \
            and previous.models_dir == registry.models_dir
        for name in artifacts.list_names(models_dir):
            for version in artifacts.list_versions(models_dir, name):
                stamp = artifacts.version_stamp(registry.models_dir / name / str(version))
                kept = previous.models.get(name, {}).get(version) if reusable else None
                if kept is not None and stamp is not None and previous.stamps.get((name, version)) == stamp:
                    registry.models.setdefault(name, {})[version] = kept
                else:
                    registry._load_one(name, version)
                registry.stamps[(name, version)] = stamp
            registry._read_pin(name)
        return registry

    def _read_pin(self, name: str) -> None:
        try:
            pinned = artifacts.read_pin(self.models_dir, name)
        except artifacts.ArtifactError as exc:  # which version to serve is unknown: none is, by default
            self.pin_errors[name] = str(exc)
            log.error("model %s has no default version: %s", name, exc)
            return
        if pinned is not None:
            self.pins[name] = pinned
            log.info("model %s pinned to version %s by %s/%s/%s", name, pinned, self.models_dir, name,
                     artifacts.PIN_FILE)

    def _load_one(self, name: str, version: int) -> None:
        try:
            loaded = load_version(self.models_dir, name, version, self.policy, self.compile_models)
        except artifacts.ArtifactError as exc:
            self._fail(name, version, str(exc))
            return
        self.models.setdefault(name, {})[version] = loaded

    def _fail(self, name: str, version: int, reason: str) -> None:
        self.failures.setdefault(name, {})[version] = reason
        log.error("model %s/%s not loaded: %s", name, version, reason)

    def versions(self, name: str) -> list[int]:
        """Every published version of ``name``, loaded or not."""
        return sorted(set(self.models.get(name, {})) | set(self.failures.get(name, {})))

    def _pinned_by_config(self, name: str) -> bool:
        """MODEL_VERSION pins the default model, and wins over its pin file."""
        return name == self.default_name and self.pinned_version is not None

    def default_version(self, name: str) -> int | None:
        return default_version(name, self.versions(name), self.pins.get(name), self.default_name, self.pinned_version)

    def get(self, name: str | None = None, version: int | None = None) -> LoadedModel:
        found = self._resolved.get((name, version))
        if found is None:
            found = self._resolved[(name, version)] = self._resolve(name, version)
        return found

    def _resolve(self, name: str | None, version: int | None) -> LoadedModel:
        name = name or self.default_name
        if not self.versions(name):
            known = ", ".join(self.names()) or "none"
            raise ModelNotFound(f"no model named {name!r}; loaded models: {known}")
        if version is None and name in self.pin_errors and not self._pinned_by_config(name):
            raise ModelUnavailable(f"model {name} has no default version: {self.pin_errors[name]}")
        asked = version is not None
        version = version if asked else self.default_version(name)
        if version in self.models.get(name, {}):
            return self.models[name][version]
        if version in self.failures.get(name, {}):
            raise ModelUnavailable(f"model {name}/{version} could not be loaded: {self.failures[name][version]}")
        available = ", ".join(str(v) for v in self.versions(name))
        pinned_by = ""
        if self.pins.get(name) == version and not self._pinned_by_config(name):
            pinned_by = f" (pinned by {self.models_dir / name / artifacts.PIN_FILE})"
        message = f"model {name!r} has no version {version}{pinned_by}; its versions are: {available}"
        # A version the client named is its mistake (404); a default pinned to a missing version is
        # the server's (503): a balancer then retries the request on another replica.
        raise ModelNotFound(message) if asked else ModelUnavailable(message)

    def names(self) -> list[str]:
        return sorted(set(self.models) | set(self.failures))

    def unready_reason(self) -> str | None:
        """Why the default model cannot be served, or None when it can."""
        try:
            self.get()
        except (ModelNotFound, ModelUnavailable) as exc:
            if not self.names():
                return (f"no model found in {self.models_dir}/; train one with: python train.py "
                        "(or make train), or set MODELS_DIR to where your models are")
            return exc.detail
        return None

    def read_file(self, name: str, version: int, relative: str) -> bytes:
        """A loaded version's other file (``card/roc.svg``), checked against the sha256 the loaded
        metadata lists: ModelNotFound if there is no such file, or it is missing or was changed."""
        loaded = self.get(name, version)
        try:
            return artifacts.read_file(self.models_dir / name / str(version), loaded.metadata, relative)
        except artifacts.ArtifactError as exc:
            raise ModelNotFound(f"model {name}/{version}: {exc}") from None

    def describe(self, name: str) -> dict[str, Any]:
        if name not in self.names():
            raise ModelNotFound(f"no model named {name!r}; loaded models: {', '.join(self.names()) or 'none'}")
        return {
            "name": name,
            "default_version": self.default_version(name),
            "versions": [self.describe_version(name, v) for v in self.versions(name)],
        }

    def describe_version(self, name: str, version: int) -> dict[str, Any]:
        if version in self.failures.get(name, {}):
            return {"name": name, "version": version, "loaded": False, "reason": self.failures[name][version]}
        loaded = self.get(name, version)
        meta = loaded.metadata
        return {
            "name": name,
            "version": version,
            "loaded": True,
            "created": meta.get("created"),
            "task": loaded.task,
            "estimator": meta.get("estimator"),
            "target": meta.get("target"),
            "target_range": meta.get("target_range"),
            "classes": loaded.classes,
            "class_names": meta.get("class_names"),
            "schema": meta["schema"],
            "example": loaded.schema.example(),
            "cv": meta.get("cv"),
            "test_metrics": meta.get("test_metrics"),
            "training_data": meta.get("training_data"),
            "libraries": meta.get("versions"),
            "backend": loaded.backend,
            "explanations": loaded.explainer.describe() if loaded.explainer is not None else None,
            "model_sha256": meta.get("model_sha256"),
            "command": meta.get("command"),
            "card": card_links(name, version, meta.get("card"), meta.get("files") or {}),
        }


def card_links(name: str, version: int, summary: dict[str, Any] | None, files: dict[str, str]) -> dict[str, Any] | None:
    """The card's summary with where its files are served (the page is the version's own URL)."""
    if not summary:
        return None
    base = f"/models/{name}/{version}/card/"
    return {**summary, "markdown": base + "README.md" if "card/README.md" in files else None,
            "plots": [{**plot, "url": base + plot["file"]} for plot in summary.get("plots", [])]}
