"""The direct path: a plain JSON ``POST /predict`` answered without Flask's request machinery.

For a single row Flask and Werkzeug cost several times more than the prediction itself (request
and response objects, routing, header parsing). The common case, a JSON body with a declared
length, no query string and no CORS origin, is answered here with the same decode, predict and
encode functions (app/http/payloads.py) and the same response bytes. Anything else, and any
request the decoder has something to say about, goes to Flask untouched (the body is handed
back), so every error message and every other format has exactly one implementation.
"""
from __future__ import annotations

import io
from typing import Any

from ..http import payloads

Answer = tuple[str, list[tuple[str, str]], bytes]


def applies(environ: dict[str, Any], max_length: int) -> bool:
    if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/predict":
        return False
    if environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ:
        return False
    length = environ.get("CONTENT_LENGTH", "")
    return (environ.get("CONTENT_TYPE") in payloads.PLAIN_JSON_HEADERS and length.isascii() and length.isdigit()
            and 0 < int(length) <= max_length)


def answer(app, environ: dict[str, Any]) -> Answer | None:
    """The response, or None after handing the request (body included) back for Flask to answer."""
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    try:
        model = app.extensions["registry"].get()
        decoded = payloads.decode_json(payloads.parse_json(body), model.decoder, app.config["MAX_BATCH_ROWS"])
    except Exception:  # noqa: BLE001 - not swallowed: Flask decodes it again and answers it properly
        environ["wsgi.input"] = io.BytesIO(body)
        return None
    content, headers = payloads.predict_and_encode(model, decoded, app.extensions.get("metrics"))
    return "200 OK", [*headers, ("Content-Length", str(len(content)))], content
