"""Build, tune, evaluate and save a classifier for a CSV file.

Everything the model needs at prediction time (imputation, scaling, one-hot encoding) lives in
the saved Pipeline, so the artifact alone is the whole predictor and the service never redoes
preprocessing.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, get_scorer, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from . import artifacts, compiled
from .contract import NUMBER, Schema
from .output import CLASSIFICATION
from .describe import category_values, describe_frame, matrix_from_frame

ESTIMATORS = ("svm", "logreg", "rf")
SCORINGS = ("accuracy", "balanced_accuracy", "roc_auc", "neg_log_loss", "f1")
MISSING_CATEGORY = "__missing__"
MAX_CLASSES = 50


class TrainingError(Exception):
    """A problem with the user's data or options, worded for the person at the terminal."""


@dataclass
class TrainingOptions:
    data: Path
    target: str
    name: str
    test_data: Path | None = None
    test_size: float | None = None
    estimator: str = "svm"
    folds: int = 5
    seed: int = 42
    scoring: str = "neg_log_loss"
    drop: Sequence[str] = ()
    columns: Path | None = None  # JSON: column -> {"label", "unit", "description"}
    models_dir: Path = Path("models")
    command: str = ""
    progress: Callable[[str], None] | None = None


@dataclass
class TrainingResult:
    artifact: artifacts.Artifact
    metadata: dict[str, Any] = field(default_factory=dict)


