"""Logging for the app: one handler on the ``app`` logger, text or JSON lines."""
from __future__ import annotations

import json
import logging
import os
import sys
import time

import orjson

from flask import Flask, g, has_request_context


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is None and has_request_context():
            request_id = g.get("request_id")
        if request_id:
            entry["request_id"] = request_id
        http = getattr(record, "http", None)
        if http is not None:
            entry["http"] = http
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(app: Flask) -> None:
    logger = logging.getLogger("app")
    logger.setLevel(app.config["LOG_LEVEL"])
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)


class AccessLog:
    """One line per request, written straight to stderr's file descriptor.

    Going through ``logging`` costs about 40 us a line (caller lookup, record, formatter), more
    than a whole single-row prediction; this writes the same line (text or the JSON above) in
    one system call, which also keeps lines from different threads whole.
    Request bodies, query strings and keys are never passed in, so they cannot be logged.
    """

    def __init__(self, json_lines: bool):
        self.json_lines = json_lines
        self._second = -1
        self._stamp = ""
        try:
            descriptor = sys.stderr.fileno()
            self._write = lambda line: os.write(descriptor, line)
        except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a descriptor
            self._write = lambda line: (sys.stderr.write(line.decode()), sys.stderr.flush())

    def _now(self) -> tuple[float, str]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return now, self._stamp

    def write(self, method: str, path: str, route: str, status: int, seconds: float, request_id: str,
              client: str | None) -> None:
        now, stamp = self._now()
        milliseconds = round(seconds * 1000, 3)
        if self.json_lines:
            line = orjson.dumps({
                "time": f"{stamp}.{int(now % 1 * 1000):03d}Z", "level": "info", "logger": "app.access",
                "message": f"{method} {path} {status}", "request_id": request_id,
                "http": {"method": method, "path": path, "route": route, "status": status,
                         "duration_ms": milliseconds, "client": client},
            }) + b"\n"
        else:
            if not path.isprintable():  # a decoded %0A must not start a forged line
                path = path.encode("unicode_escape").decode("ascii")
            line = f"{stamp}Z INFO app.access: {method} {path} {status} {milliseconds}ms rid={request_id} " \
                   f"client={client}\n".encode("utf-8", "backslashreplace")
        try:
            self._write(line)
        except OSError:
            pass  # a closed or full log pipe must not fail the request
