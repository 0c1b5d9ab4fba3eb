"""The OpenAPI 3 document, generated from the loaded models' schemas.

Fields, types, categories, gaps and examples come from each model's metadata, so the document
always describes the models actually being served. ``/predict`` documents the default model's
input; the other models' inputs are in ``components.schemas`` and at ``/models/<name>``.
"""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Flask, Response, current_app, jsonify
from flask_swagger_ui import get_swaggerui_blueprint

from ..model.contract import NUMBER, Feature
from ..model.output import CLASSIFICATION, REGRESSION
from ..model.registry import LoadedModel, Registry
from ..model.rules import MAX_MAGNITUDE
from . import routes

API_VERSION = "1.0.0"
bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def document() -> Response:
    config = current_app.config
    gateway = current_app.extensions["gateway"]
    admin = gateway.admin_keys is not None
    spec = build(current_app.extensions["registry"], API_VERSION, lambda setting: bool(config[setting]), admin)
    describe_gateway(spec, secured=gateway.keys is not None, limited=gateway.limiter is not None, admin=admin)
    return jsonify(spec)


SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def describe_gateway(spec: dict[str, Any], secured: bool, limited: bool, admin: bool = False) -> None:
    """Add what the gateway (app/gateway/) does before any route: 401 without a key, 403 for a
    prediction key on the admin API, 429 over the limit."""
    if secured or admin:
        spec["components"]["securitySchemes"] = SECURITY_SCHEMES
    by_path = {routes.openapi_path(route.rule): route for route in routes.ROUTES}
    for path, operations in spec["paths"].items():
        route = by_path[path]
        if route.open:
            continue
        for operation in operations.values():
            if route.admin:
                operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
                operation["responses"]["401"] = _problem_response("No admin key, an empty one, or a wrong one")
                operation["responses"]["403"] = _problem_response("A prediction key: the admin API needs an admin key")
            elif secured:
                operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
                operation["responses"]["401"] = _problem_response("No API key, an empty one, or a wrong one")
            if limited and route.limited:
                limited_response = _problem_response("Rate limit used up; retry after Retry-After seconds")
                limited_response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
                operation["responses"]["429"] = limited_response


