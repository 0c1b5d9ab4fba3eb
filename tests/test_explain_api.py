"""Explanations over HTTP: asked for in the query string or the body, for one row or a batch, the
same on the direct path as through Flask; every bad value a 4xx naming the field."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from scipy.special import expit

from app import create_app
from tests.checks import assert_problem
from tests.conftest import PIMA, REGRESSOR
from tests.records import COLUMNS, CSV_HEADER, CSV_ROW, PASSENGER, PATIENT, QUERY, RECORD, with_

SAME_ID = {"X-Request-ID": "same-request-id"}


def explanation_adds_up(prediction: dict) -> dict:
    explanation = prediction["explanation"]
    assert sum(explanation["contributions"].values()) + explanation["baseline"] == pytest.approx(
        explanation["value"], abs=1e-9)
    return explanation


def test_a_prediction_asked_with_explain_true_carries_its_explanation(client):
    plain = client.post("/predict", json=RECORD).json["predictions"][0]
    response = client.post("/predict?explain=true", json=RECORD)
    assert response.status_code == 200, response.json
    (prediction,) = response.json["predictions"]
    assert {k: v for k, v in prediction.items() if k != "explanation"} == plain
    explanation = explanation_adds_up(prediction)
    assert list(explanation["contributions"]) == COLUMNS
    assert (explanation["method"], explanation["exact"], explanation["output"], explanation["class"]) == (
        "background-shapley", False, "log-odds", 1)
    assert expit(explanation["value"]) == pytest.approx(plain["probabilities"]["1"], abs=1e-9)
    assert "explanation" not in client.post("/predict?explain=false", json=RECORD).json["predictions"][0]


@pytest.mark.parametrize("payload", [
    {"instances": [RECORD, with_(Glucose=85)], "explain": True},
    {"inputs": [RECORD, with_(Glucose=85)], "explain": True},
    {"explain": True, "dataframe_records": [RECORD, with_(Glucose=85)]},
    {"dataframe_split": {"columns": COLUMNS, "data": [list(RECORD.values()), list(with_(Glucose=85).values())]},
     "explain": True},
], ids=["instances", "inputs", "dataframe-records", "dataframe-split"])
def test_the_body_field_beside_an_envelope_explains_every_row_as_alone(client, payload):
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.json
    batch = [explanation_adds_up(p) for p in response.json["predictions"]]
    alone = [client.post("/predict?explain=true", json=r).json["predictions"][0]["explanation"]
             for r in (RECORD, with_(Glucose=85))]
    for in_batch, by_itself in zip(batch, alone):
        assert in_batch["contributions"] == pytest.approx(by_itself["contributions"], abs=1e-9)
    assert batch[0]["value"] > batch[1]["value"]  # 148 mg/dL of glucose says more than 85


def test_a_csv_batch_and_a_query_string_are_explained_too(client):
    body = f"{CSV_HEADER}\n{CSV_ROW}\n{CSV_ROW.replace('148', '85')}\n"
    response = client.post("/predict?explain=true", data=body, content_type="text/csv")
    assert response.status_code == 200 and len(response.json["predictions"]) == 2
    for prediction in response.json["predictions"]:
        explanation_adds_up(prediction)
    from_query = client.get(f"/predict?{QUERY}&explain=true")
    assert from_query.status_code == 200, from_query.json  # explain is a selector, never a feature
    assert from_query.json == client.post("/predict?explain=true", json=RECORD).json


@pytest.mark.parametrize("model, payload, method, output, target_class", [
    ("titanic", PASSENGER, "linear", "log-odds", 1),
    (REGRESSOR, PATIENT, "tree-shap", "value", None),
], ids=["linear-with-categories", "tree-shap-regressor"])
def test_exact_methods_answer_for_their_models(client, model, payload, method, output, target_class):
    response = client.post(f"/predict?model={model}&explain=true", json=[payload, payload])
    assert response.status_code == 200, response.json
    for prediction in response.json["predictions"]:
        explanation = explanation_adds_up(prediction)
        assert (explanation["method"], explanation["exact"], explanation["output"], explanation["class"]) == (
            method, True, output, target_class)
    described = client.get(f"/models/{model}").json["explanations"]
    assert (described["method"], described["output"], described["available"]) == (method, output, True)


def problems(response) -> list[dict]:
    return response.json["errors"]


BAD = [  # id, path, body, the problem's words
    ("query-maybe", "/predict?explain=maybe", RECORD, "expected true or false, got 'maybe'"),
    ("query-uppercase", "/predict?explain=True", RECORD, "expected true or false, got 'True'"),
    ("query-empty", "/predict?explain=", RECORD, "expected true or false, got ''"),
    ("query-twice", "/predict?explain=true&explain=true", RECORD, "given more than once"),
    ("body-number", "/predict", {"instances": [RECORD], "explain": 1}, "expected true or false, got the number 1"),
    ("body-string", "/predict", {"instances": [RECORD], "explain": "true"}, "got the string 'true'"),
    ("body-null", "/predict", {"dataframe_records": [RECORD], "explain": None}, "got null"),
    ("query-and-body-disagree", "/predict?explain=false", {"instances": [RECORD], "explain": True},
     "the query string says false and the body true"),
    ("beside-a-plain-record", "/predict", {**RECORD, "explain": True}, "not a field of the model"),
    ("invocations", "/invocations?explain=true", RECORD, "ask POST /predict for explanations"),
    ("invocations-body", "/invocations", {"instances": [RECORD], "explain": True}, "ask POST /predict"),
]


@pytest.mark.parametrize("path, payload, words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_explain_is_a_422_naming_the_field(client, path, payload, words):
    response = client.post(path, json=payload)
    assert_problem(response, 422)
    (problem,) = problems(response)
    assert problem["field"] == "explain" and words in problem["problem"], problem


def test_a_bad_explain_in_a_get_query_string_is_a_422_naming_the_field(client):
    response = client.get(f"/predict?{QUERY}&explain=yes")
    assert_problem(response, 422)
    assert [p["field"] for p in problems(response)] == ["explain"]


def test_an_approximation_explains_at_most_max_explained_rows_per_request(make_app):
    client = make_app(MAX_EXPLAINED_ROWS=3).test_client()
    assert client.post("/predict?explain=true", json=[RECORD] * 3).status_code == 200
    refused = client.post("/predict?explain=true", json=[RECORD] * 4)
    assert_problem(refused, 413)
    assert "MAX_EXPLAINED_ROWS" in refused.json["detail"] and "at most 3 rows" in refused.json["detail"]
    assert client.post("/predict", json=[RECORD] * 4).status_code == 200  # without explanations: no such limit
    exact = client.post(f"/predict?model={REGRESSOR}&explain=true", json=[PATIENT] * 4)
    assert exact.status_code == 200 and len(exact.json["predictions"]) == 4  # exact methods: MAX_BATCH_ROWS


def test_any_method_explains_only_the_rows_that_fit_in_the_time_limit(make_app):
    app = make_app(EXPLAIN_TIME_LIMIT=1)
    registry = app.extensions["registry"]
    forest = registry.get(REGRESSOR, 1)  # exact TreeSHAP; told here that a row costs 0.4 s to explain
    assert forest.explainer.exact and forest.explainer.seconds_per_row > 0  # measured when it loaded
    slow = replace(forest, explainer=replace(forest.explainer, seconds_per_row=0.4))
    registry.models[REGRESSOR][1] = slow
    registry._resolved.clear()
    client = app.test_client()
    assert client.post(f"/predict?model={REGRESSOR}&explain=true", json=[PATIENT] * 2).status_code == 200
    refused = client.post(f"/predict?model={REGRESSOR}&explain=true", json=[PATIENT] * 3)
    assert_problem(refused, 413)
    assert "at most 2 rows fit in EXPLAIN_TIME_LIMIT (1 s)" in refused.json["detail"]
    assert client.post(f"/predict?model={REGRESSOR}", json=[PATIENT] * 3).status_code == 200


@pytest.fixture(scope="module")
def twin_apps(models_dir):
    settings = {"TESTING": True, "MODELS_DIR": str(models_dir)}
    return create_app({**settings, "DIRECT_PATH": True}), create_app({**settings, "DIRECT_PATH": False})


@pytest.mark.parametrize("path, payload", [
    ("/predict?explain=true", RECORD),
    (f"/predict?model={PIMA}&explain=true&version=1", [RECORD, with_(Age=30)]),
    ("/predict", {"instances": [RECORD], "explain": True}),
    (f"/predict?model={REGRESSOR}&explain=true", PATIENT),
    ("/predict?explain=maybe", RECORD),
    ("/predict", {"instances": [RECORD], "explain": 1}),
], ids=["query", "model-version-batch", "body", "regressor", "bad-query", "bad-body"])
def test_the_direct_path_explains_byte_for_byte_as_flask(twin_apps, path, payload):
    direct, flask = [app.test_client().post(path, data=json.dumps(payload), content_type="application/json",
                                            headers=SAME_ID) for app in twin_apps]
    assert direct.status_code == flask.status_code
    assert direct.data == flask.data
