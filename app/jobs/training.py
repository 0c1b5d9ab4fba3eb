"""One training job, start to end: what POST /models/<name>/train asked, as train.py does it.

``options`` checks the request's fields (every problem at once, in the API's words) before a job
exists; ``run`` is what a local job process or an RQ worker executes: train and publish with
app/model/training.py, load the new version as a server would (a version that does not load is
removed again), compare it with the served version on the job's held-out rows, and promote it when
asked to (``promote=always``) or when it is better there (``promote=if-better``, the default). The
metric is the log loss of the probabilities for classifiers (lower is better; accuracy for a served
classifier without probabilities) and the RMSE for regressors. A failure leaves the service as it
was: the served version is untouched, and the job says why it failed.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import shutil
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .. import config
from ..master import request_reload
from ..model.class_names import parse_class_names
from ..model.errors import InputError
from ..model.training import ESTIMATORS, SCORINGS, TASKS
from . import FAILED, RUNNING, SPEC_FILE, SUCCEEDED, read_json, update_state

log = logging.getLogger("app.jobs")
PROMOTE_CHOICES = ("if-better", "always", "never")
DATA, TEST_DATA, COLUMNS = "data", "test_data", "columns"  # the request's file parts
FILES = {DATA: "data.csv", TEST_DATA: "test.csv", COLUMNS: "columns.json"}
MAX_FOLDS = 20


def _choice(choices: Sequence[str]):
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}; got {text[:40]!r}")
        return text
    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a fraction between 0 and 1, got {text[:40]!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"expected a fraction between 0 and 1, got {value:g}")
    return value


def _whole(low: int, high: int):
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"expected a whole number from {low} to {high}, got {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value}")
        return value
    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a column name, got an empty value")
    return text


# train.py's options, by the name a request gives them (a form field or a query parameter)
OPTIONS = {
    "target": _text,
    "task": _choice(TASKS),
    "estimator": _choice(ESTIMATORS),
    "test_size": _fraction,
    "folds": _whole(2, MAX_FOLDS),
    "seed": _whole(0, 2**32 - 1),
    "scoring": _choice(SCORINGS),
    "drop": _text,  # repeatable
    "promote": _choice(PROMOTE_CHOICES),
    "class_names": parse_class_names,  # 0=no diabetes,1=diabetes
}


def options(fields: Mapping[str, Sequence[str]], header: Sequence[str] | None) -> dict[str, Any]:
    """The job's options from the request's fields; InvalidInput-ready errors for every problem.

    ``header`` is the training CSV's first row, so a target or dropped column that is not there is
    refused now rather than after a wait.
    """
    from ..model.errors import InvalidInput

    errors: list[InputError] = []
    chosen: dict[str, Any] = {"drop": [], "promote": "if-better"}
    for name, values in fields.items():
        if name not in OPTIONS:
            errors.append(InputError(None, name, f"unknown option; expected one of: {', '.join(OPTIONS)}"))
            continue
        if name != "drop" and len(values) > 1:
            errors.append(InputError(None, name, f"given {len(values)} times; give it once"))
            continue
        for value in values:
            try:
                parsed = OPTIONS[name](value)
            except ValueError as exc:
                errors.append(InputError(None, name, str(exc)))
                continue
            if name == "drop":
                chosen["drop"].append(parsed)
            else:
                chosen[name] = parsed
    if "target" not in chosen and not any(e.field == "target" for e in errors):
        errors.append(InputError(None, "target", "required: the column of the CSV to predict"))
    if header is not None:
        columns = set(header)
        if "target" in chosen and chosen["target"] not in columns:
            errors.append(InputError(None, "target", f"the training CSV has no column {chosen['target']!r}; its "
                                                     f"columns are: {', '.join(header)[:500]}"))
        for column in chosen["drop"]:
            if column not in columns:
                errors.append(InputError(None, "drop", f"the training CSV has no column {column!r}"))
    if errors:
        raise InvalidInput(errors)
    return chosen


def csv_header(path: Path) -> list[str] | None:
    """The first row of a CSV file, or None when it has none."""
    with open(path, encoding="utf-8", errors="replace", newline="") as stream:
        first = next(csv.reader(io.StringIO(stream.readline())), None)
    return [c.strip() for c in first] if first else None


# ---- the job itself ---------------------------------------------------------------------------------
def run(folder: str | Path, release: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the job in ``folder`` (MODELS_DIR/.jobs/<id>); its state says how it ended. ``release``
    (a local job's slot) is called before the final state is written, so a client that sees the job
    finished can start the next one at once."""
    folder = Path(folder)
    spec = read_json(folder / SPEC_FILE)
    update_state(folder, state=RUNNING, progress={"step": "reading the data", "fraction": 0.0})
    try:
        result = _train_and_decide(folder, spec)
        final = {"state": SUCCEEDED, "progress": {"step": "done", "fraction": 1.0}, "result": result}
    except Exception as exc:  # noqa: BLE001 - every failure ends the job, never the server
        from ..model.training import TrainingError

        expected = isinstance(exc, (TrainingError, ValueError, OSError))
        if not expected:
            log.error("training job %s failed:\n%s", folder.name, traceback.format_exc())
        message = str(exc) if expected else f"{type(exc).__name__}: {exc}"
        final = {"state": FAILED, "error": message.splitlines()[0][:2000] if message else type(exc).__name__}
    if release is not None:
        release()
    request_reload()  # local jobs: the server loads the new version (or notices nothing changed)
    return update_state(folder, **final)