def register_docs(app: Flask) -> None:
    """/openapi.json, and Swagger UI at /docs from the assets shipped in flask-swagger-ui (no CDN)."""
    app.register_blueprint(bp)
    app.register_blueprint(get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": "Model API docs"}))

PROBLEM = {"$ref": "#/components/schemas/Problem"}
ERRORS = {
    "400": "Malformed body (not JSON or CSV, empty, not UTF-8) or a bad version",
    "404": "Unknown model or version",
    "413": "Body larger than MAX_CONTENT_LENGTH, more rows than MAX_BATCH_ROWS, or explanations for more rows than "
           "MAX_EXPLAINED_ROWS (by approximation) or than fit in EXPLAIN_TIME_LIMIT",
    "415": "Content-Type is neither application/json nor text/csv",
    "422": "Invalid values: every problem, per row and field (explain: not true or false)",
    "503": "The model failed verification at startup",
}


def build(registry: Registry, version: str, enabled: Callable[[str], bool], admin: bool = False) -> dict[str, Any]:
    """The document: one path per route in the table that has operations to document (the admin
    API's only when it is on)."""
    default = registry.get()
    served = [versions[max(versions)] if name != default.name else default
              for name, versions in registry.models.items()]
    tasks = {model.task for model in served} | {default.task}
    schemas: dict[str, Any] = {"Problem": _problem_schema(), "PredictionResponse": _prediction_response(tasks),
                               "Explanation": EXPLANATION,
                               **{PREDICTION_SCHEMAS[task]: PREDICTION_ITEMS[task] for task in tasks}}
    for model in served:
        schemas[_record_name(model)] = _record_schema(model)
    details = _operation_details(default, registry.names())
    paths: dict[str, Any] = {}
    for route in routes.ROUTES:
        if (route.setting is not None and not enabled(route.setting)) or (route.admin and not admin):
            continue
        for operation in route.operations:
            if operation.operation_id is not None:
                paths.setdefault(routes.openapi_path(route.rule), {})[operation.method.lower()] = {
                    "operationId": operation.operation_id, "summary": operation.summary,
                    **details[operation.operation_id]}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "scikit-learn model server",
            "version": version,
            "description": f"Predictions from scikit-learn Pipelines. The default model is {default.tag}; "
                           "errors are RFC 9457 problem+json documents.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _operation_details(default: LoadedModel, model_names: list[str]) -> dict[str, dict[str, Any]]:
    """Parameters, bodies and responses by operation id; ids and summaries are in the route table."""
    record_ref = {"$ref": f"#/components/schemas/{_record_name(default)}"}
    selectors = [
        {"name": "model", "in": "query", "required": False, "description": "model name (default: the default model)",
         "schema": {"type": "string", "enum": model_names}},
        {"name": "version", "in": "query", "required": False, "description": "model version (default: newest or pinned)",
         "schema": {"type": "integer", "minimum": 1}},
    ]
    explain = {"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
               "description": "true: each prediction carries its explanation (per-feature contributions that add "
                              "up to the model's output from the training baseline)"}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "predict": {
            "parameters": selectors + [explain],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _payload_schema(record_ref, default, explained=True),
                                     "example": default.schema.example()},
                "text/csv": {"schema": {"type": "string"}, "example": _csv_example(default)},
            }},
            "responses": _prediction_responses(),
        },
        "predictFromQuery": {
            "parameters": selectors + [explain] + [_query_parameter(f) for f in default.schema.features],
            "responses": _prediction_responses(),
        },
        "invocations": {
            "parameters": selectors,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _payload_schema(record_ref, default)},
                "text/csv": {"schema": {"type": "string"}},
            }},
            "responses": {
                "200": _json_response("Labels (classifiers) or values (regressors) in input order", {
                    "type": "object", "required": ["predictions"],
                    "properties": {"predictions": {"type": "array", "items": _plain_schema(default)}},
                }),
                **{code: _problem_response(text) for code, text in ERRORS.items()},
            },
        },
        "listModels": {"responses": {"200": _json_response("Models", {"type": "object"})}},
        "describeModel": {
            "parameters": [name],
            "responses": {"200": _json_response("Metadata", {"type": "object"}), "404": _problem_response(ERRORS["404"])},
        },
        "describeModelVersion": {
            "parameters": [name, {"name": "version", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": {"description": "Metadata (JSON), or the model card page for a browser (an Accept "
                                                 "header that ranks text/html above JSON)",
                                  "content": {"application/json": {"schema": {"type": "object"}},
                                              "text/html": {"schema": {"type": "string"}}}},
                          "404": _problem_response(ERRORS["404"]), "503": _problem_response(ERRORS["503"])},
        },
        "getModelCardFile": {
            "parameters": [name, {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
                           {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "README.md, or a plot the card lists (card.plots[].file in the metadata)"}],
            "responses": {"200": {"description": "The file, checked against the sha256 in the version's signed metadata",
                                  "content": {"image/svg+xml": {"schema": {"type": "string"}},
                                              "text/markdown": {"schema": {"type": "string"}}}},
                          "404": _problem_response(ERRORS["404"])},
        },
        "modelDrift": {
            "parameters": [name, {"name": "version", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json_response("The window, the rows counted in it, and the PSI (null below "
                                                "DRIFT_MIN_ROWS rows, with the reason) of each feature and of the "
                                                "predictions, with each bin's reference and current share",
                                                _drift_schema()),
                          "404": _problem_response(ERRORS["404"]), "503": _problem_response(ERRORS["503"])},
        },
        "health": {"responses": {"200": _json_response("Alive", {
            "type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}})}},
        "ready": {"responses": {"200": _json_response("Ready", {"type": "object"}),
                                "503": _problem_response("Not ready; detail says why")}},
        "ping": {"responses": {"200": _json_response("Ready", {"type": "object"}),
                               "503": _json_response("Not ready", {"type": "object"})}},
        "hello": {"responses": {"200": _greeting()}},
        "helloName": {"parameters": [name], "responses": {"200": _greeting()}},
        "metrics": {"responses": {"200": {"description": "Metrics", "content": {"text/plain": {
            "schema": {"type": "string"}}}}}},
        **_admin_details(name),
    }


def _admin_details(name: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The admin API's operations (app/http/admin.py)."""
    binary = {"type": "string", "format": "binary"}
    change = _json_response("The change, and whether the reload was requested (gunicorn) or done", {
        "type": "object", "required": ["action", "name", "version", "previous"],
        "properties": {"action": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "integer"},
                       "previous": {"type": "integer", "nullable": True}, "by": {"type": "string", "nullable": True},
                       "at": {"type": "string"}, "reload": {"type": "string", "enum": ["requested", "done"]}}})
    conflict = _problem_response("The model's state does not allow it (the served version, MODEL_VERSION, "
                                 "a version that does not load, nothing to roll back to)")
    version_path = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    options = {
        "target": {"type": "string", "description": "the column to predict (required)"},
        "task": {"type": "string", "enum": ["classification", "regression"]},
        "estimator": {"type": "string", "enum": ["svm", "logreg", "rf", "hgb", "ridge", "svr"]},
        "test_size": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "exclusiveMaximum": True, "maximum": 1},
        "folds": {"type": "integer", "minimum": 2, "maximum": 20},
        "seed": {"type": "integer", "minimum": 0},
        "scoring": {"type": "string"},
        "drop": {"type": "array", "items": {"type": "string"}},
        "class_names": {"type": "string", "description": "display names of the classes, e.g. 0=no diabetes,1=diabetes"},
        "promote": {"type": "string", "enum": ["if-better", "always", "never"], "default": "if-better",
                    "description": "if-better: when its log loss (classifiers) or RMSE (regressors) on the held-out "
                                   "rows beats the served version's"},
    }
    return {
        "uploadModelVersion": {
            "parameters": [name, {"name": "promote", "in": "query", "required": False,
                                  "schema": {"type": "boolean", "default": False},
                                  "description": "serve it at once (default: stored, not served until promoted)"}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["model", "metadata"],
                "properties": {"model": binary, "metadata": binary, "signature": binary}}}}},
            "responses": {
                "201": _json_response("Stored as the next version", {"type": "object"}),
                "400": _problem_response("A bad model name or an unreadable multipart body"),
                "413": _problem_response("Larger than MAX_UPLOAD_LENGTH"),
                "415": _problem_response("Not multipart/form-data"),
                "422": _problem_response("Every problem that keeps the version from loading, by part"),
                "507": _problem_response("The models volume is full; nothing was kept"),
            },
        },
        "deleteModelVersion": {"parameters": [name, version_path], "responses": {
            "200": change, "404": _problem_response(ERRORS["404"]), "409": conflict}},
        "promoteModel": {
            "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["version"], "properties": {"version": {"type": "integer", "minimum": 1}}},
                "example": {"version": 2}}}},
            "responses": {"200": change, "404": _problem_response(ERRORS["404"]), "409": conflict,
                          "422": _problem_response("No version number in the body")},
        },
        "rollbackModel": {"parameters": [name], "responses": {"200": change, "404": _problem_response(ERRORS["404"]),
                                                              "409": conflict}},
        "trainModel": {
            "parameters": [name],
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["data", "target"], "properties": {
                    "data": binary, "test_data": binary, "columns": binary, **options}}},
                "text/csv": {"schema": {"type": "string"}}},
                "description": "multipart: the training CSV as the part data, the options as fields; or the CSV "
                               "as the whole text/csv body, the options as query parameters"},
            "responses": {
                "202": _json_response("The job: follow its url", {"type": "object", "required": ["id", "url"]}),
                "413": _problem_response("Larger than MAX_UPLOAD_LENGTH"),
                "415": _problem_response("Neither multipart/form-data nor text/csv"),
                "422": _problem_response("Every problem with the options or the CSV's header"),
                "503": _problem_response("Every local job slot is taken, or the queue is unreachable (Retry-After)"),
                "507": _problem_response("The models volume is full; nothing was kept"),
            },
        },
        "getJob": {
            "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json_response("State (queued, running, succeeded, failed), progress and result", {
                "type": "object", "required": ["id", "state"], "properties": {
                    "id": {"type": "string"}, "state": {"type": "string",
                                                        "enum": ["queued", "running", "succeeded", "failed"]},
                    "progress": {"type": "object", "nullable": True}, "result": {"type": "object", "nullable": True},
                    "error": {"type": "string", "nullable": True}}}),
                "404": _problem_response("No such job")},
        },
    }


