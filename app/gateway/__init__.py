"""The gateway: the WSGI layer every request passes through, in front of Flask and the direct path.

Request ids, API keys, rate limits, security headers, metrics and the access log live here
rather than in Flask hooks so that one implementation wraps both the direct path
(app/gateway/direct.py) and Flask, at a few microseconds each. Refusals (401, 429) are answered
here, before any body is read. What it knows of a path (open, limited, which headers, its metrics
label) comes from the route table (app/http/routes.py). Imports no Flask.
"""
from __future__ import annotations

import logging
import os
import re
from time import perf_counter
from typing import Any, Callable, Iterable

import orjson

from ..http import routes
from ..http.problems import PROBLEM_TYPE, problem_document
from ..logs import REQUEST_ID
from . import direct
from .access_log import AccessLog
from .auth import REALM, ApiKeys, key_id, presented_key
from .linger import discard_unread_body
from .ratelimit import RateLimiter

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Swagger UI starts itself from an inline script and styles elements inline.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
SECURITY_HEADERS = {  # by the route table's kinds; a path no route matches gets the API's
    routes.API: [*COMMON_HEADERS, ("Cache-Control", "no-store"), ("Content-Security-Policy", API_CSP)],
    routes.PAGE: [*COMMON_HEADERS, ("Content-Security-Policy", PAGE_CSP)],
    routes.DOCS: [*COMMON_HEADERS, ("Content-Security-Policy", DOCS_CSP)],
    routes.ASSET: COMMON_HEADERS,  # cacheable
}
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is "other"
# The headers a browser on an allowed origin may read: Flask-CORS (app/factory.py) and the
# gateway's own 401/429 expose the same ones.
CORS_EXPOSED_HEADERS = ("X-Request-ID", "X-Model-Version", "Retry-After")
EXPOSED = ", ".join(CORS_EXPOSED_HEADERS)
REASONS = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT FOUND", 429: "TOO MANY REQUESTS"}

StartResponse = Callable[..., Any]


