"""A prediction on the wire, both ways: request bodies -> decoded rows, documents -> bytes.

JSON: one record ``{...}``, a list of records, ``{"instances": [...]}``, ``{"inputs": [...]}``,
``{"dataframe_records": [...]}`` and ``{"dataframe_split": {"columns": [...], "data": [...]}}``
(the MLflow scoring-server formats). CSV: a header row, then one row per record. A query string:
one record of text values. Explanations are asked for with ``?explain=true`` or, beside an
envelope, ``"explain": true``.

The Flask routes (app/http/predict.py) and the gateway's direct path (app/gateway/direct.py)
share the content types, the length limit and the response bytes and headers from here, so they
cannot answer differently. Imports no Flask.
"""
from __future__ import annotations

import csv
import io
import re
import json
from dataclasses import dataclass
from typing import Any, Sequence

import orjson

from ..model import explain, predict
from ..model.contract import Decoded
from ..model.decoding import Decoder
from ..model.errors import InputError, InvalidInput
from ..model.registry import LoadedModel
from ..model.rules import describe, quote
from .problems import MalformedRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json",)  # and any type ending in +json
CSV_TYPES = ("text/csv", "application/csv")
# Content-Type headers the direct path takes as JSON without parsing them.
PLAIN_JSON_HEADERS = frozenset({
    "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8",
    "application/json; charset=UTF-8", "application/json;charset=UTF-8",
})
RECORD_ENVELOPES = ("instances", "inputs", "dataframe_records")
ENVELOPES = (*RECORD_ENVELOPES, "dataframe_split")

VERSION = re.compile(r"[1-9][0-9]{0,8}")  # ?version=: ASCII digits only (str.isdigit() also accepts '²', '١')
EXPLAIN = explain.FIELD  # ?explain=true, or "explain": true beside an envelope
EXPLAIN_VALUES = {"true": True, "false": False}  # in a query string; in a body, JSON's true and false


@dataclass(frozen=True)
class Rows:
    """A body's rows, and its ``explain`` field (given beside an envelope; None when absent)."""
    decoded: Decoded
    explain: bool | None = None


# ---- request ----------------------------------------------------------------------------------
def body_kind(mimetype: str, content_type: str | None) -> str:
    """'json' or 'csv' for a request's media type (``mimetype``: without parameters)."""
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        return "json"
    if mimetype in CSV_TYPES:
        return "csv"
    raise UnsupportedMediaType(f"expected Content-Type application/json or text/csv, got {content_type or 'no Content-Type header'}")


def too_large(limit: int) -> str:
    """What a body over MAX_CONTENT_LENGTH is told."""
    return f"the request body exceeds the limit of {limit} bytes (MAX_CONTENT_LENGTH); split the batch"