def _train_and_decide(folder: Path, spec: dict[str, Any]) -> dict[str, Any]:
    from ..model import artifacts, lifecycle

    settings = config.load()
    models_dir = folder.parent.parent
    name = spec["name"]
    where = lifecycle.Settings(models_dir, spec["default_model"], spec["model_version"])
    new_model = not (models_dir / name).is_dir()
    (models_dir / name).mkdir(exist_ok=True)  # a new model's first version
    with lifecycle.locked(where, name):
        held = lifecycle.keep_serving(where, name)  # the new version is not served until this job says so
    try:
        return _train_held(folder, spec, settings, where)
    except BaseException:  # a failed job leaves the model as it found it: no pin of its own, no empty folder
        lifecycle.undo_keep_serving(where, name, held)
        if new_model and not artifacts.list_versions(models_dir, name):
            shutil.rmtree(models_dir / name, ignore_errors=True)
        raise


def _train_held(folder: Path, spec: dict[str, Any], settings: dict[str, Any], where) -> dict[str, Any]:
    from ..model import artifacts, lifecycle
    from ..model.registry import load_version
    from ..model.training import TrainingOptions, train

    models_dir, name, chosen = where.models_dir, spec["name"], spec["options"]
    served = lifecycle.served_version(where, name) if artifacts.list_versions(models_dir, name) else None

    def fits_done(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            update_state(folder, progress={"step": f"grid search: {done}/{total} fits",
                                           "fraction": round(0.05 + 0.85 * done / total, 3)})

    trained = train(TrainingOptions(
        data=folder / FILES[DATA], target=chosen["target"], name=name,
        test_data=folder / FILES[TEST_DATA] if (folder / FILES[TEST_DATA]).is_file() else None,
        test_size=chosen.get("test_size"), estimator=chosen.get("estimator"), task=chosen.get("task"),
        folds=chosen.get("folds", 5), seed=chosen.get("seed", 42), scoring=chosen.get("scoring"),
        drop=chosen["drop"], columns=folder / FILES[COLUMNS] if (folder / FILES[COLUMNS]).is_file() else None,
        models_dir=models_dir, command=f"POST /models/{name}/train (job {folder.name})",
        progress=lambda message: log.info("job %s: %s", folder.name, message), fits_done=fits_done,
        signing_key=artifacts.signing_key(settings), first_version=lifecycle.next_number(where, name),
        class_names=chosen.get("class_names")))
    version = trained.artifact.version
    update_state(folder, progress={"step": "checking the new version as the server loads it", "fraction": 0.92})
    policy = artifacts.load_policy(settings)
    try:
        fresh = load_version(models_dir, name, version, policy, settings["COMPILED_MODELS"])
    except artifacts.ArtifactError as exc:
        lifecycle.discard(where, name, version, spec.get("by"))
        raise ValueError(f"the new version would not load on the server, so it was removed: {exc}") from None
    comparison = None
    if served is not None and chosen["promote"] != "always":
        update_state(folder, progress={"step": f"comparing with version {served} on the held-out rows", "fraction": 0.95})
        comparison = compare(fresh, load_version(models_dir, name, served, policy, settings["COMPILED_MODELS"]),
                             trained.held_out)
    promote, reason = decide(chosen["promote"], served, comparison)
    lifecycle.note_published(where, name, version, spec.get("by"), served)
    if promote:
        lifecycle.promote(where, name, version, spec.get("by"))
    log.info("job %s: %s version %s published; %s", folder.name, name, version, reason)
    return {"name": name, "version": version, "promoted": promote, "reason": reason, "comparison": comparison,
            "served_version": lifecycle.served_version(where, name), "test_metrics": trained.metadata["test_metrics"],
            "cv": trained.metadata["cv"]}


def decide(rule: str, served: int | None, comparison: dict[str, Any] | None) -> tuple[bool, str]:
    if rule == "always":
        return True, "promoted: the request asked for it (promote=always)"
    if rule == "never":
        return False, "not promoted: the request said promote=never; promote it with POST /models/<name>/promote"
    if served is None:
        return True, "promoted: no version was served before"
    if comparison is None or not comparison.get("comparable"):
        why = (comparison or {}).get("reason", "the versions could not be compared")
        return False, f"not promoted: {why}"
    better = comparison["new"] < comparison["served"] if comparison["lower_is_better"] \
        else comparison["new"] > comparison["served"]
    verdict = "better" if better else "not better"
    return better, (f"{'promoted' if better else 'not promoted'}: {comparison['metric']} {comparison['new']:.6g} "
                    f"against {comparison['served']:.6g} for version {comparison['served_version']} on "
                    f"{comparison['rows']} held-out rows ({verdict})")


def compare(new, served, held_out) -> dict[str, Any]:
    """Both versions on the job's held-out rows, by one metric (see the module's docstring)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

    from ..model.output import rows_for
    from ..model.training import prepare

    features, truth = held_out
    base = {"served_version": served.version, "rows": int(len(truth))}
    missing = [n for n in served.schema.names if n not in features.columns]
    if missing:
        return {**base, "comparable": False, "reason": f"the served version takes columns the new data lacks: "
                                                       f"{', '.join(missing[:10])}"}
    if new.task != served.task:
        return {**base, "comparable": False, "reason": f"the served version does {served.task}, the new one {new.task}"}
    frames = [rows_for(model.model, prepare(features, model.schema)) for model in (new, served)]
    if new.is_regressor:
        errors = [math.sqrt(mean_squared_error(truth, model.model.predict(frame))) for model, frame in
                  zip((new, served), frames)]
        return {**base, "comparable": True, "metric": "rmse", "lower_is_better": True, "new": errors[0],
                "served": errors[1]}
    if sorted(map(str, new.classes)) != sorted(map(str, served.classes)):
        return {**base, "comparable": False, "reason": f"the classes differ ({served.classes} served, {new.classes} new)"}
    if all(hasattr(model.model, "predict_proba") for model in (new, served)):
        losses = [float(log_loss(truth, model.model.predict_proba(frame), labels=list(model.model.classes_)))
                  for model, frame in zip((new, served), frames)]
        return {**base, "comparable": True, "metric": "log_loss", "lower_is_better": True, "new": losses[0],
                "served": losses[1]}
    scores = [float(accuracy_score(truth, np.asarray(model.model.predict(frame)))) for model, frame in
              zip((new, served), frames)]
    return {**base, "comparable": True, "metric": "accuracy", "lower_is_better": False, "new": scores[0],
            "served": scores[1]}
