"""Prometheus metrics: requests (counted by the gateway), predictions, rows and the models served.

Under gunicorn every worker is its own process, so the metrics use prometheus_client's
multiprocess mode: gunicorn.conf.py points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before
anything imports the client, each worker writes its values there, and a scrape adds them up.
Without that variable (tests, ``flask run``) the same metrics live in the process.
Label values come from a bounded set (route templates, model names and versions, classes, status
codes), never from what a client sends. The Flask blueprint at ``/metrics`` (app/http/metrics.py)
serves ``exposition()``.
"""
from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("app.metrics")

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)
# A regressor's predicted values: one bucket set for every model (Prometheus fixes buckets per
# metric), 1-2.5-5 steps over both signs, so a shift of level shows whatever the target's scale.
_STEPS = [m * 10.0 ** e for e in range(-2, 7) for m in (1, 2.5, 5)]
VALUE_BUCKETS = tuple(sorted({-s for s in _STEPS} | {0.0} | set(_STEPS)))


def fail_open(method):
    """Metrics must never fail a request: if the values cannot be written (the multiprocess folder
    was deleted, the disk is full), serve anyway and say so at most once a minute."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (OSError, ValueError) as exc:
            now = time.monotonic()
            if now - self._last_failure_log > 60:
                self._last_failure_log = now
                log.error("metrics not recorded (%s: %s); serving without them", type(exc).__name__, exc)
    return guarded


def observe_many(histogram, summary, values: np.ndarray) -> None:
    """``observe`` each value in the histogram and the summary, in one pass per bucket for a batch.

    prometheus_client has no bulk observe; its Histogram keeps per-bucket counters and a sum
    (``_buckets``, ``_sum``, ``_upper_bounds``) and its Summary a count and a sum, which a batch of
    10,000 rows updates here with a dozen increments instead of 20,000 calls. Small answers take
    the public path."""
    finite = values[np.isfinite(values)]
    if len(finite) <= 16 or not hasattr(histogram, "_buckets") or not hasattr(summary, "_count"):
        for value in finite.tolist():
            histogram.observe(value)
            summary.observe(value)
        return
    slots = np.searchsorted(np.asarray(histogram._upper_bounds), finite, side="left")
    for slot, count in enumerate(np.bincount(slots, minlength=len(histogram._upper_bounds)).tolist()):
        if count:
            histogram._buckets[slot].inc(count)
    total = float(finite.sum())
    histogram._sum.inc(total)
    summary._count.inc(len(finite))
    summary._sum.inc(total)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class DriftGauges:
    """A collector computed at scrape time from the drift window's counts (app/gateway/drift.py):
    the PSI per model, version and feature, of the predictions, and the rows counted. A PSI is left
    out below DRIFT_MIN_ROWS rows; versions without a reference are left out altogether."""

    def __init__(self, window, served) -> None:
        self.window = window
        self.served = served

    def collect(self):
        features = GaugeMetricFamily("model_feature_psi", "Population stability index of a feature's values over the "
                                     "drift window against training (< 0.1 stable, > 0.25 major)",
                                     labels=["model", "version", "feature"])
        predictions = GaugeMetricFamily("model_prediction_psi", "Population stability index of the predictions over "
                                        "the drift window against the reference", labels=["model", "version"])
        rows = GaugeMetricFamily("model_drift_rows", "Rows counted in the drift window (DRIFT_WINDOW seconds)",
                                 labels=["model", "version"])
        now = time.time()
        for versions in self.served.models.values():
            for loaded in versions.values():
                report = self.window.report(loaded, now)
                if not report["available"]:
                    continue
                labels = [loaded.name, str(loaded.version)]
                rows.add_metric(labels, report["rows"])
                for feature in report["features"]:
                    if feature["psi"] is not None:
                        features.add_metric([*labels, feature["name"]], feature["psi"])
                if report["predictions"]["psi"] is not None:
                    predictions.add_metric(labels, report["predictions"]["psi"])
        yield from (features, predictions, rows)


class Metrics:
    def __init__(self, drift=None) -> None:
        self.drift = drift  # the drift window (app/gateway/drift.py), whose gauges a scrape computes
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("http_requests_total", "HTTP requests answered, by route, method and status",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("http_request_duration_seconds", "Time to answer a request, by route",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("model_predictions_total", "Rows predicted, by model, version and predicted class",
                                   ["model", "version", "label"], registry=r)
        self.values = Histogram("model_predicted_values", "Values predicted by regressors, by model and version",
                                ["model", "version"], buckets=VALUE_BUCKETS, registry=r)
        # A histogram with negative buckets has no _sum in Prometheus' format; the mean comes from here.
        self.value_totals = Summary("model_predicted_value", "Sum and count of the values predicted by regressors "
                                    "(their mean is sum / count)", ["model", "version"], registry=r)
        self.rows = Histogram("model_prediction_rows", "Rows per prediction request", ["model", "version"],
                              buckets=ROW_BUCKETS, registry=r)
        self.model_info = Gauge("model_info", "Models being served (1), with their backend; default=true marks "
                                "the one /predict uses without ?model=", ["model", "version", "backend", "default"],
                                registry=r, multiprocess_mode="livemax")
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._model_children: dict[tuple[str, int], tuple[Any, list[Any]]] = {}
        self._info_pid: int | None = None
        self._last_failure_log = -1e9

    # Children are cached: labels() costs as much as the increment itself.
    @fail_open
    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(endpoint, method, str(status)), self.latency.labels(endpoint))
        children[0].inc()
        children[1].observe(seconds)

    @fail_open
    def observe_predictions(self, model, output) -> None:
        """Count the rows of one answer: a classifier's by predicted class, a regressor's values
        in a histogram."""
        key = (model.name, model.version)
        children = self._model_children.get(key)
        if children is None:
            version = str(model.version)
            children = self._model_children[key] = (
                self.rows.labels(model.name, version),
                (self.values.labels(model.name, version), self.value_totals.labels(model.name, version))
                if model.is_regressor else
                [self.predictions.labels(model.name, version, str(c)) for c in model.classes])
        rows, per_class = children
        rows.observe(len(output))
        if model.is_regressor:
            observe_many(*per_class, output.values)
            return
        winners = output.winners
        if len(winners) == 1:
            per_class[int(winners[0])].inc()
        else:
            for index, count in enumerate(np.bincount(winners, minlength=len(per_class)).tolist()):
                if count:
                    per_class[index].inc(count)

    @fail_open
    def describe_models(self, registry) -> None:
        """model_info for this process, once per process: a worker's entries go when it exits."""
        if self._info_pid == os.getpid():
            return
        self._info_pid = os.getpid()
        default = None if registry.unready_reason() else registry.get()
        for versions in registry.models.values():
            for loaded in versions.values():
                self.model_info.labels(loaded.name, str(loaded.version), loaded.backend,
                                       str(loaded is default).lower()).set(1)

    def exposition(self, served=None) -> bytes:
        """The text a scrape answers: every worker's metrics and, given the served models, their drift."""
        directory = multiprocess_dir()
        if directory is None:
            text = generate_latest(self.registry)
        else:
            collected = CollectorRegistry()
            multiprocess.MultiProcessCollector(collected, path=directory)
            text = generate_latest(collected)
        if self.drift is not None and served is not None:
            gauges = CollectorRegistry(auto_describe=False)
            gauges.register(DriftGauges(self.drift, served))
            text += generate_latest(gauges)
        return text