def _drift_schema() -> dict[str, Any]:
    """GET /models/<name>/<version>/drift (app/http/drift.py, app/model/drift.py)."""
    number = {"type": "number", "nullable": True}
    bin_schema = {"type": "object", "required": ["label", "reference", "current"], "properties": {
        "label": {"type": "string"}, "low": number, "high": number, "gaps": {"type": "boolean"},
        "reference": {"type": "number"}, "current": {"type": "number"}}}
    compared = {"psi": number, "level": {"type": "string", "enum": ["stable", "moderate", "major"], "nullable": True},
                "bins": {"type": "array", "items": bin_schema}}
    return {"type": "object", "required": ["model", "available"], "properties": {
        "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "integer"}}},
        "window": {"type": "object", "nullable": True, "properties": {
            "seconds": {"type": "integer"}, "step_seconds": {"type": "number"},
            "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}}},
        "available": {"type": "boolean", "description": "false: no reference or counting off; reason says why"},
        "reason": {"type": "string", "nullable": True},
        "rows": {"type": "integer"}, "min_rows": {"type": "integer"}, "reference_rows": {"type": "integer"},
        "features": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "kind": {"type": "string", "enum": ["number", "category"]}, **compared}}},
        "predictions": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": ["classes", "values"]}, "reference_rows": {"type": "integer"},
            "reference_from": {"type": "string"}, **compared}},
        "thresholds": {"type": "object"},
    }}


