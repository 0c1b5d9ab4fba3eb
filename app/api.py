"""Blueprint: predictions and model metadata.

A prediction is check -> decode -> predict -> encode, each a small function:
pick the model (registry), decode the payload against its schema, predict, encode the response.
"""
from __future__ import annotations

import re
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from . import inference, payloads
from .errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from .registry import LoadedModel, Registry
from .schema import Decoded, InvalidRows

bp = Blueprint("api", __name__)

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
SELECTORS = ("model", "version")
VERSION = re.compile(r"[1-9][0-9]{0,8}")  # ASCII digits only: str.isdigit() also accepts '²' and '١'


def registry() -> Registry:
    return current_app.extensions["registry"]


# ---- check ------------------------------------------------------------------------------------
def choose_model() -> LoadedModel:
    """The model named by ?model= and ?version=, or the default."""
    if not request.query_string:  # the common case: skip parsing an empty query string
        return registry().get()
    arguments = request.args
    version_text = arguments.get("version")
    version = None
    if version_text is not None:
        if not VERSION.fullmatch(version_text):
            raise MalformedRequest(f"version must be a positive whole number, got {version_text[:20]!r}")
        version = int(version_text)
    name = arguments.get("model") or None
    return registry().get(name, version)


def body_kind() -> str:
    mimetype = request.mimetype
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        return "json"
    if mimetype in CSV_TYPES:
        return "csv"
    received = request.content_type or "no Content-Type header"
    raise UnsupportedMediaType(f"expected Content-Type application/json or text/csv, got {received}")


# ---- decode -----------------------------------------------------------------------------------
def read_body() -> bytes:
    """The request body, read straight from the WSGI input when its length is declared.

    Werkzeug's stream wrappers cost more than the prediction itself for a small body; the
    size limit (MAX_CONTENT_LENGTH) is enforced here the same way, with a 413.
    """
    length = request.content_length
    stream = request.environ.get("wsgi.input")
    if length is None or stream is None or request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)
    if length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise RequestEntityTooLarge()
    return stream.read(length)


def decode_body(model: LoadedModel) -> Decoded:
    kind = body_kind()
    body = read_body()
    max_rows = current_app.config["MAX_BATCH_ROWS"]
    with invalid_rows_as_422():
        if kind == "csv":
            return payloads.decode_csv(body, model.schema, max_rows)
        return payloads.decode_json(payloads.parse_json(body), model.schema, max_rows)


def decode_query(model: LoadedModel) -> Decoded:
    arguments = {k: v for k, v in request.args.lists() if k not in SELECTORS}
    if not arguments:
        example = "&".join(f"{k}={v}" for k, v in model.schema.example().items())
        raise MalformedRequest(f"give the fields as a query string, e.g. /predict?{example}")
    with invalid_rows_as_422():
        return payloads.decode_query(arguments, model.schema)


class invalid_rows_as_422:
    """Turn the schema's collected problems into one 422 response listing them all."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, InvalidRows):
            limit = current_app.config["MAX_LISTED_ERRORS"]
            problems = error.problems
            rows = {p.row for p in problems if p.row is not None}
            detail = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
            if rows:
                detail += f" in {len(rows)} row{'s' * (len(rows) != 1)}"
            if len(problems) > limit:
                detail += f" (the first {limit} are listed)"
            raise InvalidInput(detail, [p.as_dict() for p in problems[:limit]]) from None
        return False


# ---- encode -----------------------------------------------------------------------------------
def json_response(body: Any, model: LoadedModel) -> Response:
    # orjson: several times faster than the standard library on large batches, same JSON.
    response = current_app.response_class(orjson.dumps(body) + b"\n", mimetype="application/json")
    response.headers["X-Model-Version"] = model.tag
    return response


def prediction_document(model: LoadedModel, decoded: Decoded, probabilities) -> dict[str, Any]:
    """The response to a prediction; the hot path (app/hotpath.py) sends the same document."""
    labels = inference.labels(model, probabilities)
    rows = probabilities.tolist()
    if len(model.classes) == 2:  # the common case, built without a zip per row
        first, second = (str(c) for c in model.classes)
        predictions = [{"label": label, "probabilities": {first: p, second: q}, "warnings": warnings}
                       for label, (p, q), warnings in zip(labels, rows, decoded.warnings)]
    else:
        keys = [str(c) for c in model.classes]
        predictions = [{"label": label, "probabilities": dict(zip(keys, row)), "warnings": warnings}
                       for label, row, warnings in zip(labels, rows, decoded.warnings)]
    return {"model": {"name": model.name, "version": model.version}, "predictions": predictions}


def predict(model: LoadedModel, decoded: Decoded, metrics=None):
    """Probabilities for the rows, counted in the metrics."""
    probabilities = inference.predict_proba(model, decoded)
    if metrics is not None:
        metrics.observe_predictions(model, probabilities)
    return probabilities


def serve(model: LoadedModel, decoded: Decoded) -> Response:
    probabilities = predict(model, decoded, current_app.extensions.get("metrics"))
    return json_response(prediction_document(model, decoded, probabilities), model)


# ---- routes -----------------------------------------------------------------------------------
@bp.post("/predict")
def predict_post() -> Response:
    model = choose_model()
    return serve(model, decode_body(model))


@bp.get("/predict")
def predict_get() -> Response:
    model = choose_model()
    return serve(model, decode_query(model))


@bp.post("/invocations")
def invocations() -> Response:
    """MLflow's scoring protocol: same inputs as POST /predict, MLflow's response shape."""
    model = choose_model()
    decoded = decode_body(model)
    probabilities = predict(model, decoded, current_app.extensions.get("metrics"))
    return json_response({"predictions": inference.labels(model, probabilities)}, model)


@bp.get("/ping")
def ping() -> Response:
    """MLflow's health probe: 200 when the default model can answer."""
    reason = registry().problem()
    return jsonify({"status": "ok" if reason is None else "unavailable"}), (200 if reason is None else 503)


@bp.get("/models")
def list_models() -> Response:
    reg = registry()
    return jsonify({
        "default": {"name": reg.default_name, "version": reg.default_version(reg.default_name)},
        "models": [_summary(reg, name) for name in reg.names()],
    })


@bp.get("/models/<name>")
def show_model(name: str) -> Response:
    reg = registry()
    described = reg.describe(name)
    default = reg.default_version(name)
    current = next((v for v in described["versions"] if v["version"] == default), described["versions"][-1])
    return jsonify({**current, "default_version": default, "versions": [v["version"] for v in described["versions"]]})


@bp.get("/models/<name>/<int:version>")
def show_model_version(name: str, version: int) -> Response:
    return jsonify(registry().describe_version(name, version))


def _summary(reg: Registry, name: str) -> dict[str, Any]:
    failed = reg.failures.get(name, {})
    return {
        "name": name,
        "default_version": reg.default_version(name),
        "versions": reg.versions(name),
        "unavailable": {str(v): reason for v, reason in sorted(failed.items())},
        "url": f"/models/{name}",
    }