# ---- data -------------------------------------------------------------------------------------
def read_csv(path: Path, what: str = "training data") -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise TrainingError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise TrainingError(f"{what} path {path} is not a file")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TrainingError(f"{what} file {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"{what} file {path} is not a readable CSV: {reason}") from None
    except OSError as exc:
        raise TrainingError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None
    if frame.empty:
        raise TrainingError(f"{what} file {path} has a header but no rows")
    if any(str(c).startswith("Unnamed: ") for c in frame.columns):
        raise TrainingError(f"{what} file {path} has a column without a name in its header row")
    return frame


def read_columns(path: Path | None) -> dict[str, dict[str, str]]:
    """Optional human descriptions of the columns, shown by the browser form and the API docs."""
    if path is None:
        return {}
    try:
        described = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"columns file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingError(f"columns file {path} is not readable JSON: {exc}") from None
    if not isinstance(described, dict) or not all(isinstance(v, dict) for v in described.values()):
        raise TrainingError(f'columns file {path} must map each column to {{"label": ..., "unit": ..., "description": ...}}')
    return described


def split_features(frame: pd.DataFrame, target: str, drop: Sequence[str], what: str) -> tuple[pd.DataFrame, pd.Series]:
    if target not in frame.columns:
        raise TrainingError(
            f"target column {target!r} is not in the {what}; its columns are: {', '.join(map(str, frame.columns))}"
        )
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise TrainingError(f"--drop names columns that are not in the {what}: {', '.join(unknown)}")
    labels = frame[target]
    if labels.isna().any():
        raise TrainingError(f"target column {target!r} has {int(labels.isna().sum())} empty values in the {what}")
    features = frame.drop(columns=[target, *drop])
    if features.shape[1] == 0:
        raise TrainingError(f"the {what} has no feature columns besides the target {target!r}")
    return features, labels


def identifier_columns(features: pd.DataFrame) -> list[str]:
    """Text columns with (almost) one value per row, such as names or ticket numbers.

    One-hot encoding them teaches the model nothing and would reject every new value, so
    they are left out of the model; clients may still send them and they are ignored.
    """
    found = []
    rows = len(features)
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        distinct = column.nunique(dropna=True)
        if rows >= 20 and distinct > max(20, 0.5 * rows):
            found.append(str(name))
    return found


def check_target(labels: pd.Series, target: str) -> None:
    classes = labels.unique()
    if len(classes) < 2:
        raise TrainingError(
            f"target column {target!r} has only one class ({_json_label(classes[0])!r}); a classifier needs two or more"
        )
    if pd.api.types.is_float_dtype(labels) and not np.all(np.equal(np.mod(labels, 1), 0)):
        raise TrainingError(
            f"target column {target!r} holds fractional numbers; this trainer builds classifiers, "
            "so the target must be class labels"
        )
    if len(classes) > MAX_CLASSES:
        raise TrainingError(
            f"target column {target!r} has {len(classes)} distinct values; this trainer builds classifiers "
            f"(at most {MAX_CLASSES} classes). Is it the right column?"
        )
    smallest = labels.value_counts().min()
    if smallest < 4:
        rare = _json_label(labels.value_counts().idxmin())
        raise TrainingError(
            f"class {rare!r} of target {target!r} has only {smallest} rows; cross-validation needs at least 4 per class"
        )


def prepare(features: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The frame in the representation serving will produce: floats, and strings with NaN gaps."""
    prepared = pd.DataFrame(index=features.index)
    for feature in schema.features:
        column = features[feature.name]
        if feature.kind == NUMBER:
            prepared[feature.name] = column.astype("float64")
        else:
            prepared[feature.name] = category_values(column)
    return prepared


def native_labels(labels: pd.Series) -> pd.Series:
    """Class labels as plain ints or strings, so they travel through JSON unchanged."""
    if pd.api.types.is_bool_dtype(labels):
        return labels.map(str)
    if pd.api.types.is_numeric_dtype(labels):
        return labels.astype("int64")
    return labels.map(str)


# ---- model ------------------------------------------------------------------------------------
def build_pipeline(schema: Schema, estimator: str, seed: int, calibration_folds: int) -> tuple[Pipeline, dict]:
    """The Pipeline and its hyperparameter grid for one estimator kind."""
    numbers = [f.name for f in schema.features if f.kind == NUMBER]
    categories = [f.name for f in schema.features if f.kind != NUMBER]
    parts = []
    if numbers:
        parts.append(("numbers", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numbers))
    if categories:
        parts.append((
            "categories",
            Pipeline([
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]),
            categories,
        ))
    preprocess = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    if estimator == "svm":
        # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its recommended
        # replacement: Platt scaling fitted by cross-validation, one final SVC.
        classifier = CalibratedClassifierCV(SVC(kernel="rbf"), cv=calibration_folds, ensemble=False)
        grid = {
            "classifier__estimator__C": [0.1, 0.3, 1, 3, 10, 30, 100],
            "classifier__estimator__gamma": ["scale", 0.001, 0.003, 0.01, 0.03, 0.1],
        }
    elif estimator == "logreg":
        classifier = LogisticRegression(max_iter=5000)
        grid = {"classifier__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100]}
    elif estimator == "rf":
        classifier = RandomForestClassifier(n_estimators=100, random_state=seed)
        grid = {"classifier__max_depth": [None, 4, 8], "classifier__min_samples_leaf": [1, 3, 10]}
    else:
        raise TrainingError(f"unknown estimator {estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)]), grid


class ProgressScorer:
    """Wraps a scorer to report how many of the grid's fits are done (it runs once per fit)."""

    def __init__(self, scoring: str, total: int, report: Callable[[str], None] | None):
        self.scorer = get_scorer(scoring)
        self.total = total
        self.done = 0
        self.report = report
        self.started = time.monotonic()

    def __call__(self, estimator, X, y):
        self.done += 1
        if self.report and (self.done == self.total or self.done % max(1, self.total // 10) == 0):
            elapsed = time.monotonic() - self.started
            self.report(f"grid search: {self.done}/{self.total} fits, {elapsed:.1f} s")
        return self.scorer(estimator, X, y)


def evaluate(model: Pipeline, features: pd.DataFrame, labels: pd.Series) -> dict[str, Any]:
    classes = model.classes_
    probabilities = model.predict_proba(features)
    predicted = classes[probabilities.argmax(axis=1)]
    truth = labels.to_numpy()
    metrics: dict[str, Any] = {
        "rows": int(len(labels)),
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "roc_auc": None,
        "log_loss": None,
        "confusion_matrix": {
            "labels": [_json_label(c) for c in classes],
            "matrix": confusion_matrix(truth, predicted, labels=classes).tolist(),
        },
    }
    if set(truth) == set(classes):
        if len(classes) == 2:
            metrics["roc_auc"] = round(float(roc_auc_score(truth == classes[1], probabilities[:, 1])), 4)
        else:
            metrics["roc_auc"] = round(float(roc_auc_score(truth, probabilities, multi_class="ovr", labels=list(classes))), 4)
        metrics["log_loss"] = round(float(log_loss(truth, probabilities, labels=list(classes))), 4)
    return metrics


def train(options: TrainingOptions) -> TrainingResult:
    say = options.progress or (lambda message: None)
    artifacts.check_name(options.name)
    if options.estimator not in ESTIMATORS:
        raise TrainingError(f"unknown estimator {options.estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    if options.scoring not in SCORINGS:
        raise TrainingError(f"unknown scoring {options.scoring!r}; choose one of: {', '.join(SCORINGS)}")
    if options.test_data is not None and options.test_size is not None:
        raise TrainingError("give either --test-data or --test-size, not both")
    if options.test_size is not None and not 0 < options.test_size < 1:
        raise TrainingError(f"--test-size must be a fraction between 0 and 1, got {options.test_size}")
    if options.folds < 2:
        raise TrainingError(f"--folds must be at least 2, got {options.folds}")

    frame = read_csv(options.data)
    features, labels = split_features(frame, options.target, options.drop, "training data")
    ignored = identifier_columns(features)
    for name in ignored:
        say(f"note: column {name!r} looks like an identifier (a distinct value in most rows); it is not used as a feature")
    features = features.drop(columns=ignored)
    if features.shape[1] == 0:
        raise TrainingError("no usable feature columns are left after setting aside identifier columns")
    check_target(labels, options.target)
    labels = native_labels(labels)

    if options.test_data is not None:
        test_frame = read_csv(options.test_data, "test data")
        test_features, test_labels = split_features(
            test_frame, options.target, [c for c in [*options.drop, *ignored] if c in test_frame.columns], "test data"
        )
        missing = [c for c in features.columns if c not in test_features.columns]
        if missing:
            raise TrainingError(f"test data lacks the feature columns: {', '.join(map(str, missing))}")
        test_features = test_features[list(features.columns)]
        test_labels = native_labels(test_labels)
    else:
        size = options.test_size if options.test_size is not None else 0.2
        try:
            features, test_features, labels, test_labels = train_test_split(
                features, labels, test_size=size, random_state=options.seed, stratify=labels
            )
        except ValueError as exc:
            raise TrainingError(f"cannot hold out a test set of {size:g} of the rows: {exc}") from None
    check_target(labels, options.target)

    schema = describe_frame(features, ignored=ignored, target=options.target, annotations=read_columns(options.columns))
    X, X_test = prepare(features, schema), prepare(test_features, schema)
    unseen = sorted(set(test_labels) - set(labels), key=str)
    if unseen:
        raise TrainingError(f"test data has classes not in the training data: {', '.join(map(repr, unseen))}")
    if options.scoring in ("roc_auc", "f1") and labels.nunique() > 2:
        raise TrainingError(f"scoring {options.scoring!r} needs a two-class target; use accuracy or neg_log_loss")

    smallest = int(labels.value_counts().min())
    folds = min(options.folds, smallest)
    calibration_folds = max(2, min(5, smallest * (folds - 1) // folds // 2))
    pipeline, grid = build_pipeline(schema, options.estimator, options.seed, calibration_folds)
    candidates = int(np.prod([len(v) for v in grid.values()]))
    say(f"training {options.estimator} on {len(X)} rows x {X.shape[1]} features: "
        f"{candidates} candidates x {folds} folds = {candidates * folds} fits")
    scorer = ProgressScorer(options.scoring, candidates * folds, say)
    search = GridSearchCV(
        pipeline, grid, scoring=scorer, cv=StratifiedKFold(folds, shuffle=True, random_state=options.seed),
        n_jobs=1, refit=True, error_score="raise",
    )
    started = time.monotonic()
    try:
        search.fit(X, labels)
    except ValueError as exc:
        raise TrainingError(f"training failed on this data: {exc}") from None
    model = search.best_estimator_
    say(f"evaluating on {len(X_test)} held-out rows")
    metrics = evaluate(model, X_test, test_labels)

    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": options.command,
        "estimator": options.estimator,
        "target": options.target,
        "classes": [_json_label(c) for c in model.classes_],
        "schema": schema.as_dict(),
        "training_data": {
            "file": Path(options.data).name,
            "sha256": artifacts.sha256_file(options.data),
            "rows": int(len(X)),
        },
        "test_data": {
            "file": Path(options.test_data).name if options.test_data else None,
            "sha256": artifacts.sha256_file(options.test_data) if options.test_data else None,
            "held_out_fraction": None if options.test_data else (options.test_size or 0.2),
        },
        "cv": {
            "folds": folds,
            "scoring": options.scoring,
            "best_params": {k.removeprefix("classifier__"): _json_value(v) for k, v in search.best_params_.items()},
            "best_score": round(float(search.best_score_), 4),
            "seed": options.seed,
            "seconds": round(time.monotonic() - started, 1),
        },
        "test_metrics": metrics,
        "fast_path": compiled_report(model, schema, X_test, CLASSIFICATION, [_json_label(c) for c in model.classes_]),
        "fingerprint": _fingerprint(X, labels),
    }
    artifact = artifacts.save(options.models_dir, options.name, model, metadata)
    return TrainingResult(artifact=artifact, metadata=artifact.metadata)


def compiled_report(model: Any, schema: Schema, X_test: pd.DataFrame, task: str, classes: list) -> dict[str, Any]:
    """Whether the compiled backend reproduces this model on the test set (the service checks
    again at every start, on generated rows, before it uses it). Saved under the metadata's
    "fast_path" key, the artifact format's name for it."""
    try:
        program = compiled.compile_pipeline(model, schema)
        matrix, usable = matrix_from_frame(schema, X_test)
        difference = compiled.verify(program, model, schema, matrix[usable], task, classes)
    except (compiled.Unsupported, compiled.Mismatch) as exc:
        return {"backend": "scikit-learn", "reason": str(exc)}
    return {"backend": "numpy", "kind": program.kind, "rows_checked": int(usable.sum()),
            "labels_identical": True, "max_probability_difference": difference}


def _fingerprint(X: pd.DataFrame, labels: pd.Series) -> str:
    """A hash of the exact rows the model was fitted on (after any split), for lineage."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(labels, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _json_label(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _json_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
