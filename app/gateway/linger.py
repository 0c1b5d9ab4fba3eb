"""Lingering close: read what is left of a refused request's body before answering.

A server that answers early (413 for a body over MAX_CONTENT_LENGTH, 401, 415) and closes while
the client is still sending makes the kernel reset the connection; curl and requests read the
answer anyway, but Python's urllib and many others see only "connection reset". nginx reads and
discards the rest for a while first (``lingering_close``); so does this, within a bound of bytes
and seconds, so a client that sends a huge body cannot hold a worker for long. A body that is
larger still gets the reset, as from nginx.
"""
from __future__ import annotations

import socket
from time import monotonic
from typing import Any

LINGER_BYTES = 64 * 1024 * 1024  # at most this much of an unread body is read and discarded
LINGER_SECONDS = 2.0  # and for at most this long
CHUNK = 256 * 1024


def discard_unread_body(environ: dict[str, Any]) -> None:
    """Read and discard the rest of the request body, up to LINGER_BYTES and LINGER_SECONDS."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
    if stream is None or not (chunked or (length.isascii() and length.isdigit() and int(length) > 0)):
        return
    connection = environ.get("gunicorn.socket")
    previous = connection.gettimeout() if isinstance(connection, socket.socket) else None
    deadline = monotonic() + LINGER_SECONDS
    left = LINGER_BYTES
    try:
        while left > 0:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return
            if isinstance(connection, socket.socket):
                connection.settimeout(remaining)  # a stalled client cannot hold the worker past the deadline
            chunk = stream.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, ValueError):  # the client went away, or a malformed chunked body: nothing to keep
        return
    finally:
        if isinstance(connection, socket.socket):
            try:
                connection.settimeout(previous)
            except OSError:
                pass