def decode_body(kind: str, body: bytes, decoder: Decoder, max_rows: int) -> Rows:
    if kind == "csv":
        return Rows(decode_csv(body, decoder, max_rows))
    return decode_json(parse_json(body), decoder, max_rows)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedRequest("the request body is empty; send a JSON object of field values")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the request body is not UTF-8 text (byte {exc.start})") from None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # orjson is strict; the standard library below gives the message, and reads NaN
    else:
        if b"\\" in body or not body.count(b":") == body.count(b'":') == _key_count(parsed):
            _refuse_repeated_keys(text)
        return parsed
    try:
        # NaN and Infinity are not JSON, but common encoders emit them; accept the tokens here so
        # the field that holds one is named in a 422 instead of a bare syntax error.
        return json.loads(text, parse_constant=float, object_pairs_hook=_RepeatedKeys().check)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise MalformedRequest("the body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python will convert
        raise MalformedRequest(f"the body is not valid JSON: {str(exc)[:120]}") from None


# ---- repeated keys ----------------------------------------------------------------------------
# {"Glucose": 148, "Glucose": 999} is valid JSON syntax, but RFC 8259 leaves its meaning open and
# parsers disagree (orjson keeps the last); taking either value would hide a client's bug, so it
# is a 422 that names the field. orjson cannot report repeats, so a cheap count decides whether
# to look. Without a backslash (an escape could spell a key differently, or hide a quote in a
# string), and when every colon follows a quote (no '"a" : 1' spacing, no colon inside a string),
# '":' closes exactly the keys written, so it counts them, repeats included. ``_key_count`` may
# count fewer entries than the parsed objects hold (it does not look inside rows it need not),
# never more; so equal counts prove there is no repeat, and any doubt sends the body to the
# exact check. The counts cost about 1 ms per MB.


def _key_count(value: Any) -> int:
    """Keys in the parsed objects, or fewer (a list of flat records costs one len() per record)."""
    kind = type(value)
    if kind is dict:
        return len(value) + sum(_key_count(v) for v in value.values() if type(v) in (dict, list))
    if kind is list:
        if all(type(item) is dict for item in value):
            # Records are flat in a valid batch: the first one decides whether to look inside.
            # A later record holding an object has keys not counted here, so the body goes to
            # the exact check, which is always right.
            nested = bool(value) and any(type(v) in (dict, list) for v in value[0].values())
            return sum(map(_key_count, value)) if nested else sum(map(len, value))
        if all(type(item) is list for item in value):  # dataframe_split's rows: scalars, in a valid batch
            nested = bool(value) and any(type(v) in (dict, list) for v in value[0])
            return sum(map(_key_count, value)) if nested else 0
        return sum(_key_count(item) for item in value if type(item) in (dict, list))
    return 0


def _refuse_repeated_keys(text: str) -> None:
    json.loads(text, parse_constant=float, object_pairs_hook=_RepeatedKeys().check)


class _RepeatedKeys:
    """An object_pairs_hook that refuses an object with a key given twice, naming the key and, for
    a flat record, its row (records are built in order, each before the array that holds it)."""

    def __init__(self) -> None:
        self.records = 0

    def check(self, pairs: list[tuple[str, Any]]) -> dict:
        flat = all(type(value) not in (dict, list) for _, value in pairs)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput([InputError(self.records if flat else None, key,
                                               "given more than once in the same object; send each field once "
                                               "(JSON leaves a repeated key's meaning undefined)")])
            seen.add(key)
        self.records += flat
        return dict(pairs)


def decode_json(payload: Any, decoder: Decoder, max_rows: int) -> Rows:
    envelopes = sorted(payload.keys() & set(ENVELOPES)) if isinstance(payload, dict) else []
    if envelopes and not payload.keys() & decoder.schema.index.keys():
        envelope = envelopes[0]
        extra = sorted(set(payload) - {envelope, EXPLAIN}, key=str)
        if extra:
            raise InvalidInput([InputError(None, str(key), f"unknown key beside {envelope!r}; send the envelope alone "
                                                           f"(and {EXPLAIN!r}, true or false)") for key in extra])
        asked = _explain_field(payload[EXPLAIN]) if EXPLAIN in payload else None
        content = payload[envelope]
        if envelope == "dataframe_split":
            return Rows(_decode_split(content, decoder, max_rows), asked)
        if not isinstance(content, list):
            raise InvalidInput([InputError(None, envelope, f"expected an array of records, got {_kind(content)}")])
        return Rows(decoder.records(_limit(content, max_rows)), asked)
    if isinstance(payload, dict):
        if EXPLAIN in payload and EXPLAIN not in decoder.schema.index:
            raise InvalidInput([InputError(0, EXPLAIN, 'not a field of the model; ask for explanations with '
                                                       '?explain=true, or beside an envelope: {"instances": [...], '
                                                       '"explain": true}')])
        return Rows(decoder.records([payload]))
    if isinstance(payload, list):
        return Rows(decoder.records(_limit(payload, max_rows)))
    raise InvalidInput([InputError(None, None, f"expected a JSON object or an array of objects, got {_kind(payload)}")])


def _explain_field(value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidInput([InputError(None, EXPLAIN, f"expected true or false, got {describe(value)}")])
    return value


# ---- explanations -----------------------------------------------------------------------------
def wants_explanations(query: Sequence[str], body: bool | None) -> bool:
    """Whether a request asks for explanations: ``?explain=`` (each value given) or the body's field."""
    if len(query) > 1:
        raise InvalidInput([InputError(None, EXPLAIN, "given more than once in the query string")])
    asked = None
    if query:
        if query[0] not in EXPLAIN_VALUES:
            raise InvalidInput([InputError(None, EXPLAIN, f"expected true or false, got {quote(query[0])}")])
        asked = EXPLAIN_VALUES[query[0]]
    if asked is not None and body is not None and asked != body:
        raise InvalidInput([InputError(None, EXPLAIN, f"the query string says {str(asked).lower()} and the body "
                                                      f"{str(body).lower()}; give it once")])
    return bool(body if asked is None else asked)


def explainer_for(model: LoadedModel, rows: int, query: Sequence[str], body: bool | None,
                  max_rows: int, time_limit: float) -> explain.Explainer | None:
    """The explainer that answers this request, or None when it asks for no explanations. An
    approximation explains at most ``max_rows`` rows (MAX_EXPLAINED_ROWS) per request, and any
    method only the rows that fit in ``time_limit`` seconds (EXPLAIN_TIME_LIMIT) at its cost."""
    if not wants_explanations(query, body):
        return None
    explainer = explain.require(model)
    if not explainer.exact and rows > max_rows:
        raise PayloadTooLarge(f"the batch has {rows} rows; {model.tag} is explained by an approximation "
                              f"({explainer.method}), at most {max_rows} rows per request (MAX_EXPLAINED_ROWS): "
                              "split it, or leave out explain")
    allowed = explainer.row_limit(time_limit)
    if rows > allowed:
        raise PayloadTooLarge(f"the batch has {rows} rows; explaining {model.tag} ({explainer.method}) costs about "
                              f"{explainer.seconds_per_row * 1000:.3g} ms a row, so at most {allowed} rows fit in "
                              f"EXPLAIN_TIME_LIMIT ({time_limit:g} s): split it, or leave out explain")
    return explainer


def _decode_split(content: Any, decoder: Decoder, max_rows: int) -> Decoded:
    if not isinstance(content, dict):
        raise InvalidInput([InputError(None, "dataframe_split", f"expected an object with columns and data, got {_kind(content)}")])
    errors = []
    for key in ("columns", "data"):
        if not isinstance(content.get(key), list):
            got = "nothing" if key not in content else _kind(content[key])
            errors.append(InputError(None, f"dataframe_split.{key}", f"expected an array, got {got}"))
    extra = sorted(set(content) - {"columns", "data", "index"})
    errors += [InputError(None, f"dataframe_split.{k}", "unknown key; expected columns, data and optionally index") for k in extra]
    if errors:
        raise InvalidInput(errors)
    return decoder.columns(content["columns"], _limit(content["data"], max_rows))


def decode_csv(body: bytes, decoder: Decoder, max_rows: int) -> Decoded:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the CSV body is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise MalformedRequest("the CSV body is empty; send a header row and one row per record")
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise MalformedRequest(f"the body is not valid CSV: {exc}") from None
    header, data = rows[0], rows[1:]
    return decoder.columns([name.strip() for name in header], _limit(data, max_rows), text=True)


def decode_query(arguments: dict[str, list[str]], decoder: Decoder) -> Decoded:
    """One record from a query string; every value arrives as text."""
    repeated = [InputError(0, name, "given more than once") for name, values in arguments.items() if len(values) > 1]
    if repeated:
        raise InvalidInput(repeated)
    return decoder.records([{name: values[0] for name, values in arguments.items()}], text=True)


def _limit(rows: list, max_rows: int) -> list:
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"the batch has {len(rows)} rows; the limit is {max_rows} (MAX_BATCH_ROWS): split it")
    return rows


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


# ---- response ---------------------------------------------------------------------------------
def json_answer(document: Any, model: LoadedModel) -> tuple[bytes, list[tuple[str, str]]]:
    """The bytes and headers of a JSON answer from ``model``."""
    # orjson: several times faster than the standard library on large batches, same JSON.
    return orjson.dumps(document) + b"\n", [("Content-Type", "application/json"), ("X-Model-Version", model.tag)]


def predict_and_encode(model: LoadedModel, decoded: Decoded, metrics: Any | None, plain: bool = False,
                       explainer: explain.Explainer | None = None,
                       drift: Any | None = None) -> tuple[bytes, list[tuple[str, str]]]:
    """Predict the rows and encode the answer: the prediction document, with each row's
    explanation when an ``explainer`` is given, or (``plain``) MLflow's list of labels or values."""
    output = predict.predict(model, decoded)
    explanations = None
    if explainer is not None and not plain:  # before the counting: a request that fails here counts nothing
        explanations = explain.documents(model, explainer, explainer.explain(decoded.matrix, output))
    if metrics is not None:  # the gateway's Metrics, told what each row got
        metrics.observe_predictions(model, output)
    if drift is not None:  # the gateway's drift window, told what was asked and answered (counted later)
        drift.observe(model, decoded.matrix, output)
    if plain:
        return json_answer(predict.plain_document(model, output), model)
    return json_answer(predict.prediction_document(model, decoded, output, explanations), model)
