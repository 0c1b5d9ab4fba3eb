"""The direct path answers exactly as Flask does, byte for byte, and hands everything else to Flask."""
from __future__ import annotations

import json

import pytest

from app import create_app
from app.gateway import direct
from tests.conftest import PIMA, REGRESSOR
from tests.records import COLUMNS, ORIGIN, PASSENGER, PATIENT, RECORD, with_


MAX_ROWS = 20
SAME_ID = {"X-Request-ID": "same-request-id"}


@pytest.fixture(scope="module")
def twin_apps(models_dir):
    settings = {"TESTING": True, "MODELS_DIR": str(models_dir), "MAX_BATCH_ROWS": MAX_ROWS}
    return create_app({**settings, "DIRECT_PATH": True}), create_app({**settings, "DIRECT_PATH": False})


@pytest.fixture
def direct_calls(monkeypatch):
    """Every call of direct.answer and what it returned (None: handed back to Flask)."""
    calls: list = []
    original = direct.answer

    def counted(app, environ):
        result = original(app, environ)
        calls.append(result)
        return result

    monkeypatch.setattr(direct, "answer", counted)
    return calls


def both(twin_apps, body: bytes, content_type="application/json", path="/predict", headers=None):
    return [app.test_client().post(path, data=body, content_type=content_type, headers={**SAME_ID, **(headers or {})})
            for app in twin_apps]


def as_json(payload) -> bytes:
    return json.dumps(payload).encode()


GOOD_BODIES = [
    # id, body, every row warns
    ("one-record", RECORD, False),
    ("reversed-key-order", dict(reversed(list(RECORD.items()))), False),
    ("list-of-records", [RECORD, with_(Glucose=85, Age=31)], False),
    ("list-of-17-records", [with_(Age=21 + i) for i in range(17)], False),  # the vectorised decoder
    ("instances", {"instances": [RECORD, RECORD]}, False),
    ("inputs", {"inputs": [RECORD]}, False),
    ("dataframe-records", {"dataframe_records": [RECORD, with_(Age=22)]}, False),
    ("dataframe-split", {"dataframe_split": {"columns": COLUMNS, "data": [list(RECORD.values())]}}, False),
    ("dataframe-split-with-index", {"dataframe_split": {"index": [3], "columns": COLUMNS[::-1],
                                                        "data": [list(RECORD.values())[::-1]]}}, False),
    ("missing-optional-values", with_(BloodPressure=None, SkinThickness=None, BMI=None), False),
    ("out-of-range-values-warn", with_(Glucose=400, Age=19, BMI=0), True),
    ("floats-for-integers", with_(Pregnancies=6.0, Age=50.5), False),
    ("full-batch-of-gaps-and-warnings", [with_(BloodPressure=None, Glucose=250)] * MAX_ROWS, True),
]


@pytest.mark.parametrize("payload, warns", [c[1:] for c in GOOD_BODIES], ids=[c[0] for c in GOOD_BODIES])
def test_the_direct_path_answers_good_bodies_byte_for_byte_as_flask(twin_apps, direct_calls, payload, warns):
    direct_answer, flask = both(twin_apps, as_json(payload))
    assert direct_answer.status_code == flask.status_code == 200, flask.get_data(as_text=True)
    assert direct_answer.data == flask.data
    for header in ("Content-Type", "X-Model-Version", "X-Request-ID"):
        assert direct_answer.headers.get(header) == flask.headers.get(header), header
    assert len(direct_calls) == 1 and direct_calls[0] is not None  # the direct_answer app answered on the direct path
    assert all(bool(p["warnings"]) is warns for p in direct_answer.json["predictions"])


