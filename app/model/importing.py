"""Publish a model fitted elsewhere (a notebook's Pipeline) as a version the service serves.

    from app.model.importing import publish_model
    publish_model(pipeline, name="churn", sample=test_frame, target="churned")

The input contract comes from the model (the columns it was fitted on, its encoders' categories,
which of its steps accept gaps) and from the sample (types, ranges, examples). Everything is
checked before anything is written: the model must be a fitted classifier or regressor whose
classes JSON can carry, and it must predict its own sample through the service's decoding (the
same frame the server builds), so a model that imports is a model that serves. With the target in
the sample, the metadata gets metrics on it. ``manage.py import`` is this, for a file.
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
import zipfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import artifacts, card as model_card, drift, explain
from .class_names import check_class_names
from .contract import CATEGORY, NUMBER, Decoded, Feature, Schema
from .describe import describe_frame, matrix_from_frame
from .output import CLASSIFICATION, REGRESSION, final_estimator, from_scikit_learn, plain, rows_for, task_of
from .training import compiled_report, evaluate, evaluate_regression, prepare, target_range

FORMATS = ("joblib", "pickle", "skops")
NO_SAMPLE_FOR_DRIFT = ("imported without a sample, so there is nothing to compare requests with; import it again "
                       "with a sample of its training or test rows (manage.py import --sample, publish_model(sample=...))")


class ImportRefused(Exception):
    """Why a model cannot be published, worded for the person importing it."""


# ---- reading a model file ---------------------------------------------------------------------
def read_model_file(path: Path | str) -> tuple[Any, str]:
    """The object in a joblib, pickle or skops file, and which format it was.

    Unpickling runs code from the file: import only files you made or trust (a skops file
    builds only the types it lists).
    """
    path = Path(path)
    if not path.exists():
        raise ImportRefused(f"model file {path} does not exist")
    if not path.is_file():
        raise ImportRefused(f"model file {path} is not a file")
    data = path.read_bytes()
    if not data:
        raise ImportRefused(f"model file {path} is empty")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if zipfile.is_zipfile(io.BytesIO(data)):
            model, kind = _read_skops(path, data), "skops"
        else:
            model, kind = _read_pickle(path, data)
    _refuse_other_scikit_learn(path, caught)
    return model, kind


def _read_pickle(path: Path, data: bytes) -> tuple[Any, str]:
    import joblib

    try:
        # joblib reads plain pickles too; the two differ only in how arrays are stored
        return joblib.load(io.BytesIO(data)), ("joblib" if path.suffix == ".joblib" or data[:1] != b"\x80" else "pickle")
    except ModuleNotFoundError as exc:
        package = (exc.name or "?").split(".")[0]
        raise ImportRefused(f"model file {path} needs the Python package {package!r}, which is not installed "
                            f"here; install it (pip install {package}) or refit the model with scikit-learn only") from None
    except (AttributeError, ImportError) as exc:  # a class the installed libraries do not have
        raise ImportRefused(f"model file {path} refers to something the installed libraries lack ({exc}); it was "
                            "probably saved with other library versions") from None
    except Exception as exc:  # noqa: BLE001 - pickle raises anything for a file that is not one
        raise ImportRefused(f"model file {path} is not a joblib, pickle or skops file "
                            f"({type(exc).__name__}: {_first_line(exc)})") from None


def _read_skops(path: Path, data: bytes) -> Any:
    try:
        import skops.io as sio
    except ModuleNotFoundError:
        raise ImportRefused(f"model file {path} is a skops file; reading it needs the skops package "
                            "(pip install skops)") from None
    try:
        # The importer vouches for the file it names, as for a pickle; the server never loads
        # anything on these terms.
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    except ModuleNotFoundError as exc:
        package = (exc.name or "?").split(".")[0]
        raise ImportRefused(f"model file {path} needs the Python package {package!r}, which is not installed here") from None
    except Exception as exc:  # noqa: BLE001
        raise ImportRefused(f"model file {path} is not a readable skops file ({type(exc).__name__}: "
                            f"{_first_line(exc)})") from None


def _refuse_other_scikit_learn(path: Path, caught: list[warnings.WarningMessage]) -> None:
    from sklearn.exceptions import InconsistentVersionWarning

    for warning in caught:
        if isinstance(warning.message, InconsistentVersionWarning):
            message = warning.message
            raise ImportRefused(
                f"model file {path} was saved with scikit-learn {message.original_sklearn_version}, and "
                f"{message.current_sklearn_version} is installed here; a model is only exact with the "
                f"version that fitted it: refit and save it with scikit-learn {message.current_sklearn_version}")


# ---- checking and describing the model --------------------------------------------------------
def check_estimator(model: Any) -> str:
    """The model's task; refused unless it is a fitted classifier or regressor."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(model, "predict") or not hasattr(model, "get_params"):
        raise ImportRefused(f"the file holds a {_type_name(model)}, not a scikit-learn estimator or Pipeline")
    task = task_of(model)
    if task is None:
        raise ImportRefused(f"the model is a {_type_name(final_estimator(model))}, neither a classifier nor a "
                            "regressor; the service serves predict for classification and regression")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ImportRefused(f"the {_type_name(final_estimator(model))} is not fitted: call fit(...) before "
                            "saving it") from None
    except TypeError as exc:
        raise ImportRefused(f"the model cannot be checked: {exc}") from None
    return task