def _record_name(model: LoadedModel) -> str:
    return "".join(part.capitalize() for part in model.name.replace(".", "-").replace("_", "-").split("-")) + "Record"


def _feature_schema(feature: Feature) -> dict[str, Any]:
    if feature.kind == NUMBER:
        schema: dict[str, Any] = {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}
        if feature.minimum is not None:
            schema["description"] = (f"seen in training: {feature.minimum} to {feature.maximum}; values outside are "
                                     "predicted with a warning")
    else:
        schema = {"type": "string", "enum": list(feature.categories)}
    if feature.allow_missing:
        schema["nullable"] = True
        if "enum" in schema:
            schema["enum"] = schema["enum"] + [None]
    if feature.example is not None:
        schema["example"] = feature.example
    return schema


def _record_schema(model: LoadedModel) -> dict[str, Any]:
    properties = {f.name: _feature_schema(f) for f in model.schema.features}
    for name in [*model.schema.ignored, *([model.schema.target] if model.schema.target else [])]:
        properties[name] = {"description": "accepted and ignored: the model does not use it"}
    return {
        "type": "object",
        "description": f"One input row for {model.tag}; every listed feature is required (null only where allowed).",
        "required": [f.name for f in model.schema.features],
        "properties": properties,
        "additionalProperties": False,
        "example": model.schema.example(),
    }


def _payload_schema(record: dict, model: LoadedModel, explained: bool = False) -> dict[str, Any]:
    """A record, a batch or an envelope; beside an envelope, ``explain`` where it is answered."""
    batch = {"type": "array", "items": record, "minItems": 1}
    names = [f.name for f in model.schema.features]
    return {"oneOf": [
        record,
        batch,
        _envelope("instances", batch, explained),
        _envelope("inputs", batch, explained),
        _envelope("dataframe_records", batch, explained),
        _envelope("dataframe_split", {
            "type": "object", "required": ["columns", "data"], "additionalProperties": False,
            "properties": {"columns": {"type": "array", "items": {"type": "string", "enum": names}, "uniqueItems": True,
                                       "minItems": len(names), "maxItems": len(names)},
                           "data": {"type": "array", "minItems": 1, "items": {
                               "type": "array", "minItems": len(names), "maxItems": len(names),
                               "items": {"nullable": True, "oneOf": [{"type": "number"}, {"type": "string"}]}}},
                           "index": {"type": "array"}},
        }, explained),
    ]}


def _envelope(key: str, content: dict, explained: bool = False) -> dict[str, Any]:
    properties = {key: content}
    if explained:
        properties["explain"] = {"type": "boolean", "default": False,
                                 "description": "true: each prediction carries its explanation (as ?explain=true)"}
    return {"type": "object", "required": [key], "properties": properties, "additionalProperties": False}


def _query_parameter(feature: Feature) -> dict[str, Any]:
    schema = _feature_schema(feature)
    schema.pop("nullable", None)
    if "enum" in schema:
        schema["enum"] = [c for c in schema["enum"] if c is not None]
    return {"name": feature.name, "in": "query", "required": True, "schema": schema,
            "allowEmptyValue": feature.allow_missing}


