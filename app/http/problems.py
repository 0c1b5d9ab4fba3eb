"""Problem documents (RFC 9457), and the one table from an error to its HTTP status.

Every error answer of the service is built here: Flask's handlers (app/http/errors.py), the
gateway's refusals (401, 429) and gunicorn's own (400, 414, 431 in gunicorn.conf.py). The model
core raises plain exceptions; ``problem_of`` gives each its status, slug and title. Imports no
Flask, so the gateway and gunicorn's hooks use it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.errors import ArtifactRefused, InvalidInput, LifecycleConflict, ModelNotFound, ModelUnavailable

PROBLEM_BASE = "https://example.invalid/problems/"
PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Kind:
    status: int
    slug: str
    title: str


class RequestError(Exception):
    """Something wrong with the HTTP request itself rather than with its rows or the model."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class MalformedRequest(RequestError):
    """Not JSON or CSV, empty, not UTF-8, a bad query."""


class PayloadTooLarge(RequestError):
    """More bytes or rows than the limits allow."""


class UnsupportedMediaType(RequestError):
    """A Content-Type the service does not read."""


class NotFound(RequestError):
    """Nothing at this path (a job that does not exist)."""


class InsufficientStorage(RequestError):
    """The models volume is full: nothing was kept of the request."""


class Busy(RequestError):
    """Every slot for the work asked for is taken; retry later (Retry-After)."""


KINDS: dict[type[Exception], Kind] = {
    MalformedRequest: Kind(400, "malformed-request", "Malformed request"),
    ModelNotFound: Kind(404, "model-not-found", "Model not found"),
    NotFound: Kind(404, "not-found", "Not found"),
    PayloadTooLarge: Kind(413, "payload-too-large", "Payload too large"),
    UnsupportedMediaType: Kind(415, "unsupported-media-type", "Unsupported media type"),
    LifecycleConflict: Kind(409, "conflict", "Conflict"),
    InvalidInput: Kind(422, "invalid-input", "Invalid input"),
    ArtifactRefused: Kind(422, "invalid-artifact", "Invalid artifact"),
    ModelUnavailable: Kind(503, "model-unavailable", "Model unavailable"),
    Busy: Kind(503, "busy", "Busy"),
    InsufficientStorage: Kind(507, "insufficient-storage", "Insufficient storage"),
}
HANDLED = tuple(KINDS)


def problem_document(status: int, slug: str, title: str, detail: str, errors=None,
                     request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    body["request_id"] = request_id
    return body


def problem_of(error: Exception, max_listed: int, request_id: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The problem document and extra headers for one of the errors in ``KINDS``."""
    kind = KINDS[type(error)]
    if isinstance(error, InvalidInput):
        detail = error.summary()
        if isinstance(error, ArtifactRefused):
            detail = f"the version was not stored: {detail} (field: the part at fault)"
        if len(error.errors) > max_listed:
            detail += f" (the first {max_listed} are listed)"
        errors = [e.as_dict() for e in error.errors[:max_listed]]
        return problem_document(kind.status, kind.slug, kind.title, detail, errors, request_id), {}
    headers = error.headers if isinstance(error, RequestError) else {}
    return problem_document(kind.status, kind.slug, kind.title, error.detail, None, request_id), headers