def check_types(model: Any, trust: Sequence[str]) -> None:
    """The model as skops stores it must hold only trusted types (the project's list and ``trust``)."""
    import skops.io as sio

    from .trust import DEFAULT_TRUSTED_TYPES, untrusted_in

    try:
        data = sio.dumps(model)
    except Exception as exc:  # noqa: BLE001 - an object skops cannot store
        raise ImportRefused(f"the model cannot be stored safely as skops ({type(exc).__name__}: {_first_line(exc)})") from None
    _, refused = untrusted_in(data, DEFAULT_TRUSTED_TYPES | set(trust))
    if refused:
        options = " ".join(f"--trust {name}" for name in refused)
        raise ImportRefused(f"the model holds types nobody vouched for: {', '.join(refused)}; if you trust them, "
                            f"import with {options}, and let the server load them with TRUSTED_TYPES")


def feature_names(model: Any, features: Sequence[str] | None) -> list[str]:
    """The columns the model takes, in its order."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        names = [str(n) for n in fitted]
        if features is not None and list(features) != names:
            raise ImportRefused(f"--features {','.join(features)} differ from the columns the model was fitted on: "
                                f"{','.join(names)}")
        return names
    count = getattr(model, "n_features_in_", None)
    if features is None:
        raise ImportRefused(f"the model was fitted on an array without column names ({count or 'unknown'} columns); "
                            "name them, in order, with --features A,B,... (features= in Python)")
    names = [str(n).strip() for n in features]
    if count is not None and len(names) != count:
        raise ImportRefused(f"--features names {len(names)} columns, the model takes {count}")
    if len(set(names)) != len(names) or not all(names):
        raise ImportRefused("--features must name each column once, none empty")
    return names


def json_classes(model: Any) -> list[Any]:
    """The classes as JSON values; refused when JSON cannot carry them faithfully."""
    classes = []
    for value in getattr(model, "classes_", []):
        value = plain(value)
        if isinstance(value, float) and (not math.isfinite(value)):
            raise ImportRefused(f"the model's class {value!r} cannot be written in JSON")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # classes fitted on 0.0/1.0 answer 0/1, as the labels were meant
        if not isinstance(value, (str, int, float, bool)):
            raise ImportRefused(f"the model's class {value!r} is a {_type_name(value)}; JSON carries classes that are "
                                "strings, numbers or booleans: refit on labels of those types")
        classes.append(value)
    keys = [str(c) for c in classes]
    if len(set(keys)) != len(keys):
        raise ImportRefused(f"the model's classes {classes} are not distinct as text, and probabilities are keyed by it")
    return classes


def describe_inputs(model: Any, names: list[str], sample: pd.DataFrame | None, target: str | None) -> Schema:
    """The schema: the sample's types, ranges and examples, the encoders' categories."""
    encoded = encoder_categories(model, names)
    if sample is not None:
        schema = describe_frame(sample[names], target=target,
                                ignored=[c for c in map(str, sample.columns) if c not in names and c != target])
    else:
        schema = Schema(features=tuple(Feature(name=n, kind=CATEGORY if n in encoded else NUMBER, allow_missing=False,
                                               example=_model_example(model, n)) for n in names))
    features = []
    for feature in schema.features:
        if feature.name in encoded and feature.kind == CATEGORY:
            categories = tuple(encoded[feature.name])
            example = feature.example if feature.example in categories else (categories[0] if categories else None)
            feature = replace(feature, categories=categories, example=example)
        features.append(feature)
    return Schema(features=tuple(features), ignored=schema.ignored, target=schema.target)


def _named_column_steps(model: Any) -> list[tuple[list[str], list[Any]]]:
    """The first step's ColumnTransformer entries that read columns by name: (columns, steps)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    if not isinstance(first, ColumnTransformer):
        return []
    found = []
    for _, step, columns in first.transformers_:
        if isinstance(columns, (list, tuple, np.ndarray)) and all(isinstance(c, str) for c in columns):
            found.append((list(columns), [s for _, s in step.steps] if isinstance(step, Pipeline) else [step]))
    return found


