"""The HTTP contract through Flask's test client: every endpoint, every format, every bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from app import StartupError, create_app
from tests.checks import assert_prediction
from tests.conftest import REGRESSOR
from tests.records import COLUMNS, CSV_HEADER, CSV_ROW, PASSENGER, PATIENT, QUERY, RECORD, with_

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}


# ---- success ----------------------------------------------------------------------------------
@pytest.mark.parametrize("payload, rows", [
    (RECORD, 1),
    ([RECORD, with_(Glucose=85)], 2),
    ({"instances": [RECORD, RECORD, RECORD]}, 3),
    ({"inputs": [RECORD]}, 1),
    ({"dataframe_records": [RECORD, with_(Age=22)]}, 2),
    ({"dataframe_split": {"columns": COLUMNS, "data": [list(RECORD.values())]}}, 1),
    ({"dataframe_split": {"index": [7], "columns": COLUMNS[::-1], "data": [list(RECORD.values())[::-1]]}}, 1),
])
def test_predict_accepts_every_json_format(client, payload, rows):
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.json
    assert_prediction(response.json, rows)
    assert response.headers["X-Model-Version"] == "pima-diabetes/1"


def test_predict_accepts_csv_with_a_header_row_and_the_label_column(client):
    body = f"{CSV_HEADER},Outcome\n{CSV_ROW},1\n{CSV_ROW.replace('148', '85')},0\n"
    response = client.post("/predict", data=body, content_type="text/csv")
    assert response.status_code == 200, response.json
    assert_prediction(response.json, 2)


def test_predict_from_a_query_string(client):
    response = client.get(f"/predict?{QUERY}")
    assert response.status_code == 200, response.json
    assert_prediction(response.json)
    assert response.json == client.post("/predict", json=RECORD).json


def test_column_order_comes_from_the_schema_not_the_client(client):
    reversed_record = dict(reversed(list(RECORD.items())))
    assert client.post("/predict", json=reversed_record).json == client.post("/predict", json=RECORD).json


def test_batch_results_keep_input_order(client, test_rows):
    rows = test_rows.drop(columns="Outcome").head(20).to_dict(orient="records")
    singles = [client.post("/predict", json=row).json["predictions"][0] for row in rows]
    batch = client.post("/predict", json=rows).json["predictions"]
    assert [p["label"] for p in batch] == [p["label"] for p in singles]
    for one, many in zip(singles, batch):  # BLAS may round a batch differently in the 15th digit
        assert many["probabilities"] == pytest.approx(one["probabilities"], abs=1e-12)


def test_missing_values_are_accepted_where_the_model_imputes_them(client):
    response = client.post("/predict", json=with_(BloodPressure=None, SkinThickness=None, BMI=None))
    assert response.status_code == 200
    assert client.get(f"/predict?{QUERY.replace('BMI=33.6', 'BMI=')}").status_code == 200


def test_value_outside_training_range_is_predicted_with_a_warning(client):
    response = client.post("/predict", json=with_(Glucose=400))
    assert response.status_code == 200
    (warning,) = response.json["predictions"][0]["warnings"]
    assert "Glucose=400" in warning and "56 to 199" in warning


def test_model_and_version_can_be_chosen(client):
    response = client.post("/predict?model=pima-diabetes&version=1", json=RECORD)
    assert response.status_code == 200 and response.json["model"] == {"name": "pima-diabetes", "version": 1}


def test_a_model_with_categories_predicts_and_names_its_classes(client):
    response = client.post("/predict?model=titanic", json=PASSENGER)
    assert response.status_code == 200, response.json
    assert response.json["model"]["name"] == "titanic"
    assert set(response.json["predictions"][0]["probabilities"]) == {"0", "1"}


def test_mlflow_invocations_returns_labels_only(client):
    response = client.post("/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": [list(RECORD.values())] * 2}})
    assert response.status_code == 200
    assert response.json == {"predictions": [p["label"] for p in client.post("/predict", json=[RECORD] * 2).json["predictions"]]}
    assert client.get("/ping").status_code == 200


def test_a_regressor_answers_what_its_predict_answers_with_a_value_per_row(client, models_dir):
    from app.model import artifacts

    model = artifacts.load(models_dir / REGRESSOR / "1").model
    rows = [PATIENT, {**PATIENT, "bp": 80, "sex": "male"}, {**PATIENT, "bmi": None}]
    response = client.post(f"/predict?model={REGRESSOR}", json=rows)
    assert response.status_code == 200 and response.headers["X-Model-Version"] == f"{REGRESSOR}/1"
    predictions = response.json["predictions"]
    assert all(set(p) == {"value", "warnings"} for p in predictions)
    expected = model.predict(pd.DataFrame(rows).astype({"bp": float, "bmi": float})).tolist()
    assert [p["value"] for p in predictions] == pytest.approx(expected, rel=1e-9)
    plain = client.post(f"/invocations?model={REGRESSOR}", json={"dataframe_records": rows})
    assert plain.json == {"predictions": [p["value"] for p in predictions]}
    described = client.get(f"/models/{REGRESSOR}").json
    assert described["task"] == "regression" and described["classes"] == []
    assert described["target_range"]["min"] == 25.0 and described["target_range"]["max"] == 346.0


def test_a_regressor_flags_values_outside_its_training_range(client):
    response = client.post(f"/predict?model={REGRESSOR}", json={**PATIENT, "bmi": 80})
    assert response.status_code == 200
    assert any("bmi" in warning for warning in response.json["predictions"][0]["warnings"])


# ---- the other endpoints ----------------------------------------------------------------------
def test_hello_greets(client):
    assert client.get("/hello").json == {"message": "Hello, World!"}
    assert client.get("/hello/Ada").json == {"message": "Hello, Ada!"}


def test_health_and_ready(client):
    assert client.get("/health").json == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json["default_model"] == {"name": "pima-diabetes", "version": 1}


def test_models_lists_every_model_and_describes_one(client):
    listing = client.get("/models").json
    assert [m["name"] for m in listing["models"]] == ["pima-diabetes", "progression", "titanic"]
    described = client.get("/models/pima-diabetes").json
    assert described["versions"] == [1] and described["classes"] == [0, 1]
    assert described["example"].keys() == RECORD.keys()
    assert described["test_metrics"]["accuracy"] >= 0.8
    assert client.post("/predict", json=described["example"]).status_code == 200
    assert client.get("/models/pima-diabetes/1").json["version"] == 1


def test_responses_carry_a_request_id_and_no_store(client):
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    generated = client.post("/predict", json={}).json["request_id"]
    assert len(generated) == 32


# ---- bad input: one table ---------------------------------------------------------------------
def post_json(payload):
    return {"method": "POST", "path": "/predict", "data": json.dumps(payload), "content_type": "application/json"}


def post_raw(data, content_type="application/json", path="/predict"):
    return {"method": "POST", "path": path, "data": data, "content_type": content_type}


def get(path):
    return {"method": "GET", "path": path}


REPEATED = "given more than once in the same object"
BAD_INPUTS = [
    # id, request, status, (field or None, words in the problem or detail)
    ("repeated-key", post_raw(json.dumps(RECORD)[:-1] + ', "Glucose": 999}'), 422, ("Glucose", REPEATED)),
    ("repeated-key-spaced", post_raw(json.dumps(RECORD)[:-1] + ', "Glucose" : 999}'), 422, ("Glucose", REPEATED)),
    ("repeated-key-escaped", post_raw(json.dumps(RECORD)[:-1] + ', "Gl\\u0075cose": 999}'), 422, ("Glucose", REPEATED)),
    ("repeated-key-in-a-batch", post_raw(f'[{json.dumps(RECORD)}, {json.dumps(RECORD)[:-1]}, "Age": 1}}]'), 422,
     ("Age", REPEATED)),
    ("repeated-key-in-an-envelope", post_raw(f'{{"instances": [{json.dumps(RECORD)[:-1]}, "BMI": 1}}]}}'), 422,
     ("BMI", REPEATED)),
    ("repeated-key-with-nan", post_raw(json.dumps(RECORD)[:-1] + ', "BMI": NaN, "BMI": 1}'), 422, ("BMI", REPEATED)),
    ("string-for-number", post_json(with_(Glucose="148")), 422, ("Glucose", "expected a number, got the string '148'")),
    ("boolean-for-number", post_json(with_(Age=True)), 422, ("Age", "got the boolean true")),
    ("object-for-number", post_json(with_(BMI={"value": 3})), 422, ("BMI", "got an object")),
    ("array-for-number", post_json(with_(BMI=[33.6])), 422, ("BMI", "got an array")),
    ("nan", post_raw(json.dumps(RECORD).replace("33.6", "NaN")), 422, ("BMI", "finite number, got NaN")),
    ("infinity", post_raw(json.dumps(RECORD).replace("0.627", "Infinity")), 422, ("DiabetesPedigreeFunction", "Infinity")),
    ("huge-but-finite", post_raw(json.dumps(RECORD).replace("0.627", "1.7976931348623157e+308")), 422, ("DiabetesPedigreeFunction", "between -1e15 and 1e15")),
    ("huge-integer", post_raw(json.dumps(RECORD).replace("148", "1" + "0" * 400)), 422, ("Glucose", "too large")),
    ("missing-field", post_json(with_(Glucose=...)), 422, ("Glucose", "missing field")),
    ("unknown-field", post_json(with_(Insulinn=5)), 422, ("Insulinn", "unknown field; expected one of: Pregnancies")),
    ("null-where-not-imputed", post_json(with_(Glucose=None)), 422, ("Glucose", "trained without gaps")),
    ("empty-object", post_json({}), 422, ("Glucose", "missing field")),
    ("scalar-body", post_json(42), 422, (None, "expected a JSON object or an array of objects")),
    ("string-body", post_json("hello"), 422, (None, "got a string")),
    ("null-body", post_json(None), 422, (None, "got null")),
    ("empty-list", post_json([]), 422, (None, "no rows to predict")),
    ("list-of-numbers", post_json([1, 2]), 422, (None, "expected an object of field values")),
    ("envelope-with-extra-key", post_json({"instances": [RECORD], "extra": 1}), 422, ("extra", "unknown key beside 'instances'")),
    ("instances-not-a-list", post_json({"instances": RECORD}), 422, ("instances", "expected an array of records")),
    ("split-missing-data", post_json({"dataframe_split": {"columns": COLUMNS}}), 422, ("dataframe_split.data", "expected an array")),
    ("split-not-an-object", post_json({"dataframe_split": [1]}), 422, ("dataframe_split", "expected an object")),
    ("split-short-row", post_json({"dataframe_split": {"columns": COLUMNS, "data": [[1, 2]]}}), 422, (None, "expected 7 values")),
    ("split-duplicate-column", post_json({"dataframe_split": {"columns": COLUMNS + ["Age"], "data": [[1] * 8]}}), 422, ("Age", "more than once")),
    ("split-unknown-key", post_json({"dataframe_split": {"columns": COLUMNS, "data": [], "extra": 1}}), 422, ("dataframe_split.extra", "unknown key")),
    ("unknown-category", {**post_json({"Sex": "alien", "Pclass": 1, "Age": 3, "Fare": 1, "Embarked": "S"}), "path": "/predict?model=titanic"}, 422, ("Sex", "unknown category 'alien'; expected one of: female, male")),
    ("number-for-category", {**post_json({"Sex": 1, "Pclass": 1, "Age": 3, "Fare": 1, "Embarked": "S"}), "path": "/predict?model=titanic"}, 422, ("Sex", "expected a string")),
    ("malformed-json", post_raw('{"Glucose": 148,'), 400, (None, "not valid JSON")),
    ("empty-json-body", post_raw(""), 400, (None, "body is empty")),
    ("not-utf8", post_raw(b"\xff\xfe{}"), 400, (None, "not UTF-8")),
    ("deeply-nested-json", post_raw("[" * 3000 + "]" * 3000), 400, (None, "not valid JSON")),
    ("form-content-type", post_raw("Glucose=148", "application/x-www-form-urlencoded"), 415, (None, "expected Content-Type application/json or text/csv")),
    ("no-content-type", post_raw(json.dumps(RECORD), None), 415, (None, "no Content-Type")),
    ("text-plain", post_raw(json.dumps(RECORD), "text/plain"), 415, (None, "text/plain")),
    ("csv-unknown-column", post_raw(f"{CSV_HEADER},Insulin\n{CSV_ROW},5\n", "text/csv"), 422, ("Insulin", "unknown field")),
    ("csv-missing-column", post_raw("Glucose\n148\n", "text/csv"), 422, ("Pregnancies", "missing field")),
    ("csv-text-in-number", post_raw(f"{CSV_HEADER}\n{CSV_ROW.replace('148', 'high')}\n", "text/csv"), 422, ("Glucose", "expected a number, got 'high'")),
    ("csv-ragged-row", post_raw(f"{CSV_HEADER}\n{CSV_ROW},9\n", "text/csv"), 422, (None, "expected 7 values")),
    ("csv-header-only", post_raw(f"{CSV_HEADER}\n", "text/csv"), 422, (None, "no rows to predict")),
    ("csv-empty", post_raw("", "text/csv"), 400, (None, "CSV body is empty")),
    ("csv-nan-text", post_raw(f"{CSV_HEADER}\n{CSV_ROW.replace('33.6', 'nan')}\n", "text/csv"), 422, ("BMI", "finite number")),
    ("query-text-in-number", get(f"/predict?{QUERY.replace('Age=50', 'Age=fifty')}"), 422, ("Age", "got 'fifty'")),
    ("query-repeated-field", get(f"/predict?{QUERY}&Age=51"), 422, ("Age", "more than once")),
    ("query-unknown-field", get(f"/predict?{QUERY}&Insulin=1"), 422, ("Insulin", "unknown field")),
    ("query-empty", get("/predict"), 400, (None, "give the fields as a query string, e.g. /predict?Pregnancies=")),
    ("query-missing-required-value", get(f"/predict?{QUERY.replace('Glucose=148', 'Glucose=')}"), 422, ("Glucose", "trained without gaps")),
    ("unknown-model", {**post_json(RECORD), "path": "/predict?model=nope"}, 404, (None, "no model named 'nope'")),
    ("unknown-version", {**post_json(RECORD), "path": "/predict?version=99"}, 404, (None, "has no version 99; its versions are: 1")),
    ("bad-version", {**post_json(RECORD), "path": "/predict?version=latest"}, 400, (None, "version must be a positive whole number")),
    ("superscript-version", {**post_json(RECORD), "path": "/predict?version=%C2%B2"}, 400, (None, "positive whole number")),
    ("huge-version", {**post_json(RECORD), "path": "/predict?version=" + "9" * 5000}, 400, (None, "positive whole number")),
    ("integer-too-long-to-convert", post_raw(json.dumps(RECORD).replace("148", "9" * 5000)), 400, (None, "not valid JSON")),
    ("query-underscore-number", get(f"/predict?{QUERY.replace('Glucose=148', 'Glucose=1_4_8')}"), 422, ("Glucose", "expected a number")),
    ("zero-version", {**post_json(RECORD), "path": "/predict?version=0"}, 400, (None, "positive whole number")),
    ("unknown-model-metadata", get("/models/nope"), 404, (None, "no model named 'nope'")),
    ("unknown-path", get("/predictions"), 404, (None, "no such path")),
    ("wrong-method", {"method": "DELETE", "path": "/predict"}, 405, (None, "accepts GET")),
    ("wrong-method-health", {"method": "POST", "path": "/health"}, 405, (None, "accepts GET")),
    ("batch-too-large", post_json([RECORD] * 11), 413, (None, "limit is 10 (MAX_BATCH_ROWS)")),
    ("csv-batch-too-large", post_raw(CSV_HEADER + "\n" + (CSV_ROW + "\n") * 11, "text/csv"), 413, (None, "MAX_BATCH_ROWS")),
    ("body-too-large", post_raw(json.dumps([RECORD] * 200)), 413, (None, "MAX_CONTENT_LENGTH")),
]


@pytest.fixture
def strict_client(models_dir):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_dir), "MAX_BATCH_ROWS": 10,
                      "MAX_CONTENT_LENGTH": 8 * 1024})
    return app.test_client()


@pytest.mark.parametrize("request_, status, expected", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_a_clear_problem_response(strict_client, request_, status, expected):
    request_ = dict(request_)
    response = strict_client.open(request_.pop("path"), method=request_.pop("method"), **request_)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    assert body["type"].startswith("https://") and body["title"]
    field, words = expected
    texts = [body["detail"]] + [e["problem"] for e in body.get("errors", []) if field is None or e["field"] == field]
    assert any(words in text for text in texts), body


def test_the_table_of_bad_inputs_is_large(strict_client):
    assert len(BAD_INPUTS) >= 30


def test_every_problem_is_reported_at_once_per_row_and_field(client):
    rows = [with_(Glucose="x", Age=None), RECORD, with_(BMI=float("inf"), Insulin=1)]
    body = client.post("/predict", data=json.dumps(rows), content_type="application/json").json
    assert body["detail"] == "4 problems in 2 rows"
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(0, "Glucose"), (0, "Age"), (2, "BMI"), (2, "Insulin")}


def test_the_list_of_problems_is_capped(models_dir):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_dir), "MAX_LISTED_ERRORS": 3})
    body = app.test_client().post("/predict", json=[with_(Glucose="x")] * 5).json
    assert len(body["errors"]) == 3 and body["detail"] == "5 problems in 5 rows (the first 3 are listed)"


# ---- startup ----------------------------------------------------------------------------------
def test_no_model_refuses_to_start_and_says_how_to_fix_it(tmp_path):
    with pytest.raises(StartupError, match="no model found in .*python train.py"):
        create_app({"MODELS_DIR": str(tmp_path)})


def test_not_ready_without_a_model_when_asked_to_start_anyway(tmp_path):
    client = create_app({"MODELS_DIR": str(tmp_path), "EXIT_IF_UNREADY": False}).test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and "python train.py" in ready.json["detail"]
    assert client.post("/predict", json=RECORD).status_code == 404
    assert client.get("/ping").status_code == 503


def test_a_tampered_default_model_makes_the_service_not_ready(tmp_path, models_dir):
    import shutil

    shutil.copytree(models_dir / "pima-diabetes", tmp_path / "pima-diabetes")
    with open(tmp_path / "pima-diabetes" / "1" / "model.skops", "ab") as stream:
        stream.write(b"x")
    with pytest.raises(StartupError, match="sha256"):
        create_app({"MODELS_DIR": str(tmp_path)})
    client = create_app({"MODELS_DIR": str(tmp_path), "EXIT_IF_UNREADY": False}).test_client()
    assert client.get("/ready").status_code == 503
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 503 and "sha256" in response.json["detail"]


def test_a_pinned_version_is_served(models_dir):
    app = create_app({"MODELS_DIR": str(models_dir), "MODEL_VERSION": 1})
    assert app.test_client().post("/predict", json=RECORD).json["model"]["version"] == 1
    with pytest.raises(StartupError, match="has no version 7"):
        create_app({"MODELS_DIR": str(models_dir), "MODEL_VERSION": 7})


def test_a_default_pinned_to_a_missing_version_is_the_servers_fault_not_the_clients(models_dir, tmp_path):
    """503 (a balancer retries elsewhere) for a request that named no version; 404 for one that did."""
    import shutil

    from app.model import artifacts

    shutil.copytree(models_dir / "pima-diabetes", tmp_path / "pima-diabetes")
    artifacts.write_pin(tmp_path, "pima-diabetes", 9)
    client = create_app({"MODELS_DIR": str(tmp_path), "EXIT_IF_UNREADY": False}).test_client()
    unversioned = client.post("/predict", json=RECORD)
    assert unversioned.status_code == 503 and "has no version 9 (pinned by" in unversioned.json["detail"]
    assert client.get("/ready").status_code == 503
    assert client.post("/predict?version=9", json=RECORD).status_code == 404
    assert client.post("/predict?version=1", json=RECORD).status_code == 200


@pytest.mark.parametrize("change, words", [
    ({"versions": "x"}, "wrong type"),
    ({"classes": [1, 0]}, "the model has [0, 1]"),
    ({"schema": {"features": [{"name": "Glucose"}]}}, "not usable"),
])
def test_a_model_with_inconsistent_metadata_is_refused_and_the_others_still_serve(tmp_path, models_dir, change, words):
    import shutil

    shutil.copytree(models_dir / "pima-diabetes", tmp_path / "pima-diabetes")
    shutil.copytree(models_dir / "pima-diabetes" / "1", tmp_path / "other" / "1")
    path = tmp_path / "other" / "1" / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    client = create_app({"MODELS_DIR": str(tmp_path)}).test_client()
    assert client.post("/predict", json=RECORD).status_code == 200
    refused = client.post("/predict?model=other", json=RECORD)
    assert refused.status_code == 503 and words in refused.json["detail"]