class Gateway:
    def __init__(self, app, wsgi_app: Callable[[dict, StartResponse], Iterable[bytes]]):
        config = app.config
        self.app = app
        self.flask = wsgi_app
        self.keys = ApiKeys.from_config(config)
        self.admin_keys = ApiKeys.from_config(config, "ADMIN_API_KEYS")
        self.limiter = RateLimiter.from_config(config)
        self.metrics = app.extensions.get("metrics")
        self.direct = bool(config["DIRECT_PATH"])
        self.max_length = int(config["MAX_CONTENT_LENGTH"])
        log_access = config["ACCESS_LOG"] and logging.getLevelName(config["LOG_LEVEL"]) <= logging.INFO
        self.access = AccessLog(config["LOG_FORMAT"] == "json") if log_access else None
        self.cors_origins = frozenset(config["CORS_ORIGINS"])

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID")
        request_id = given if given and REQUEST_ID_PATTERN.match(given) else os.urandom(16).hex()
        environ["app.request_id"] = request_id
        context = REQUEST_ID.set(request_id)
        path = environ.get("PATH_INFO") or "/"
        route = routes.match(path)
        if route is not None and route.page and environ["REQUEST_METHOD"] in ("GET", "HEAD") \
                and routes.prefers_html(environ.get("HTTP_ACCEPT")):
            route = routes.as_page(route)  # the model card: open like the page at /
        extra = [("X-Request-ID", request_id), *SECURITY_HEADERS[route.headers if route else routes.API]]
        try:
            answer = self.refusal(environ, route, request_id)
            if answer is None and self.direct and direct.applies(environ, self.max_length):
                answer = direct.answer(self.app, environ)
            if answer is not None:
                status, headers, body = answer
                if self.cors_origins and "HTTP_ORIGIN" in environ:
                    extra += self.cors_headers(environ["HTTP_ORIGIN"])
                start_response(status, headers + extra)
                result: Iterable[bytes] = [body]
                label = route.rule if route else routes.UNMATCHED
            else:
                seen: list[str] = []

                def start(status: str, headers: list[tuple[str, str]], exc_info=None):
                    seen.append(status)
                    return start_response(status, headers + extra, exc_info)

                result = self.flask(environ, start)
                status = seen[-1] if seen else "500 INTERNAL SERVER ERROR"
                label = environ.get("app.route") or routes.UNMATCHED  # the rule Flask matched
            if not status.startswith("2"):  # refused before its body was read, perhaps
                discard_unread_body(environ)
            self.record(environ, label, path, status, perf_counter() - started, request_id)
        finally:
            REQUEST_ID.reset(context)
        return result

    # ---- refusals -------------------------------------------------------------------------
    def refusal(self, environ: dict[str, Any], route: routes.Route | None, request_id: str) -> direct.Answer | None:
        if route is not None and route.admin:
            return self.admin_refusal(environ, request_id)
        if self.keys is None and self.limiter is None:
            return None
        if (route is not None and route.open) or environ["REQUEST_METHOD"] == "OPTIONS":
            return None
        client = "address:" + environ.get("REMOTE_ADDR", "unknown")
        if self.keys is not None:
            key = presented_key(environ)
            if not key or not (self.keys.allows(key) or (self.admin_keys is not None and self.admin_keys.allows(key))):
                return self.refused_key(key, client, request_id)
            client = "key:" + key_id(key)
            environ["app.client"] = client
        if self.limiter is not None and (route is None or route.limited):
            return self.limit(client, request_id)
        return None

    def admin_refusal(self, environ: dict[str, Any], request_id: str) -> direct.Answer | None:
        """The admin API: absent (404) without admin keys, 403 for a prediction key, 401 for no key."""
        if self.admin_keys is None:
            return problem_answer(problem_document(
                404, "not-found", "Not found", "no such path; see GET /models for the models and the README for the "
                "endpoints (the admin API is on only when ADMIN_API_KEYS or ADMIN_API_KEYS_FILE is set)",
                request_id=request_id), [])
        key = presented_key(environ)
        client = "address:" + environ.get("REMOTE_ADDR", "unknown")
        if not key or not self.admin_keys.allows(key):
            if key and self.keys is not None and self.keys.allows(key):
                limited = self.limit("key:" + key_id(key), request_id) if self.limiter is not None else None
                return limited or problem_answer(problem_document(
                    403, "forbidden", "Forbidden", "this API key may predict but not change models; the admin API "
                    "needs a key from ADMIN_API_KEYS", request_id=request_id), [])
            return self.refused_key(key, client, request_id)
        client = "key:" + key_id(key)
        environ["app.client"] = client
        environ["app.admin_key"] = key_id(key)  # who made a change, for the audit log
        return self.limit(client, request_id) if self.limiter is not None else None

    def refused_key(self, key: str | None, client: str, request_id: str) -> direct.Answer:
        # Guesses count against the address's budget: no unlimited trying of keys.
        refused = self.limiter.hit(client) if self.limiter is not None else None
        return self.too_many(refused, request_id) if refused else self.unauthorized(key, request_id)

    def limit(self, client: str, request_id: str) -> direct.Answer | None:
        refused = self.limiter.hit(client)
        return self.too_many(refused, request_id) if refused is not None else None

    @staticmethod
    def too_many(refused, request_id: str) -> direct.Answer:
        return problem_answer(problem_document(
            429, "rate-limited", "Too many requests",
            f"the rate limit of {refused.limit} for this client is used up; retry after {refused.retry_after} s",
            request_id=request_id), [("Retry-After", str(refused.retry_after))])

    @staticmethod
    def unauthorized(key: str | None, request_id: str) -> direct.Answer:
        if key is None:
            detail, challenge = ("this endpoint needs an API key: send it as 'Authorization: Bearer <key>' "
                                 "or 'X-API-Key: <key>'"), REALM
        elif key == "":
            detail, challenge = "the API key is empty", f'{REALM}, error="invalid_token"'
        else:
            detail, challenge = "the API key is not valid", f'{REALM}, error="invalid_token"'
        return problem_answer(problem_document(401, "unauthorized", "Unauthorized", detail, request_id=request_id),
                              [("WWW-Authenticate", challenge)])

    def cors_headers(self, origin: str) -> list[tuple[str, str]]:
        """What Flask-CORS would add, for the answers given here before Flask (401, 429), so a
        browser on an allowed origin can read why it was refused."""
        if "*" in self.cors_origins:
            return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSED)]
        if origin.rstrip("/") in self.cors_origins:
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                    ("Access-Control-Expose-Headers", EXPOSED)]
        return []

    # ---- after ----------------------------------------------------------------------------
    def record(self, environ: dict[str, Any], label: str, path: str, status: str, seconds: float,
               request_id: str) -> None:
        code = int(status[:3])
        if self.metrics is not None:
            method = environ["REQUEST_METHOD"]
            self.metrics.observe_request(label, method if method in METHODS else "other", code, seconds)
            self.metrics.describe_models(self.app.extensions["registry"])
        if self.access is not None:
            # The path without its query string: a query can carry feature values, which are data.
            self.access.write(environ["REQUEST_METHOD"], path[:200], label, code, seconds, request_id,
                              environ.get("app.client") or environ.get("REMOTE_ADDR"))


def problem_answer(document: dict[str, Any], headers: list[tuple[str, str]]) -> direct.Answer:
    body = orjson.dumps(document) + b"\n"
    status = document["status"]
    return f"{status} {REASONS[status]}", [("Content-Type", PROBLEM_TYPE), ("Content-Length", str(len(body))),
                                          *headers], body
