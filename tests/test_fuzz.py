"""Property tests of POST /predict through the whole in-process stack (gateway, direct path, Flask).

* Any JSON value as the body gets a client error or a prediction, as JSON, never a 5xx, and the
  direct path and the Flask path give the same answer.
* Any valid rows within the ranges seen in training get exactly the artifact's own offline
  ``predict`` labels and ``predict_proba`` probabilities.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app import create_app
from app.model import artifacts
from app.model.contract import Schema
from tests.conftest import PIMA

MAX_ROWS = 24  # above the decoder's 16-row switch to its vectorised checks
MAX_BYTES = 64 * 1024
CLIENT_ERRORS = {400, 413, 415, 422}
SAME_ID = {"X-Request-ID": "fuzz-request"}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROBABILITY_TOLERANCE = 1e-9

FIELDS = ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "BMI", "DiabetesPedigreeFunction", "Age"]
ENVELOPES = ["instances", "inputs", "dataframe_records", "dataframe_split"]


@pytest.fixture(scope="module")
def apps(models_dir):
    base = {"TESTING": True, "MODELS_DIR": str(models_dir), "MAX_BATCH_ROWS": MAX_ROWS, "MAX_CONTENT_LENGTH": MAX_BYTES}
    return {"direct": create_app({**base, "DIRECT_PATH": True}), "flask": create_app({**base, "DIRECT_PATH": False})}


# ---- any JSON -------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),  # beyond 64 bits and beyond float64
    st.floats(allow_nan=False),  # huge, tiny, -0.0 and +-Infinity (which json.dumps writes as a bare token)
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),  # plausible measurements
    st.text(max_size=12),
    st.sampled_from(["", "NaN", "148", "1e999", "null", "\u00b2", "\ud800"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
# Records that use the real field names (each one present or not) with arbitrary values, and the envelopes.
field_values = st.one_of(scalars, st.floats(min_value=0, max_value=200), json_values)
records = st.dictionaries(st.sampled_from(FIELDS + ["Outcome", "Insulin"]), field_values, max_size=9)
whole_records = st.fixed_dictionaries({name: field_values for name in FIELDS})
# Mostly plausible values, so that a good share of bodies is valid and predicted (gaps included).
GAPS_ALLOWED = {"BloodPressure", "SkinThickness", "BMI"}
numbers = st.floats(min_value=0, max_value=250) | st.integers(min_value=0, max_value=250)
plausible = numbers | st.none()
near_valid = st.fixed_dictionaries({name: plausible if name in GAPS_ALLOWED else numbers for name in FIELDS},
                                   optional={"Outcome": field_values, "Insulin": field_values})
record_lists = st.lists(st.one_of(near_valid, records, whole_records, json_values), max_size=10)
splits = st.fixed_dictionaries(
    {"columns": st.one_of(st.permutations(FIELDS), st.lists(st.sampled_from(FIELDS) | json_values, max_size=9)),
     "data": st.lists(st.lists(numbers, min_size=7, max_size=7) | st.lists(field_values, max_size=8) | json_values,
                      max_size=MAX_ROWS + 1)},
    optional={"index": json_values, "extra": json_values})
envelopes = st.one_of(
    st.builds(lambda key, rows: {key: rows}, st.sampled_from(ENVELOPES[:3]),
              st.lists(near_valid, max_size=MAX_ROWS + 1) | record_lists | json_values),
    st.builds(lambda split: {"dataframe_split": split}, splits | json_values),
    st.dictionaries(st.sampled_from(ENVELOPES + FIELDS), json_values, min_size=1, max_size=3),
)
batches = st.one_of(st.lists(near_valid, min_size=1, max_size=4),
                    st.lists(near_valid, min_size=17, max_size=MAX_ROWS),  # the vectorised checks
                    st.lists(near_valid, min_size=MAX_ROWS + 1, max_size=MAX_ROWS + 2))  # 413
bodies = st.one_of(json_values, records, whole_records, near_valid, batches, record_lists, envelopes)


def post(app, body: bytes, path: str = "/predict"):
    return app.test_client().post(path, data=body, content_type="application/json", headers=SAME_ID)


@FUZZ
@given(payload=bodies)
def test_any_json_body_gets_a_prediction_or_a_client_error_never_a_5xx(apps, payload):
    body = json.dumps(payload).encode()
    answers = {name: post(app, body) for name, app in apps.items()}
    for name, response in answers.items():
        assert response.status_code in {200} | CLIENT_ERRORS, (name, body[:300], response.get_data(as_text=True))
        document = json.loads(response.get_data(as_text=True))  # JSON, whatever the status
        if response.status_code == 200:
            assert response.mimetype == "application/json"
            assert 1 <= len(document["predictions"]) <= MAX_ROWS
        else:
            assert response.mimetype == "application/problem+json"
            assert document["status"] == response.status_code and document["request_id"] == "fuzz-request"
    direct, flask = answers["direct"], answers["flask"]
    event(f"status {direct.status_code}")  # pytest --hypothesis-show-statistics shows the mix
    assert (direct.status_code, direct.data) == (flask.status_code, flask.data), body[:300]


@FUZZ
@given(payload=bodies)
def test_any_json_body_for_a_model_with_categories_never_gets_a_5xx(apps, payload):
    body = json.dumps(payload).encode()
    for name, app in apps.items():
        response = post(app, body, "/predict?model=titanic")
        assert response.status_code in {200} | CLIENT_ERRORS, (name, body[:300], response.get_data(as_text=True))
        json.loads(response.get_data(as_text=True))


def damaged(text: str, cut: int, junk: bytes) -> bytes:
    encoded = text.encode("utf-8", "surrogatepass")
    cut = cut % (len(encoded) + 1)
    return encoded[:cut] + junk + encoded[cut:]


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(damaged, bodies.map(json.dumps), st.integers(min_value=0), st.binary(max_size=4)),
)


@FUZZ
@given(body=raw_bodies, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                      "text/csv", "application/vnd.api+json"]))
def test_any_bytes_get_an_answer_in_json_never_a_5xx(apps, body, content_type):
    answers = {name: app.test_client().post("/predict", data=body, content_type=content_type, headers=SAME_ID)
               for name, app in apps.items()}
    for name, response in answers.items():
        assert response.status_code in {200} | CLIENT_ERRORS, (name, body[:300], response.get_data(as_text=True))
        json.loads(response.get_data(as_text=True))
    assert answers["direct"].data == answers["flask"].data, body[:300]


# ---- valid rows: the served answer is the artifact's own --------------------------------------
@pytest.fixture(scope="module")
def artifact(models_dir):
    return artifacts.load(models_dir / PIMA / "1")


def in_range_rows(schema: Schema):
    def value(feature):
        numbers = st.floats(min_value=feature.minimum, max_value=feature.maximum, allow_nan=False)
        if feature.integer:
            numbers = numbers | st.integers(min_value=int(feature.minimum), max_value=int(feature.maximum))
        return numbers | st.none() if feature.allow_missing else numbers
    return st.fixed_dictionaries({f.name: value(f) for f in schema.features})


@pytest.fixture(scope="module")
def schema(artifact) -> Schema:
    return Schema.from_dict(artifact.metadata["schema"])


def offline(artifact, schema: Schema, rows: list[dict]):
    frame = pd.DataFrame({f.name: np.array([np.nan if row[f.name] is None else float(row[f.name]) for row in rows],
                                           dtype="float64") for f in schema.features})
    return artifact.model.predict(frame).tolist(), np.asarray(artifact.model.predict_proba(frame), dtype="float64")


@FUZZ
@given(data=st.data())
def test_valid_rows_get_the_artifacts_own_labels_and_probabilities(apps, artifact, schema, data):
    row = in_range_rows(schema)
    rows = data.draw(st.lists(row, min_size=1, max_size=4) | st.lists(row, min_size=17, max_size=MAX_ROWS), label="rows")
    single = len(rows) == 1 and data.draw(st.booleans(), label="as one object")
    body = json.dumps(rows[0] if single else rows).encode()
    labels, probabilities = offline(artifact, schema, rows)
    classes = [str(c) for c in artifact.metadata["classes"]]
    for name, app in apps.items():
        response = post(app, body)
        assert response.status_code == 200, (name, response.get_data(as_text=True))
        predictions = response.json["predictions"]
        assert [p["label"] for p in predictions] == labels, (name, rows)
        served = np.array([[p["probabilities"][c] for c in classes] for p in predictions])
        assert np.abs(served - probabilities).max() <= PROBABILITY_TOLERANCE, (name, rows)
        assert all(p["warnings"] == [] for p in predictions)  # in range: no extrapolation warnings
