"""The model card: what a reviewer asks first about a version, computed once when it is made.

Training and import evaluate the fitted Pipeline on held-out rows and keep:
- metrics with bootstrap confidence intervals (app/model/bootstrap.py);
- for classifiers the confusion matrix, ROC and precision-recall curves and the calibration
  curve; for regressors residuals and predicted against actual; permutation importance for both,
  drawn once as SVG with matplotlib (imported only here, never by the server);
- a Markdown card in skops' format (the Hugging Face model card layout), beside the plots.

``build`` returns the card's files and a summary; the artifact format stores the files in the
version's ``card/`` folder and their sha256 in its (signed) metadata, so the card is verified like
the model. The server only reads them back (app/http/card.py renders the page).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .bootstrap import classification_intervals, regression_intervals
from .output import CLASSIFICATION, plain

FOLDER = "card"
MARKDOWN_FILE = "README.md"
IMPORTANCE_ROUNDS = 5
IMPORTANCE_ROWS = 2000  # permutation importance on at most this many held-out rows
SCATTER_POINTS = 2000  # residual plots draw at most this many points
MAX_CURVES = 10  # one-vs-rest curves drawn for at most this many classes
PLOT_SIZE = (5.0, 3.8)
MIN_ROWS = 2  # held-out rows with answers below which nothing is measured or drawn


@dataclass
class Card:
    summary: dict[str, Any]  # stored under the metadata's "card" key
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes, for the card/ folder

    def stored_files(self) -> dict[str, bytes]:
        """The files by their path in the version's folder (artifacts.save's ``files``)."""
        return {f"{FOLDER}/{name}": data for name, data in self.files.items()}


@dataclass
class Evaluation:
    """Held-out rows (as the server decodes them), their answers, and what the model says of them."""
    features: pd.DataFrame
    truth: pd.Series
    what: str  # "12 held-out rows", "the import sample (200 rows)": said on the card
    scoring: str | None = None  # permutation importance's scorer (None: accuracy or r2)
    names: list[str] = field(default_factory=list)  # the columns, when ``features`` is an array


def build(model: Any, task: str, classes: Sequence[Any], evaluation: Evaluation | None, about: dict[str, Any]) -> Card:
    """The card of a version: ``about`` is the version's metadata so far (name, target, schema,
    class names, training facts). Without held-out answers the card describes the model only."""
    if evaluation is None or len(evaluation.truth) < MIN_ROWS:
        given = "no rows" if evaluation is None else f"only {len(evaluation.truth)} rows"
        summary = {"evaluated_on": None, "metrics": [], "plots": [], "importance": [],
                   "note": f"{given} with known answers were given (at least {MIN_ROWS} are needed; train.py holds "
                           "some out, manage.py import needs --sample with --target), so the card has no metrics "
                           "or plots"}
        return Card(summary, {MARKDOWN_FILE: markdown(model, about, summary)})
    names = display_names(classes, about.get("class_names"))
    if task == CLASSIFICATION:
        metrics, plots = _classifier_card(model, classes, names, evaluation)
    else:
        metrics, plots = _regressor_card(model, evaluation)
    importance, scoring = permutation_importance(model, task, evaluation)
    if importance:
        plots.append(("importance.svg", "Permutation importance",
                      "How much the score drops when one feature's values are shuffled among the held-out rows "
                      f"({IMPORTANCE_ROUNDS} shuffles; the bar is the mean, the line one standard deviation)",
                      _importance_plot(importance, about, scoring)))
    summary = {
        "evaluated_on": evaluation.what,
        "rows": int(len(evaluation.truth)),
        "confidence": 0.95,
        "metrics": metrics,
        "importance": importance,
        "importance_scoring": scoring,
        "plots": [{"file": file, "title": title, "caption": caption} for file, title, caption, _ in plots],
    }
    files = {file: svg for file, _, _, svg in plots}
    files[MARKDOWN_FILE] = markdown(model, about, summary)
    return Card(summary, files)


def build_safely(model: Any, task: str, classes: Sequence[Any], evaluation: Evaluation | None,
                 about: dict[str, Any], say=lambda message: None) -> Card:
    """``build``, but a card that cannot be drawn never costs the version: it is published with a
    card that says why (the model is checked and fine; only the pictures are missing)."""
    try:
        return build(model, task, classes, evaluation, about)
    except Exception as exc:  # noqa: BLE001 - any failure to draw means the same: no card
        reason = f"the card could not be made ({type(exc).__name__}: {str(exc)[:200]})"
        say(f"warning: {reason}; publishing without it")
        return Card({"evaluated_on": None, "metrics": [], "plots": [], "importance": [], "note": reason})


def display_names(classes: Sequence[Any], class_names: dict[str, str] | None) -> list[str]:
    names = class_names or {}
    return [names.get(str(c), str(c)) for c in classes]


# ---- classifiers ------------------------------------------------------------------------------
def _classifier_card(model: Any, classes: Sequence[Any], names: list[str], evaluation: Evaluation):
    from sklearn.metrics import confusion_matrix

    truth = np.array([_index_of(classes, v) for v in evaluation.truth])
    probabilities = model.predict_proba(evaluation.features) if hasattr(model, "predict_proba") else None
    predicted = np.array([_index_of(classes, plain(v)) for v in model.predict(evaluation.features)])
    metrics = classification_intervals(truth, predicted, probabilities, len(classes))
    matrix = confusion_matrix(truth, predicted, labels=range(len(classes)))
    plots = [("confusion.svg", "Confusion matrix", "Held-out rows by true class (rows) and predicted class (columns)",
              _confusion_plot(matrix, names))]
    if probabilities is not None and len(set(truth.tolist())) >= 2:
        plots += [
            ("roc.svg", "ROC curve", "True positive rate against false positive rate as the threshold moves"
             + (" (one class against the rest)" if len(classes) > 2 else f" (positive class: {names[1]})"),
             _curve_plot("roc", truth, probabilities, names)),
            ("precision-recall.svg", "Precision-recall curve", "Precision against recall as the threshold moves"
             + (" (one class against the rest)" if len(classes) > 2 else f" (positive class: {names[1]})"),
             _curve_plot("pr", truth, probabilities, names)),
            ("calibration.svg", "Calibration curve",
             "Observed share against predicted probability, in bins of equal size: on the diagonal, a probability "
             "of 0.7 comes true 70% of the time" + ("" if len(classes) == 2 else " (the top class's probability)"),
             _calibration_plot(truth, probabilities, names)),
        ]
    return metrics, plots


def _index_of(classes: Sequence[Any], value: Any) -> int:
    for index, known in enumerate(classes):
        if known == value or str(known) == str(value):
            return index
    raise ValueError(f"class {value!r} is not one of the model's classes")


def _confusion_plot(matrix: np.ndarray, names: list[str]) -> bytes:
    figure, axes = _figure()
    axes.imshow(matrix, cmap="Blues")
    ticks = range(len(names))
    axes.set_xticks(ticks, [_short(n) for n in names], rotation=30 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center")
    axes.set_yticks(ticks, [_short(n) for n in names])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    high = matrix.max() or 1
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center", color="white" if count > high / 2 else "black")
    return _svg(figure)


def _curve_plot(kind: str, truth: np.ndarray, probabilities: np.ndarray, names: list[str]) -> bytes:
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    figure, axes = _figure()
    shown = [1] if len(names) == 2 else list(range(min(len(names), MAX_CURVES)))
    for index in shown:
        positive = truth == index
        if positive.all() or not positive.any():
            continue
        scores = probabilities[:, index]
        if kind == "roc":
            x, y, _ = roc_curve(positive, scores)
            label = f"{_short(names[index])}: AUC {auc(x, y):.3f}"
        else:
            y, x, _ = precision_recall_curve(positive, scores)
            label = f"{_short(names[index])}: AP {average_precision_score(positive, scores):.3f}"
        axes.plot(x, y, label=label, drawstyle="steps-post" if kind == "pr" else "default")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
        axes.set_xlabel("false positive rate")
        axes.set_ylabel("true positive rate")
    else:
        axes.set_xlabel("recall")
        axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower right" if kind == "roc" else "lower left", fontsize="small")
    return _svg(figure)


def _calibration_plot(truth: np.ndarray, probabilities: np.ndarray, names: list[str]) -> bytes:
    from sklearn.calibration import calibration_curve

    if len(names) == 2:
        hit, confidence, what = truth == 1, probabilities[:, 1], f"P({_short(names[1])})"
    else:
        top = probabilities.argmax(axis=1)
        hit, confidence, what = truth == top, probabilities.max(axis=1), "probability of the top class"
    bins = max(2, min(10, len(truth) // 15))
    observed, predicted = calibration_curve(hit, confidence, n_bins=bins, strategy="quantile")
    figure, axes = _figure()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    axes.plot(predicted, observed, marker="o", label="this model")
    axes.set_xlabel(f"predicted {what}")
    axes.set_ylabel("observed share")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize="small")
    return _svg(figure)


# ---- regressors -------------------------------------------------------------------------------
def _regressor_card(model: Any, evaluation: Evaluation):
    truth = evaluation.truth.to_numpy(dtype="float64")
    predicted = np.asarray(model.predict(evaluation.features), dtype="float64")
    metrics = regression_intervals(truth, predicted)
    shown = np.random.default_rng(0).permutation(len(truth))[:SCATTER_POINTS]
    plots = [
        ("predicted-actual.svg", "Predicted against actual",
         "Each held-out row's predicted value against its true value; on the diagonal the prediction is exact",
         _scatter(truth[shown], predicted[shown], "actual", "predicted", diagonal=True)),
        ("residuals.svg", "Residuals", "Actual minus predicted, against the predicted value: a pattern means the "
         "model is off in a systematic way", _scatter(predicted[shown], truth[shown] - predicted[shown], "predicted",
                                                      "residual (actual - predicted)", diagonal=False)),
    ]
    return metrics, plots


def _scatter(x: np.ndarray, y: np.ndarray, x_label: str, y_label: str, diagonal: bool) -> bytes:
    figure, axes = _figure()
    axes.scatter(x, y, s=8, alpha=0.5)
    if diagonal:
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        axes.plot([low, high], [low, high], linestyle=":", color="grey")
    else:
        axes.axhline(0, linestyle=":", color="grey")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    return _svg(figure)


# ---- both -------------------------------------------------------------------------------------
def _importance_scoring(task: str, model: Any, evaluation: Evaluation, truth: pd.Series) -> str:
    """The scorer the model was tuned with, unless it cannot score these rows (probabilities the
    model lacks, a ROC AUC without exactly two classes): then accuracy, or R² for a regressor."""
    fallback = "accuracy" if task == CLASSIFICATION else "r2"
    scoring = evaluation.scoring or fallback
    needs_probabilities = scoring in ("neg_log_loss", "roc_auc")
    if needs_probabilities and (not hasattr(model, "predict_proba") or truth.nunique() < 2):
        return fallback
    return fallback if scoring == "roc_auc" and truth.nunique() != 2 else scoring


def permutation_importance(model: Any, task: str, evaluation: Evaluation) -> tuple[list[dict[str, Any]], str]:
    """Each feature's mean drop in score (and its spread) when its column is shuffled, largest
    first, and the scorer used (the tuning's, or accuracy where it cannot score these rows)."""
    from sklearn.inspection import permutation_importance as permute

    features, truth = evaluation.features, evaluation.truth.reset_index(drop=True)
    names = [str(c) for c in features.columns] if hasattr(features, "columns") else evaluation.names
    if len(features) > IMPORTANCE_ROWS:
        chosen = np.sort(np.random.default_rng(0).choice(len(features), IMPORTANCE_ROWS, replace=False))
        features = features.iloc[chosen] if hasattr(features, "iloc") else features[chosen]
        truth = truth.iloc[chosen]
    scoring = _importance_scoring(task, model, evaluation, truth)
    try:
        found = permute(model, features, truth, scoring=scoring, n_repeats=IMPORTANCE_ROUNDS, random_state=0, n_jobs=1)
    except ValueError:  # a scorer that cannot score these rows (one class only): no importance
        return [], scoring
    ranked = sorted(zip(names, found.importances_mean, found.importances_std), key=lambda f: -f[1])
    return [{"feature": str(name), "mean": _round(mean), "std": _round(std)} for name, mean, std in ranked], scoring


def _importance_plot(importance: list[dict[str, Any]], about: dict[str, Any], scoring: str) -> bytes:
    shown = importance[:20][::-1]
    labels = _feature_labels(about)
    figure, axes = _figure(height=max(2.0, 0.3 * len(shown) + 1.0))
    axes.barh([_short(labels.get(f["feature"], f["feature"]), 28) for f in shown], [f["mean"] for f in shown],
              xerr=[f["std"] for f in shown], color="#3b6ea8")
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_xlabel(f"drop in {scoring} when shuffled")
    return _svg(figure)


def _feature_labels(about: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f.get("label") or f["name"] for f in (about.get("schema") or {}).get("features", [])}


# ---- drawing ----------------------------------------------------------------------------------
def _figure(height: float = PLOT_SIZE[1]):
    """A figure of its own, outside pyplot: nothing global changes (a notebook calling
    publish_model keeps its backend), and savefig(format="svg") needs no backend."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(PLOT_SIZE[0], height), layout="constrained")
    return figure, figure.add_subplot()


def _svg(figure) -> bytes:
    """SVG with text as text (small, searchable) and no date or random ids: the same model draws
    the same bytes."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "model-card"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _round(number: float) -> float | None:
    return None if number is None or not math.isfinite(number) else float(f"{number:.4g}")


# ---- Markdown ---------------------------------------------------------------------------------
def markdown(model: Any, about: dict[str, Any], summary: dict[str, Any]) -> bytes:
    """The card in skops' format: its template's sections, filled from what training knows."""
    import warnings

    from skops import card as skops_card

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = skops_card.Card(model, model_diagram=False)
    document.add(**{
        "Model description": _description(about),
        "Model description/Intended uses & limitations": _limitations(about, summary),
        "Model description/Training Procedure": _procedure(about),
        "Model description/Training Procedure/Hyperparameters": _hyperparameters(model),
        "How to Get Started with the Model": _getting_started(about),
    })
    if summary["metrics"]:
        document.add_metrics(description=f"On {summary['evaluated_on']}, with 95% bootstrap intervals:",
                             **{m["name"]: _interval_text(m) for m in summary["metrics"]})
    else:
        document.add(**{"Model description/Evaluation Results": summary.get("note", "")})
    if summary["importance"]:
        document.add(**{"Model description/Evaluation Results/Permutation importance by feature": _importance_table(summary)})
    for plot in summary["plots"]:
        document.add(**{f"Model description/Evaluation Results/{plot['title']}":
                        f"![{plot['title']}]({plot['file']})\n\n{plot['caption']}."})
    for unknown in ("Model description/Training Procedure/Model Plot", "Model Card Authors", "Model Card Contact",
                    "Citation"):
        document.delete(unknown)
    return document.render().encode("utf-8")


def _importance_table(summary: dict[str, Any]) -> str:
    lines = [f"The drop in `{summary['importance_scoring']}` when one feature's values are shuffled "
             f"({IMPORTANCE_ROUNDS} shuffles):", "", "| feature | mean drop | std |", "| --- | ---: | ---: |"]
    lines += [f"| {f['feature']} | {f['mean']} | {f['std']} |" for f in summary["importance"]]
    return "\n".join(lines)


def _interval_text(metric: dict[str, Any]) -> str:
    if metric.get("value") is None:
        return "n/a"
    if metric.get("low") is None:
        return f"{metric['value']:.4g}"
    return f"{metric['value']:.4g} (95% CI {metric['low']:.4g} to {metric['high']:.4g})"


def _description(about: dict[str, Any]) -> str:
    features = (about.get("schema") or {}).get("features", [])
    lines = [f"`{about.get('name')}`: a scikit-learn {about.get('estimator')} "
             f"{'classifier' if about.get('task') == CLASSIFICATION else 'regressor'} predicting "
             f"`{about.get('target') or 'the target'}` from {len(features)} features "
             f"({', '.join(f['name'] for f in features[:12])}{', ...' if len(features) > 12 else ''})."]
    if about.get("task") == CLASSIFICATION:
        names = display_names(about.get("classes") or [], about.get("class_names"))
        lines.append("Classes: " + ", ".join(f"`{c}`" + (f" ({n})" if n != str(c) else "")
                                             for c, n in zip(about.get("classes") or [], names)) + ".")
    return "\n\n".join(lines)


def _limitations(about: dict[str, Any], summary: dict[str, Any]) -> str:
    data = about.get("training_data") or {}
    parts = []
    if data:
        parts.append(f"Trained on {data.get('rows')} rows of `{data.get('file')}` (sha256 {str(data.get('sha256'))[:12]}...). "
                     "It has seen only what those rows hold: inputs outside their ranges are extrapolation, and the "
                     "service warns about them per row.")
    else:
        parts.append("Fitted elsewhere and imported; what it was trained on is not recorded here.")
    if summary.get("evaluated_on"):
        parts.append(f"The metrics and plots come from {summary['evaluated_on']}; the intervals say how much they "
                     "could move on another sample of the same size.")
    parts.append("Watch drift on the card page: inputs unlike the training data make these numbers stale.")
    return "\n\n".join(parts)


def _procedure(about: dict[str, Any]) -> str:
    cv = about.get("cv") or {}
    if not cv:
        return "Imported; see the source notebook for how it was fitted."
    return (f"A grid search over {cv.get('folds')}-fold cross-validation scored by `{cv.get('scoring')}` chose "
            f"{', '.join(f'`{k}={v}`' for k, v in (cv.get('best_params') or {}).items()) or 'the defaults'} "
            f"(cross-validated score {cv.get('best_score')}). Every preprocessing step lives inside the saved Pipeline.")


def _hyperparameters(model: Any) -> str:
    """The Pipeline's settings that are plain values (skops lists every nested object's repr too,
    hundreds of characters per cell)."""
    plain_values = {name: value for name, value in model.get_params(deep=True).items()
                    if isinstance(value, (str, int, float, bool, type(None))) and "__" in name}
    lines = ["| setting | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in sorted(plain_values.items())]
    return "\n".join(lines) if plain_values else "The estimator's defaults."


def _getting_started(about: dict[str, Any]) -> str:
    example = {f["name"]: f.get("example") for f in (about.get("schema") or {}).get("features", [])}
    import json

    return ("```bash\n"
            f"curl -s 'http://localhost:8000/predict?model={about.get('name')}' "
            f"-H 'Content-Type: application/json' \\\n  -d '{json.dumps(example)}'\n```")