def encoder_categories(model: Any, names: list[str]) -> dict[str, list[str]]:
    """For columns a OneHotEncoder or OrdinalEncoder reads by name: the categories it knows."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    found: dict[str, list[str]] = {}
    for columns, steps in _named_column_steps(model):
        fill = None
        for part in steps:
            if isinstance(part, SimpleImputer) and part.strategy == "constant":
                fill = part.fill_value
            if isinstance(part, (OneHotEncoder, OrdinalEncoder)):
                for column, categories in zip(columns, part.categories_):
                    if categories.dtype.kind in "OUS":
                        found[column] = sorted(str(c) for c in categories
                                               if isinstance(c, str) and c != fill)
                break
    return found


def _model_example(model: Any, name: str) -> Any:
    """Without a sample, a number's example: what an imputer would fill in, else 0."""
    from sklearn.impute import SimpleImputer

    for columns, steps in _named_column_steps(model):
        if name in columns and steps and isinstance(steps[0], SimpleImputer):
            value = steps[0].statistics_[columns.index(name)]
            if isinstance(value, (int, float, np.number)) and math.isfinite(float(value)):
                return round(float(value), 4)
    return 0


def widen_gaps(model: Any, schema: Schema, task: str, classes: list[Any]) -> Schema:
    """Allow a gap in every feature where the model predicts with one (an imputer, or an estimator
    that routes missing values itself), found by asking it: the example with that one value gone."""
    example = schema.example()
    features = list(schema.features)
    for i, feature in enumerate(features):
        if feature.allow_missing:
            continue
        probe = Schema(features=tuple(replace(f, allow_missing=True) if j == i else f
                                      for j, f in enumerate(features)))
        row = matrix_from_frame(probe, pd.DataFrame([{**example, feature.name: None}]))[0]
        try:  # with scikit-learn's own validation, which refuses NaN where the model cannot take it
            output = from_scikit_learn(model, rows_for(model, Decoded(row, [], probe).frame), task, classes,
                                       validate=True)
        except Exception:  # noqa: BLE001 - this model does not take a gap here
            continue
        if all(answer is None or np.isfinite(answer).all() for answer in (output.values, output.probabilities)):
            features[i] = replace(feature, allow_missing=True)
    return Schema(features=tuple(features), ignored=schema.ignored, target=schema.target)


def _serve(model: Any, schema: Schema, matrix: np.ndarray, task: str, classes: list[Any]):
    """What the server's scikit-learn path answers for these decoded rows."""
    return from_scikit_learn(model, rows_for(model, Decoded(matrix, [], schema).frame), task, classes)


