"""Accepted request bodies -> decoded rows, whatever the envelope.

JSON: one record ``{...}``, a list of records, ``{"instances": [...]}``, ``{"inputs": [...]}``,
``{"dataframe_records": [...]}`` and ``{"dataframe_split": {"columns": [...], "data": [...]}}``
(the MLflow scoring-server formats). CSV: a header row, then one row per record.
Knows nothing about Flask, so it is tested on its own.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

import orjson

from .errors import MalformedRequest, PayloadTooLarge
from .schema import Decoded, InvalidRows, Problem, Schema

RECORD_ENVELOPES = ("instances", "inputs", "dataframe_records")
ENVELOPES = (*RECORD_ENVELOPES, "dataframe_split")


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedRequest("the request body is empty; send a JSON object of field values")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"the request body is not UTF-8 text (byte {exc.start})") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass  # orjson is strict; the standard library below gives the message, and reads NaN
    try:
        # NaN and Infinity are not JSON, but common encoders emit them; accept the tokens here so
        # the field that holds one is named in a 422 instead of a bare syntax error.
        return json.loads(text, parse_constant=float)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise MalformedRequest("the body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python will convert
        raise MalformedRequest(f"the body is not valid JSON: {str(exc)[:120]}") from None


def decode_json(payload: Any, schema: Schema, max_rows: int) -> Decoded:
    envelopes = sorted(payload.keys() & set(ENVELOPES)) if isinstance(payload, dict) else []
    if envelopes and not payload.keys() & set(schema.names):
        if len(payload) > 1:
            extra = sorted(set(payload) - {envelopes[0]}, key=str)
            raise InvalidRows([Problem(None, str(key), f"unknown key beside {envelopes[0]!r}; send the envelope alone")
                               for key in extra])
        (envelope, content), = payload.items()
        if envelope == "dataframe_split":
            return _decode_split(content, schema, max_rows)
        if not isinstance(content, list):
            raise InvalidRows([Problem(None, envelope, f"expected an array of records, got {_kind(content)}")])
        return schema.decode_records(_limit(content, max_rows))
    if isinstance(payload, dict):
        return schema.decode_records([payload])
    if isinstance(payload, list):
        return schema.decode_records(_limit(payload, max_rows))
    raise InvalidRows([Problem(None, None, f"expected a JSON object or an array of objects, got {_kind(payload)}")])


def _decode_split(content: Any, schema: Schema, max_rows: int) -> Decoded:
    if not isinstance(content, dict):
        raise InvalidRows([Problem(None, "dataframe_split", f"expected an object with columns and data, got {_kind(content)}")])
    problems = []
    for key in ("columns", "data"):
        if not isinstance(content.get(key), list):
            got = "nothing" if key not in content else _kind(content[key])
            problems.append(Problem(None, f"dataframe_split.{key}", f"expected an array, got {got}"))
    extra = sorted(set(content) - {"columns", "data", "index"})
    problems += [Problem(None, f"dataframe_split.{k}", "unknown key; expected columns, data and optionally index") for k in extra]
    if problems:
        raise InvalidRows(problems)
    return schema.decode_columns(content["columns"], _limit(content["data"], max_rows))


def decode_csv(body: bytes, schema: Schema, max_rows: int) -> Decoded:
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
    return schema.decode_columns([name.strip() for name in header], _limit(data, max_rows), text=True)


def decode_query(arguments: dict[str, list[str]], schema: Schema) -> Decoded:
    """One record from a query string; every value arrives as text."""
    repeated = [Problem(0, name, "given more than once") for name, values in arguments.items() if len(values) > 1]
    if repeated:
        raise InvalidRows(repeated)
    return schema.decode_records([{name: values[0] for name, values in arguments.items()}], text=True)


def _limit(rows: list, max_rows: int) -> list:
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"the batch has {len(rows)} rows; the limit is {max_rows} (MAX_BATCH_ROWS): split it")
    return rows


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
