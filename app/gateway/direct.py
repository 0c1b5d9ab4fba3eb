"""The direct path: a plain JSON ``POST /predict`` answered without Flask's request machinery.

For a single row Flask and Werkzeug cost several times more than the prediction itself (request
and response objects, routing, header parsing). The common case, a JSON body with a declared
length, at most ``?model=``, ``?version=`` and ``?explain=true|false`` in the query string and no
CORS origin, is answered here with the same decode, predict, explain and encode functions (app/http/payloads.py) and the same response bytes. Anything else, and any
request the decoder has something to say about, goes to Flask untouched (the body is handed
back), so every error message and every other format has exactly one implementation.
"""
from __future__ import annotations

import io
from typing import Any

from ..http import payloads

Answer = tuple[str, list[tuple[str, str]], bytes]
Selection = tuple[str | None, int | None, list[str]]  # model, version, the ?explain= values


def selection(query: str) -> Selection | None:
    """(model, version, [explain]) from a query string of plain ``model=``, ``version=`` and
    ``explain=true|false``, each at most once; None for anything else (encoded characters, other
    keys, other values), which Flask answers."""
    name = version = None
    explained: list[str] = []
    if not query:
        return name, version, explained
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "model" and name is None and value and value.isascii() and "%" not in value and "+" not in value:
            name = value
        elif key == "version" and version is None and payloads.VERSION.fullmatch(value):
            version = int(value)
        elif key == payloads.EXPLAIN and not explained and value in payloads.EXPLAIN_VALUES:
            explained.append(value)
        else:
            return None
    return name, version, explained


def applies(environ: dict[str, Any], max_length: int) -> bool:
    if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/predict":
        return False
    if "HTTP_ORIGIN" in environ:
        return False
    length = environ.get("CONTENT_LENGTH", "")
    return (environ.get("CONTENT_TYPE") in payloads.PLAIN_JSON_HEADERS and length.isascii() and length.isdigit()
            and 0 < int(length) <= max_length)


def answer(app, environ: dict[str, Any]) -> Answer | None:
    """The response, or None after handing the request (body included) back for Flask to answer."""
    chosen = selection(environ.get("QUERY_STRING", ""))
    if chosen is None:
        return None
    name, version, explained = chosen
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    try:
        model = app.extensions["registry"].get(name, version)
        rows = payloads.decode_json(payloads.parse_json(body), model.decoder, app.config["MAX_BATCH_ROWS"])
        explainer = payloads.explainer_for(model, len(rows.decoded.matrix), explained, rows.explain,
                                           app.config["MAX_EXPLAINED_ROWS"], app.config["EXPLAIN_TIME_LIMIT"])
    except Exception:  # noqa: BLE001 - not swallowed: Flask decodes it again and answers it properly
        environ["wsgi.input"] = io.BytesIO(body)
        return None
    content, headers = payloads.predict_and_encode(model, rows.decoded, app.extensions.get("metrics"),
                                                   explainer=explainer, drift=app.extensions.get("drift"))
    return "200 OK", [*headers, ("Content-Length", str(len(content)))], content