def dry_run(model: Any, schema: Schema, sample: pd.DataFrame | None, task: str, classes: list[Any]) -> int:
    """The model predicts its sample (or its example) through the server's decoding, and agrees
    with predicting it directly; returns the rows checked."""
    frame = sample[schema.names] if sample is not None else pd.DataFrame([schema.example()])
    matrix, usable = matrix_from_frame(schema, frame)
    try:
        served = _serve(model, schema, matrix[usable], task, classes)
    except Exception as exc:  # noqa: BLE001 - any failure here is the model failing on its own data
        what = "its sample" if sample is not None else "its example row"
        raise ImportRefused(f"the model fails on {what} as the server decodes it ({type(exc).__name__}: "
                            f"{_first_line(exc)})") from None
    direct = rows_for(model, prepare(frame[usable.tolist()], schema))
    expected = from_scikit_learn(model, direct, task, classes)
    if task == REGRESSION:
        same = np.allclose(served.values, expected.values, rtol=1e-9, atol=1e-9, equal_nan=True)
    else:
        same = np.array_equal(served.winners, expected.winners)
    if not same:
        raise ImportRefused("the model predicts its sample differently once the server has decoded it; its input "
                            "types are not what the sample says (e.g. numbers stored as text)")
    return int(usable.sum())


def sample_metrics(model: Any, schema: Schema, sample: pd.DataFrame, target: str, task: str,
                   classes: list[Any]) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Metrics on the sample's target, after checking the model can predict it."""
    truth = sample[target]
    if truth.isna().any():
        raise ImportRefused(f"target column {target!r} has {int(truth.isna().sum())} empty values in the sample")
    features = prepare(sample[schema.names], schema)
    rows = rows_for(model, features)
    if task == REGRESSION:
        if not pd.api.types.is_numeric_dtype(truth) or pd.api.types.is_bool_dtype(truth):
            raise ImportRefused(f"target column {target!r} holds text, and the model is a regressor")
        truth = truth.astype("float64").reset_index(drop=True)
        return evaluate_regression(model, rows, truth, truth), target_range(truth)
    labels = [plain(v) for v in truth]
    known = {str(c) for c in classes}
    unknown = sorted({str(v) for v in labels} - known)
    if unknown:
        raise ImportRefused(f"the sample's target {target!r} has values the model does not predict: "
                            f"{', '.join(unknown[:10])}; its classes are: {', '.join(sorted(known))}")
    by_text = {str(c): c for c in classes}
    truth = pd.Series([by_text[str(v)] for v in labels])
    if hasattr(model, "predict_proba"):
        return evaluate(model, rows, truth), None
    predicted = [str(plain(v)) for v in model.predict(rows)]
    return {"rows": len(truth), "accuracy": round(float(np.mean(np.array(predicted) == truth.astype(str))), 4)}, None