def _plain_schema(model: LoadedModel) -> dict[str, Any]:
    """One item of /invocations' answer for the default model: its label, or its value."""
    if model.is_regressor:
        return {"type": "number"}
    if all(isinstance(c, bool) for c in model.classes):
        return {"type": "boolean"}
    if all(isinstance(c, int) and not isinstance(c, bool) for c in model.classes):
        return {"type": "integer", "enum": model.classes}
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in model.classes):
        return {"type": "number", "enum": model.classes}
    return {"type": "string", "enum": [str(c) for c in model.classes]}


_WARNINGS = {"type": "array", "items": {"type": "string"},
             "description": "values outside what the model saw in training, one sentence each"}
_EXPLAINED = {"$ref": "#/components/schemas/Explanation"}
EXPLANATION = {
    "type": "object", "required": ["method", "exact", "output", "class", "baseline", "value", "contributions"],
    "description": "Why the row got its answer (with explain=true): baseline + the sum of the contributions == value, "
                   "the model's output for the row. output: a binary classifier's log-odds of classes[1] (forests: "
                   "its probability; linear classifiers without probabilities: their decision function), with more "
                   "classes the predicted class's softmax-score (forests: probability; the approximation: log-odds), "
                   "a regressor's value (log-value for a log link). method: linear and tree-shap are exact; "
                   "background-shapley and permutation-shapley approximate Shapley values against up to 100 "
                   "training rows stored with the version.",
    "properties": {
        "method": {"type": "string", "enum": ["linear", "tree-shap", "background-shapley", "permutation-shapley"]},
        "exact": {"type": "boolean"},
        "output": {"type": "string",
                   "enum": ["log-odds", "probability", "softmax-score", "decision", "value", "log-value"]},
        "class": {"nullable": True, "description": "the class explained (null for a regressor)",
                  "oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]},
        "baseline": {"type": "number", "description": "the output expected over the training rows"},
        "value": {"type": "number", "description": "the model's output for this row"},
        "contributions": {"type": "object", "additionalProperties": {"type": "number"},
                          "description": "by feature, in the model's order"},
    },
}
PREDICTION_SCHEMAS = {CLASSIFICATION: "ClassPrediction", REGRESSION: "ValuePrediction"}
PREDICTION_ITEMS = {
    CLASSIFICATION: {
        "type": "object", "required": ["label", "probabilities", "warnings"],
        "description": "A classifier's answer for one row: what its predict says, and predict_proba by class "
                       "(null for a classifier without probabilities, such as LinearSVC)",
        "properties": {
            "label": {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]},
            "probabilities": {"type": "object", "nullable": True,
                              "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
            "warnings": _WARNINGS,
            "explanation": _EXPLAINED,
        },
    },
    REGRESSION: {
        "type": "object", "required": ["value", "warnings"],
        "description": "A regressor's answer for one row: what its predict says",
        "properties": {"value": {"type": "number"}, "warnings": _WARNINGS, "explanation": _EXPLAINED},
    },
}


def _prediction_response(tasks: set[str]) -> dict[str, Any]:
    """The answer of /predict; with classifiers and regressors served, an item is either."""
    items = [{"$ref": f"#/components/schemas/{PREDICTION_SCHEMAS[task]}"} for task in sorted(tasks)]
    return {
        "type": "object",
        "required": ["model", "predictions"],
        "properties": {
            "model": {"type": "object", "required": ["name", "version"],
                      "properties": {"name": {"type": "string"}, "version": {"type": "integer"}}},
            "predictions": {"type": "array", "items": items[0] if len(items) == 1 else {"oneOf": items}},
        },
    }


def _prediction_responses() -> dict[str, Any]:
    ok = _json_response("One result per input row, in input order", {"$ref": "#/components/schemas/PredictionResponse"})
    ok["headers"] = {"X-Model-Version": {"description": "name/version of the model that answered", "schema": {"type": "string"}}}
    return {"200": ok, **{code: _problem_response(text) for code, text in ERRORS.items()}}


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string", "nullable": True},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["row", "field", "problem"],
                "properties": {"row": {"type": "integer", "nullable": True}, "field": {"type": "string", "nullable": True},
                               "problem": {"type": "string"}},
            }},
        },
    }


def _json_response(description: str, schema: dict) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


def _greeting() -> dict[str, Any]:
    return _json_response("Greeting", {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}})


def _csv_example(model: LoadedModel) -> str:
    example = model.schema.example()
    return ",".join(example) + "\n" + ",".join("" if v is None else str(v) for v in example.values()) + "\n"
