"""Flask's error handlers: every failure becomes a problem+json answer (app/http/problems.py).

Clients get RFC 9457 documents (type, title, status, detail, and for bad input a list of
per-row, per-field errors), never an HTML page or a traceback.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g
from werkzeug.exceptions import HTTPException

from .payloads import too_large
from .problems import HANDLED, PROBLEM_TYPE, problem_document, problem_of

log = logging.getLogger("app.errors")


def respond(document: dict, headers: dict[str, str] | None = None) -> Response:
    response = current_app.response_class(current_app.json.dumps(document, separators=(",", ":")) + "\n",
                                          status=document["status"], mimetype=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_known(error: Exception) -> Response:
    """The model core's errors and the request's own, by the table in problems.py."""
    document, headers = problem_of(error, current_app.config["MAX_LISTED_ERRORS"], g.get("request_id"))
    return respond(document, headers)


def handle_http_exception(error: HTTPException) -> Response:
    """Werkzeug's own errors (404 path, 405 method, 413 body size) in the same shape."""
    status = error.code or 500
    detail = {
        404: "no such path; see GET /models for the models and the README for the endpoints",
        413: too_large(current_app.config["MAX_CONTENT_LENGTH"]),
    }.get(status, error.description or error.name)
    headers = {}
    if status == 405 and error.valid_methods:
        allowed = ", ".join(sorted(error.valid_methods))
        detail = f"this path accepts {allowed}"
        headers["Allow"] = allowed
    name = error.name or "Error"
    slug, title = {413: ("payload-too-large", "Payload too large")}.get(
        status, (name.lower().replace(" ", "-"), name[0] + name[1:].lower()))
    return respond(problem_document(status, slug, title, detail, request_id=g.get("request_id")), headers)


def handle_unexpected(error: Exception) -> Response:
    """The last line of defence: log the traceback server-side, tell the client only an id."""
    log.exception("unhandled error (request_id=%s)", g.get("request_id"))
    return respond(problem_document(500, "internal-error", "Internal server error",
                                   "the server failed to handle this request; quote the request_id when reporting it",
                                   request_id=g.get("request_id")))


def register_error_handlers(app: Flask) -> None:
    for kind in HANDLED:
        app.register_error_handler(kind, handle_known)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