# ---- publishing -------------------------------------------------------------------------------
def publish_model(model: Any, name: str, models_dir: Path | str = "models", sample: pd.DataFrame | None = None,
                  target: str | None = None, features: Sequence[str] | None = None, command: str = "",
                  source: dict[str, Any] | None = None, trust: Sequence[str] = (),
                  signing_key: Any = None, class_names: dict[str, str] | None = None) -> artifacts.Artifact:
    """Check ``model`` against its sample and publish it as the next version of ``name``.

    The version is stored as skops; every type it holds beyond the trusted list (the project's,
    and ``trust``) is named and refused, so what imports is what a server loads.
    """
    try:
        artifacts.check_name(name)
    except ValueError as exc:
        raise ImportRefused(str(exc)) from None
    task = check_estimator(model)
    check_types(model, trust)
    names = feature_names(model, features)
    if sample is not None:
        if not isinstance(sample, pd.DataFrame) or sample.empty:
            raise ImportRefused("the sample must be a DataFrame with rows (a CSV with a header row and data)")
        sample = sample.rename(columns=str)
        missing = [n for n in names if n not in sample.columns]
        if missing:
            raise ImportRefused(f"the sample lacks the model's columns: {', '.join(missing)}")
        if target is not None and target not in sample.columns:
            raise ImportRefused(f"target column {target!r} is not in the sample; its columns are: "
                                f"{', '.join(sample.columns)}")
    elif target is not None:
        raise ImportRefused("a target column needs a sample that holds it (--sample)")
    classes = json_classes(model) if task == CLASSIFICATION else []
    if task == CLASSIFICATION and not classes:
        raise ImportRefused("the classifier has no classes_")
    try:
        class_names = check_class_names(class_names, classes, task)
    except ValueError as exc:
        raise ImportRefused(str(exc)) from None
    schema = describe_inputs(model, names, sample, target)
    checked = dry_run(model, schema, sample, task, classes)
    schema = widen_gaps(model, schema, task, classes)
    metrics, value_range = (sample_metrics(model, schema, sample, target, task, classes)
                            if target is not None else (None, None))
    example_frame = sample[names] if sample is not None else pd.DataFrame([schema.example()])
    metadata = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "task": task,
        "estimator": _type_name(final_estimator(model)),
        "target": target,
        "classes": classes,
        "class_names": class_names,
        "target_range": value_range,
        "schema": schema.as_dict(),
        "imported": {"source": source, "sample_rows": None if sample is None else int(len(sample)),
                     "sample_sha256": None if sample is None else _frame_digest(sample), "rows_checked": checked},
        "training_data": None,
        "cv": None,
        "test_metrics": metrics,
        "fast_path": compiled_report(model, schema, prepare(example_frame, schema), task, classes),
        "explanation_reference": None if sample is None else explain.reference(model, schema, sample[names], "sample"),
        drift.METADATA_KEY: (drift.reference_of(model, schema, task, classes, sample[names], sample[names],
                                                "the import sample") if sample is not None else
                             drift.unavailable(NO_SAMPLE_FOR_DRIFT)),
    }
    evaluation = None
    if target is not None:
        evaluation = model_card.Evaluation(rows_for(model, prepare(sample[schema.names], schema)),
                                           _card_truth(sample[target], task, classes),
                                           f"the import sample ({len(sample)} rows; optimistic if the model was "
                                           "fitted on them)", names=list(schema.names))
    card = model_card.build_safely(model, task, classes, evaluation, {**metadata, "name": name})
    metadata["card"] = card.summary
    return artifacts.save(models_dir, name, model, metadata, signing_key, files=card.stored_files())


def _card_truth(truth: pd.Series, task: str, classes: list[Any]) -> pd.Series:
    """The sample's answers as the model's own labels (the sample's text "1" is the class 1)."""
    if task == REGRESSION:
        return truth.astype("float64").reset_index(drop=True)
    by_text = {str(c): c for c in classes}
    return pd.Series([by_text[str(plain(v))] for v in truth])


def import_file(path: Path | str, name: str, models_dir: Path | str = "models", sample: Path | str | None = None,
                target: str | None = None, features: Sequence[str] | None = None, command: str = "",
                trust: Sequence[str] = (), signing_key: Any = None,
                class_names: dict[str, str] | None = None) -> artifacts.Artifact:
    """``manage.py import``: read the model file and the sample CSV, then ``publish_model``."""
    model, kind = read_model_file(path)
    frame = None
    if sample is not None:
        from .training import TrainingError, read_csv
        try:
            frame = read_csv(Path(sample), "sample")
        except TrainingError as exc:
            raise ImportRefused(str(exc)) from None
    source = {"file": Path(path).name, "format": kind, "sha256": artifacts.sha256_file(path)}
    return publish_model(model, name, models_dir, sample=frame, target=target, features=features, command=command,
                         source=source, trust=trust, signing_key=signing_key, class_names=class_names)


def _frame_digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


def _type_name(value: Any) -> str:
    return type(value).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


