"""The access log: one line per request, written by the gateway for the direct path and Flask alike."""
from __future__ import annotations

import os
import sys
import time

import orjson


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