BAD_BODIES = [
    ("invalid-json", b'{"Glucose": 148,'),
    ("trailing-garbage", as_json(RECORD) + b"x"),
    ("unknown-field", as_json(with_(Insulin=80))),
    ("repeated-key", as_json(RECORD)[:-1] + b', "Glucose": 999}'),
    ("repeated-key-in-a-batch", as_json([RECORD] * 20)[:-2] + b', "Age": 1}]'),
    ("missing-field", as_json(with_(Glucose=...))),
    ("string-for-number", as_json(with_(Glucose="148"))),
    ("boolean-for-number", as_json(with_(Age=True))),
    ("array-for-number", as_json(with_(BMI=[33.6]))),
    ("null-where-the-model-has-no-gaps", as_json(with_(Glucose=None))),
    ("empty-body", b""),
    ("blank-body", b"  \n "),
    ("too-many-rows", as_json([RECORD] * (MAX_ROWS + 1))),
    ("too-many-rows-in-an-envelope", as_json({"instances": [RECORD] * (MAX_ROWS + 1)})),
    ("nan", as_json(RECORD).replace(b"33.6", b"NaN")),
    ("infinity-in-a-batch", as_json([RECORD] * 17).replace(b"33.6", b"-Infinity", 1)),
    ("huge-number", as_json(RECORD).replace(b"0.627", b"1e300")),
    ("huge-integer", as_json(RECORD).replace(b"148", b"1" + b"0" * 400)),
    ("empty-object", b"{}"),
    ("empty-list", b"[]"),
    ("scalar", b"42"),
    ("null", b"null"),
    ("list-of-numbers", b"[1, 2]"),
    ("envelope-with-extra-key", as_json({"instances": [RECORD], "extra": 1})),
    ("split-short-row", as_json({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}})),
    ("not-utf8", b"\xff\xfe{}"),
    ("deeply-nested", b"[" * 3000 + b"]" * 3000),
]


@pytest.mark.parametrize("body", [c[1] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_the_direct_path_answers_bad_bodies_exactly_as_flask(twin_apps, direct_calls, body):
    direct_answer, flask = both(twin_apps, body)
    assert 400 <= flask.status_code < 500, flask.get_data(as_text=True)
    assert direct_answer.status_code == flask.status_code
    assert direct_answer.mimetype == flask.mimetype == "application/problem+json"
    direct_body, flask_body = direct_answer.json, flask.json
    assert direct_body["request_id"] == flask_body["request_id"] == "same-request-id"
    assert direct_answer.data == flask.data
    assert all(result is None for result in direct_calls)  # handed back to Flask, never answered half-way


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8"])
def test_json_with_a_charset_takes_the_direct_path(twin_apps, direct_calls, content_type):
    direct_answer, flask = both(twin_apps, as_json(RECORD), content_type=content_type)
    assert direct_answer.status_code == 200 and direct_answer.data == flask.data
    assert len(direct_calls) == 1 and direct_calls[0] is not None


@pytest.mark.parametrize("path, payload, name", [
    ("/predict?model=titanic", PASSENGER, "titanic"),
    ("/predict?model=pima-diabetes&version=1", RECORD, PIMA),
    ("/predict?version=1&model=pima-diabetes", RECORD, PIMA),
    ("/predict?version=1", RECORD, PIMA),
    (f"/predict?model={REGRESSOR}", PATIENT, REGRESSOR),
], ids=["model", "model-and-version", "version-first", "version", "regressor"])
def test_choosing_the_model_in_the_query_string_takes_the_direct_path(twin_apps, direct_calls, path, payload, name):
    direct_answer, flask = both(twin_apps, as_json(payload), path=path)
    assert direct_answer.status_code == flask.status_code == 200, direct_answer.get_data(as_text=True)
    assert direct_answer.data == flask.data
    assert direct_answer.json["model"]["name"] == name
    assert len(direct_calls) == 1 and direct_calls[0] is not None


@pytest.mark.parametrize("path, payload, headers, name", [
    ("/predict?model=titanic&model=titanic", PASSENGER, {}, "titanic"),
    ("/predict?model=titanic&debug=1", PASSENGER, {}, "titanic"),
    ("/predict?model=%74itanic", PASSENGER, {}, "titanic"),
    ("/predict", RECORD, {"Origin": ORIGIN}, PIMA),
], ids=["repeated-model", "other-key", "encoded-name", "origin-header"])
def test_other_queries_and_origins_go_to_flask_and_still_work(twin_apps, direct_calls, path, payload, headers, name):
    direct_answer, flask = both(twin_apps, as_json(payload), path=path, headers=headers)
    assert direct_answer.status_code == flask.status_code == 200, direct_answer.get_data(as_text=True)
    assert direct_answer.data == flask.data
    assert direct_answer.json["model"]["name"] == name
    assert all(result is None for result in direct_calls)  # Flask answered


def test_the_flask_only_app_never_takes_the_direct_path(twin_apps, direct_calls):
    _, flask = twin_apps
    assert flask.test_client().post("/predict", json=RECORD).status_code == 200
    assert direct_calls == []
