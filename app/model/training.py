"""Build, tune, evaluate and save a classifier or a regressor for a CSV file.

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
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier,
                              RandomForestRegressor)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (accuracy_score, confusion_matrix, get_scorer, log_loss, mean_absolute_error,
                             mean_squared_error, r2_score, roc_auc_score)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVC, SVR

from . import artifacts, card as model_card, compiled, drift, explain
from .class_names import check_class_names
from .contract import NUMBER, Schema
from .output import CLASSIFICATION, REGRESSION, plain
from .describe import category_values, describe_frame, matrix_from_frame

TASKS = (CLASSIFICATION, REGRESSION)
ESTIMATOR_CHOICES = {CLASSIFICATION: ("svm", "logreg", "rf", "hgb"), REGRESSION: ("ridge", "rf", "hgb", "svr")}
ESTIMATORS = tuple(dict.fromkeys(ESTIMATOR_CHOICES[CLASSIFICATION] + ESTIMATOR_CHOICES[REGRESSION]))
DEFAULT_ESTIMATOR = {CLASSIFICATION: "svm", REGRESSION: "hgb"}
SCORING_CHOICES = {CLASSIFICATION: ("accuracy", "balanced_accuracy", "roc_auc", "neg_log_loss", "f1"),
                   REGRESSION: ("neg_root_mean_squared_error", "neg_mean_absolute_error", "r2")}
SCORINGS = SCORING_CHOICES[CLASSIFICATION] + SCORING_CHOICES[REGRESSION]
# Classifiers are tuned for calibrated probabilities (the service answers them); regressors for RMSE.
DEFAULT_SCORING = {CLASSIFICATION: "neg_log_loss", REGRESSION: "neg_root_mean_squared_error"}
MISSING_CATEGORY = "__missing__"
MAX_CLASSES = 50
STEP = {CLASSIFICATION: "classifier", REGRESSION: "regressor"}  # the Pipeline's last step


class TrainingError(Exception):
    """A problem with the user's data or options, worded for the person at the terminal."""


@dataclass
class TrainingOptions:
    data: Path
    target: str
    name: str
    test_data: Path | None = None
    test_size: float | None = None
    estimator: str | None = None  # None: DEFAULT_ESTIMATOR of the task
    folds: int = 5
    seed: int = 42
    scoring: str | None = None  # None: DEFAULT_SCORING of the task
    task: str | None = None  # None: from the target (see detect_task)
    drop: Sequence[str] = ()
    columns: Path | None = None  # JSON: column -> {"label", "unit", "description"}
    models_dir: Path = Path("models")
    command: str = ""
    progress: Callable[[str], None] | None = None
    fits_done: Callable[[int, int], None] | None = None  # (done, total) after each fit of the grid search
    signing_key: Any = None  # Ed25519 private key: the version is signed (app/model/signing.py)
    first_version: int = 1  # the lowest version number to publish as (past deleted versions)
    class_names: dict[str, str] | None = None  # display names of the classes, by label as text (class_names.py)


@dataclass
class TrainingResult:
    artifact: artifacts.Artifact
    metadata: dict[str, Any] = field(default_factory=dict)
    held_out: tuple[pd.DataFrame, pd.Series] | None = None  # the test rows as read, and their answers


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


def detect_task(labels: pd.Series) -> str:
    """Regression for a numeric target with fractions or more distinct values than a classifier
    takes (MAX_CLASSES); classification for anything else (text, booleans, a few whole numbers)."""
    if not pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        return CLASSIFICATION
    fractional = not np.all(np.equal(np.mod(labels, 1), 0))
    return REGRESSION if fractional or labels.nunique() > MAX_CLASSES else CLASSIFICATION


