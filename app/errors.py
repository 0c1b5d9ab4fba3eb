"""Errors that carry their HTTP status, and handlers that turn every failure into problem+json.

Clients get RFC 9457 documents (type, title, status, detail, and for bad input a list of
per-row, per-field problems), never an HTML page or a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g
from werkzeug.exceptions import HTTPException

PROBLEM_BASE = "https://example.invalid/problems/"
log = logging.getLogger("app.errors")


class ApiError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class MalformedRequest(ApiError):
    status, slug, title = 400, "malformed-request", "Malformed request"


class ModelNotFound(ApiError):
    status, slug, title = 404, "model-not-found", "Model not found"


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidInput(ApiError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class ModelUnavailable(ApiError):
    status, slug, title = 503, "model-unavailable", "Model unavailable"


def problem_document(status: int, slug: str, title: str, detail: str, errors=None,
                     request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    body["request_id"] = request_id
    return body


def problem(status: int, slug: str, title: str, detail: str, errors=None, headers=None) -> Response:
    body = problem_document(status, slug, title, detail, errors, g.get("request_id"))
    response = current_app.response_class(
        current_app.json.dumps(body, separators=(",", ":")) + "\n", status=status, mimetype="application/problem+json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_api_error(error: ApiError) -> Response:
    return problem(error.status, error.slug, error.title, error.detail, error.errors, error.headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's own errors (404 path, 405 method, 413 body size) in the same shape."""
    status = error.code or 500
    detail = {
        404: "no such path; see GET /models for the models and the README for the endpoints",
        413: f"the request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes "
             "(MAX_CONTENT_LENGTH); split the batch",
    }.get(status, error.description or error.name)
    headers = {}
    if status == 405 and error.valid_methods:
        allowed = ", ".join(sorted(error.valid_methods))
        detail = f"this path accepts {allowed}"
        headers["Allow"] = allowed
    name = error.name or "Error"
    slug, title = {413: ("payload-too-large", "Payload too large")}.get(
        status, (name.lower().replace(" ", "-"), name[0] + name[1:].lower()))
    return problem(status, slug, title, detail, headers=headers)


def handle_unexpected(error: Exception) -> Response:
    """The last line of defence: log the traceback server-side, tell the client only an id."""
    log.exception("unhandled error (request_id=%s)", g.get("request_id"))
    return problem(500, "internal-error", "Internal server error",
                   "the server failed to handle this request; quote the request_id when reporting it")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
