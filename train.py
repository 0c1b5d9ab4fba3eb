#!/usr/bin/env python3
"""Train a classifier or a regressor and save it as a versioned artifact under models/.

    python train.py                                   # the Pima diabetes SVM (the default model)
    python train.py --data my.csv --target label      # your own CSV
    python train.py --data houses.csv --target price --estimator hgb   # numbers: a regressor
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from app import config
from app.model.artifacts import ArtifactError, list_versions, signing_key
from app.model.class_names import parse_class_names
from app.model.signing import SigningError
from app.model.training import (DEFAULT_ESTIMATOR, DEFAULT_SCORING, ESTIMATOR_CHOICES, ESTIMATORS, SCORINGS, TASKS,
                                TrainingError, TrainingOptions, stderr_progress, train)

DEFAULT_DATA = Path("data/training.csv")
DEFAULT_TEST = Path("data/test.csv")
DEFAULT_COLUMNS = Path("data/columns.json")
DEFAULT_TARGET = "Outcome"
DEFAULT_NAME = config.DEFAULT_MODEL_NAME


def parse_arguments(argv: list[str], settings: dict) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Fit a scikit-learn Pipeline (preprocessing included), tune it by cross-validated grid "
        "search, evaluate it once on held-out data, and save it as models/<name>/<version>/.",
    )
    parser.add_argument("--data", type=Path, help=f"training CSV with a header row (default {DEFAULT_DATA})")
    parser.add_argument("--target", help=f"the column to predict (default {DEFAULT_TARGET} for the default data)")
    held_out = parser.add_mutually_exclusive_group()
    held_out.add_argument("--test-data", type=Path, help="a separate CSV to evaluate on")
    held_out.add_argument("--test-size", type=float, help="hold out this fraction of --data instead (default 0.2)")
    parser.add_argument("--task", choices=TASKS,
                        help="classification or regression (default: regression for a numeric target with fractions "
                             "or more than 50 distinct values, else classification)")
    parser.add_argument("--estimator", choices=ESTIMATORS,
                        help=f"classification: {', '.join(ESTIMATOR_CHOICES['classification'])} (default "
                             f"{DEFAULT_ESTIMATOR['classification']}); regression: "
                             f"{', '.join(ESTIMATOR_CHOICES['regression'])} (default {DEFAULT_ESTIMATOR['regression']}); "
                             "hgb is HistGradientBoosting, with native gaps and categories")
    parser.add_argument("--name", help=f"model name (default: {DEFAULT_NAME}, or the data file's name)")
    parser.add_argument("--drop", action="append", default=[], metavar="COLUMN", help="leave a column out (repeatable)")
    parser.add_argument("--columns", type=Path, metavar="JSON",
                        help='labels, units and descriptions of the columns: {"col": {"label": .., "unit": .., "description": ..}}')
    parser.add_argument("--class-names", metavar="LABEL=NAME,...",
                        help='display names of the classes for people, e.g. "0=no diabetes,1=diabetes" (the page and '
                             'the card show them; the API keeps the labels)')
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--scoring", choices=SCORINGS,
                        help=f"what the grid search maximises (default {DEFAULT_SCORING['classification']} for "
                             "classifiers: the service returns probabilities, so pick the best-calibrated model; "
                             f"{DEFAULT_SCORING['regression']} for regressors)")
    parser.add_argument("--seed", type=int, default=42, help="random seed: the same data and seed give the same model")
    parser.add_argument("--models-dir", type=Path, default=Path(settings["MODELS_DIR"]),
                        help="where artifacts go (default: MODELS_DIR, or models/)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when the model the server serves by default (DEFAULT_MODEL) has a version "
                             "already (make run uses this)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    return parser.parse_args(argv)


def options_from(arguments: argparse.Namespace, argv: list[str]) -> TrainingOptions:
    default_run = arguments.data is None
    if default_run and (arguments.target not in (None, DEFAULT_TARGET)):
        raise TrainingError("--target needs --data: name the CSV that holds that column")
    if not default_run and arguments.target is None:
        raise TrainingError(f"--target is required with --data: name the column of {arguments.data} to predict")
    test_data = arguments.test_data
    if default_run and test_data is None and arguments.test_size is None:
        test_data = DEFAULT_TEST
    return TrainingOptions(
        data=arguments.data or DEFAULT_DATA,
        target=arguments.target or DEFAULT_TARGET,
        name=arguments.name or (DEFAULT_NAME if default_run else slug(arguments.data.stem)),
        test_data=test_data,
        test_size=arguments.test_size,
        estimator=arguments.estimator,
        task=arguments.task,
        folds=arguments.folds,
        seed=arguments.seed,
        scoring=arguments.scoring,
        drop=arguments.drop,
        columns=arguments.columns or (DEFAULT_COLUMNS if default_run else None),
        models_dir=arguments.models_dir,
        command=shlex.join(["python", "train.py", *argv]),
        progress=None if arguments.quiet else stderr_progress,
        class_names=parse_class_names(arguments.class_names) if arguments.class_names else None,
    )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:64] or "model"


def report(metadata: dict, path: Path) -> str:
    if metadata.get("task") == "regression":
        return regression_report(metadata, path)
    cv, test = metadata["cv"], metadata["test_metrics"]
    matrix = test["confusion_matrix"]
    cells = [str(label) for label in matrix["labels"]] + [str(n) for row in matrix["matrix"] for n in row]
    width = max(len(cell) for cell in cells) + 2
    lines = [
        f"model {metadata['name']} version {metadata['version']} ({metadata['estimator']})",
        f"best params {', '.join(f'{k}={v}' for k, v in cv['best_params'].items())}",
        f"cv {cv['scoring']} {cv['best_score']:.4f} ({cv['folds']}-fold, seed {cv['seed']})",
        f"test accuracy {test['accuracy']:.4f} on {test['rows']} rows",
        f"test ROC AUC  {'n/a' if test['roc_auc'] is None else format(test['roc_auc'], '.4f')}",
        "confusion matrix (rows: true, columns: predicted)",
        " " * width + "".join(f"{str(label):>{width}}" for label in matrix["labels"]),
    ]
    for label, row in zip(matrix["labels"], matrix["matrix"]):
        lines.append(f"{str(label):>{width}}" + "".join(f"{count:>{width}}" for count in row))
    lines.append(f"written to {path}")
    return "\n".join(lines)


def regression_report(metadata: dict, path: Path) -> str:
    cv, test = metadata["cv"], metadata["test_metrics"]
    baseline = test["baseline"]
    r2 = "n/a" if test["r2"] is None else format(test["r2"], ".4f")
    return "\n".join([
        f"model {metadata['name']} version {metadata['version']} ({metadata['estimator']}, regression)",
        f"best params {', '.join(f'{k}={v}' for k, v in cv['best_params'].items())}",
        f"cv {cv['scoring']} {cv['best_score']:.4f} ({cv['folds']}-fold, seed {cv['seed']})",
        f"test on {test['rows']} rows      model     predict-the-mean",
        f"  RMSE             {test['rmse']:>10.4g}   {baseline['rmse']:>10.4g}",
        f"  MAE              {test['mae']:>10.4g}   {baseline['mae']:>10.4g}",
        f"  R²               {r2:>10}   {'n/a' if baseline['r2'] is None else format(baseline['r2'], '.4f'):>10}",
        f"written to {path}",
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    arguments = parse_arguments(argv, settings)
    if arguments.if_missing and list_versions(arguments.models_dir, settings["DEFAULT_MODEL"]):
        return 0
    try:
        options = options_from(arguments, argv)
        options.signing_key = signing_key(settings)
        result = train(options)
    except (TrainingError, ArtifactError, SigningError, ValueError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"train.py: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    print(report(result.metadata, result.artifact.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