def check_regression_target(values: pd.Series, target: str) -> None:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        example = next((v for v in values if not _is_number(v)), values.iloc[0])
        raise TrainingError(f"target column {target!r} holds text such as {str(example)!r}; "
                            "a regressor predicts numbers (use --task classification for labels)")
    if not np.all(np.isfinite(values.to_numpy(dtype="float64"))):
        raise TrainingError(f"target column {target!r} holds an infinite value; a regressor needs finite numbers")
    if values.nunique() < 2:
        raise TrainingError(f"target column {target!r} has the same value in every row; there is nothing to learn")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def check_target(labels: pd.Series, target: str) -> None:
    classes = labels.unique()
    if len(classes) < 2:
        raise TrainingError(
            f"target column {target!r} has only one class ({plain(classes[0])!r}); a classifier needs two or more"
        )
    if pd.api.types.is_float_dtype(labels) and not np.all(np.equal(np.mod(labels, 1), 0)):
        raise TrainingError(
            f"target column {target!r} holds fractional numbers, which are not class labels; "
            "to predict the numbers, use --task regression"
        )
    if len(classes) > MAX_CLASSES:
        raise TrainingError(
            f"target column {target!r} has {len(classes)} distinct values, too many for a classifier "
            f"(at most {MAX_CLASSES} classes); to predict numbers, use --task regression. Is it the right column?"
        )
    smallest = labels.value_counts().min()
    if smallest < 4:
        rare = plain(labels.value_counts().idxmin())
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
def build_pipeline(schema: Schema, task: str, estimator: str, seed: int,
                   calibration_folds: int = 5) -> tuple[Pipeline, dict]:
    """The Pipeline and its hyperparameter grid for one task and estimator kind."""
    if estimator not in ESTIMATOR_CHOICES[task]:
        raise TrainingError(f"estimator {estimator!r} does not do {task}; choose one of: "
                            f"{', '.join(ESTIMATOR_CHOICES[task])}")
    step = STEP[task]
    if estimator == "hgb":
        preprocess, categorical = _native_preprocess(schema)
        kind = HistGradientBoostingClassifier if task == CLASSIFICATION else HistGradientBoostingRegressor
        model = kind(categorical_features=categorical, random_state=seed)
        grid = {f"{step}__learning_rate": [0.03, 0.1], f"{step}__max_leaf_nodes": [7, 15, 31],
                f"{step}__l2_regularization": [0.0, 1.0]}
        return Pipeline([("preprocess", preprocess), (step, model)]), grid
    preprocess = _scaled_preprocess(schema)
    if estimator == "svm":
        # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its recommended
        # replacement: Platt scaling fitted by cross-validation, one final SVC.
        model = CalibratedClassifierCV(SVC(kernel="rbf"), cv=calibration_folds, ensemble=False)
        grid = {f"{step}__estimator__C": [0.1, 0.3, 1, 3, 10, 30, 100],
                f"{step}__estimator__gamma": ["scale", 0.001, 0.003, 0.01, 0.03, 0.1]}
    elif estimator == "logreg":
        model = LogisticRegression(max_iter=5000)
        grid = {f"{step}__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 100]}
    elif estimator == "rf":
        model = (RandomForestClassifier if task == CLASSIFICATION else RandomForestRegressor)(
            n_estimators=100, random_state=seed)
        grid = {f"{step}__max_depth": [None, 4, 8], f"{step}__min_samples_leaf": [1, 3, 10]}
    elif estimator == "ridge":
        model = Ridge()
        grid = {f"{step}__alpha": [0.01, 0.1, 1, 10, 100, 1000]}
    else:  # svr
        model = SVR(kernel="rbf")
        grid = {f"{step}__C": [0.1, 1, 10, 100, 1000], f"{step}__gamma": ["scale", 0.01, 0.1],
                f"{step}__epsilon": [0.1]}
    return Pipeline([("preprocess", preprocess), (step, model)]), grid


def _scaled_preprocess(schema: Schema) -> ColumnTransformer:
    """Median-imputed, standardised numbers; one-hot categories with gaps as their own category."""
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
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def _native_preprocess(schema: Schema) -> tuple[ColumnTransformer, list[bool]]:
    """For HistGradientBoosting: numbers as they are (it routes gaps itself) and categories as
    ordinal codes it splits on natively (a gap stays NaN); the mask marks the category columns."""
    numbers = [f.name for f in schema.features if f.kind == NUMBER]
    categories = [f.name for f in schema.features if f.kind != NUMBER]
    parts = []
    if numbers:
        parts.append(("numbers", "passthrough", numbers))
    if categories:
        parts.append(("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                                   encoded_missing_value=np.nan), categories))
    preprocess = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return preprocess, [False] * len(numbers) + [True] * len(categories)


class ProgressScorer:
    """Wraps a scorer to report how many of the grid's fits are done (it runs once per fit)."""

    def __init__(self, scoring: str, total: int, report: Callable[[str], None] | None,
                 counted: Callable[[int, int], None] | None = None):
        self.scorer = get_scorer(scoring)
        self.total = total
        self.done = 0
        self.report = report
        self.counted = counted
        self.started = time.monotonic()

    def __call__(self, estimator, X, y):
        self.done += 1
        if self.counted is not None:
            self.counted(self.done, self.total)
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
            "labels": [plain(c) for c in classes],
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


def evaluate_regression(model: Pipeline, features: pd.DataFrame, values: pd.Series,
                        training_values: pd.Series) -> dict[str, Any]:
    """RMSE, MAE and R² on held-out rows, beside the same for always predicting the training mean."""
    truth = values.to_numpy(dtype="float64")
    predicted = np.asarray(model.predict(features), dtype="float64")
    baseline = np.full_like(truth, float(training_values.mean()))

    def scores(guess: np.ndarray) -> dict[str, float | None]:
        return {"rmse": _round(float(np.sqrt(mean_squared_error(truth, guess)))),
                "mae": _round(float(mean_absolute_error(truth, guess))),
                "r2": _round(float(r2_score(truth, guess))) if len(truth) > 1 else None}

    return {"rows": int(len(truth)), **scores(predicted), "baseline": {"strategy": "training mean", **scores(baseline)}}


def _round(number: float) -> float:
    return float(f"{number:.6g}")


def train(options: TrainingOptions) -> TrainingResult:
    say = options.progress or (lambda message: None)
    artifacts.check_name(options.name)
    if options.task is not None and options.task not in TASKS:
        raise TrainingError(f"unknown task {options.task!r}; choose one of: {', '.join(TASKS)}")
    if options.estimator is not None and options.estimator not in ESTIMATORS:
        raise TrainingError(f"unknown estimator {options.estimator!r}; choose one of: {', '.join(ESTIMATORS)}")
    if options.scoring is not None and options.scoring not in SCORINGS:
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
    task = options.task or detect_task(labels)
    if options.task is None and task == REGRESSION:
        say(f"note: target {options.target!r} holds numbers with {labels.nunique()} distinct values: training a "
            "regressor (--task classification to treat them as classes)")
    estimator = options.estimator or DEFAULT_ESTIMATOR[task]
    if estimator not in ESTIMATOR_CHOICES[task]:
        raise TrainingError(f"estimator {estimator!r} does not do {task}; for {task} choose one of: "
                            f"{', '.join(ESTIMATOR_CHOICES[task])}")
    scoring = options.scoring or DEFAULT_SCORING[task]
    if scoring not in SCORING_CHOICES[task]:
        raise TrainingError(f"scoring {scoring!r} does not score {task}; choose one of: "
                            f"{', '.join(SCORING_CHOICES[task])}")
    prepare_target = _target_preparer(task, options.target)
    labels = prepare_target(labels)

    if options.test_data is not None:
        test_frame = read_csv(options.test_data, "test data")
        test_features, test_labels = split_features(
            test_frame, options.target, [c for c in [*options.drop, *ignored] if c in test_frame.columns], "test data"
        )
        missing = [c for c in features.columns if c not in test_features.columns]
        if missing:
            raise TrainingError(f"test data lacks the feature columns: {', '.join(map(str, missing))}")
        test_features = test_features[list(features.columns)]
        test_labels = prepare_target(test_labels)
    else:
        size = options.test_size if options.test_size is not None else 0.2
        try:
            features, test_features, labels, test_labels = train_test_split(
                features, labels, test_size=size, random_state=options.seed,
                stratify=labels if task == CLASSIFICATION else None,
            )
        except ValueError as exc:
            raise TrainingError(f"cannot hold out a test set of {size:g} of the rows: {exc}") from None
    prepare_target(labels)

    annotations = read_columns(options.columns)
    schema = describe_frame(features, ignored=ignored, target=options.target, annotations=annotations)
    try:  # --class-names, else the target's "classes" in the columns file; checked before the long fit
        class_names = check_class_names(options.class_names or annotations.get(options.target, {}).get("classes"),
                                        [plain(c) for c in np.unique(labels)] if task == CLASSIFICATION else [], task)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    X, X_test = prepare(features, schema), prepare(test_features, schema)
    if task == CLASSIFICATION:
        unseen = sorted(set(test_labels) - set(labels), key=str)
        if unseen:
            raise TrainingError(f"test data has classes not in the training data: {', '.join(map(repr, unseen))}")
        if scoring in ("roc_auc", "f1") and labels.nunique() > 2:
            raise TrainingError(f"scoring {scoring!r} needs a two-class target; use accuracy or neg_log_loss")
        smallest = int(labels.value_counts().min())
        folds = min(options.folds, smallest)
        calibration_folds = max(2, min(5, smallest * (folds - 1) // folds // 2))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=options.seed)
    else:
        folds = min(options.folds, len(X))
        calibration_folds = 5
        splitter = KFold(folds, shuffle=True, random_state=options.seed)
    pipeline, grid = build_pipeline(schema, task, estimator, options.seed, calibration_folds)
    candidates = int(np.prod([len(v) for v in grid.values()]))
    say(f"training {estimator} ({task}) on {len(X)} rows x {X.shape[1]} features: "
        f"{candidates} candidates x {folds} folds = {candidates * folds} fits")
    scorer = ProgressScorer(scoring, candidates * folds, say, options.fits_done)
    search = GridSearchCV(pipeline, grid, scoring=scorer, cv=splitter, n_jobs=1, refit=True, error_score="raise")
    started = time.monotonic()
    try:
        search.fit(X, labels)
    except ValueError as exc:
        raise TrainingError(f"training failed on this data: {exc}") from None
    model = search.best_estimator_
    say(f"evaluating on {len(X_test)} held-out rows")
    if task == CLASSIFICATION:
        metrics = evaluate(model, X_test, test_labels)
        classes = [plain(c) for c in model.classes_]
    else:
        metrics = evaluate_regression(model, X_test, test_labels, labels)
        classes = []

    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": options.command,
        "task": task,
        "estimator": estimator,
        "target": options.target,
        "classes": classes,
        "class_names": class_names,
        "target_range": target_range(labels) if task == REGRESSION else None,
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
            "scoring": scoring,
            "best_params": {k.split("__", 1)[1]: plain(v) for k, v in search.best_params_.items()},
            "best_score": round(float(search.best_score_), 4),
            "seed": options.seed,
            "seconds": round(time.monotonic() - started, 1),
        },
        "test_metrics": metrics,
        "fast_path": compiled_report(model, schema, X_test, task, classes),
        "fingerprint": _fingerprint(X, labels),
        "explanation_reference": explain.reference(model, schema, X, "training"),
        drift.METADATA_KEY: drift.reference_of(model, schema, task, classes, X, X_test, "held-out rows"),
    }
    say("drawing the model card")
    evaluation = model_card.Evaluation(X_test, test_labels, f"{len(X_test)} held-out rows", scoring)
    card = model_card.build_safely(model, task, classes, evaluation, {**metadata, "name": options.name}, say)
    metadata["card"] = card.summary
    artifact = artifacts.save(options.models_dir, options.name, model, metadata, options.signing_key,
                              options.first_version, files=card.stored_files())
    return TrainingResult(artifact=artifact, metadata=artifact.metadata, held_out=(test_features, test_labels))


def _target_preparer(task: str, target: str) -> Callable[[pd.Series], pd.Series]:
    """Checks a target column for the task and returns it as the model is fitted on it."""
    def prepare(labels: pd.Series) -> pd.Series:
        if task == CLASSIFICATION:
            check_target(labels, target)
            return native_labels(labels)
        check_regression_target(labels, target)
        return labels.astype("float64")
    return prepare


def target_range(values: pd.Series) -> dict[str, float]:
    """What the regressor saw in training, for the page (a value against this range) and docs."""
    present = values.astype("float64")
    return {"min": float(present.min()), "max": float(present.max()), "mean": _round(float(present.mean())),
            "q05": _round(float(present.quantile(0.05))), "q95": _round(float(present.quantile(0.95)))}


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
    except Exception as exc:  # noqa: BLE001 - a failure to compile only means scikit-learn answers
        return {"backend": "scikit-learn", "reason": f"the compiled backend failed ({type(exc).__name__}: {exc})"}
    report = {"backend": "numpy", "kind": program.kind, "rows_checked": int(usable.sum())}
    if task == REGRESSION:
        return {**report, "max_value_difference": difference}
    return {**report, "labels_identical": True, "max_probability_difference": difference}


def _fingerprint(X: pd.DataFrame, labels: pd.Series) -> str:
    """A hash of the exact rows the model was fitted on (after any split), for lineage."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(labels, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
