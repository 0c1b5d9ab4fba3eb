"""Prometheus metrics: requests, latency, predictions, rows and models, with bounded labels."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.checks import assert_problem
from tests.conftest import PIMA, REGRESSOR
from tests.records import PATIENT, RECORD, with_


def samples(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    scrape = client.get("/metrics", **kwargs)
    assert scrape.status_code == 200
    assert scrape.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(scrape.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def sample(found, name, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def series(found, name) -> list[dict[str, str]]:
    return [dict(labels) for sample_name, labels in found if sample_name == name]


def test_metrics_count_requests_latency_predictions_rows_and_the_models(make_app):
    client = make_app().test_client()
    assert client.post("/predict", json=RECORD).status_code == 200  # direct path
    assert client.post("/predict", json=with_(Glucose=85, BMI=22.1, Age=22, DiabetesPedigreeFunction=0.1)).status_code == 200
    assert client.post("/predict?model=pima-diabetes", json=[RECORD] * 3).status_code == 200  # Flask path
    assert client.post("/predict", json=with_(Glucose="x")).status_code == 422
    found = samples(client)

    assert sample(found, "http_requests_total", endpoint="/predict", method="POST", status="200") == 3
    assert sample(found, "http_requests_total", endpoint="/predict", method="POST", status="422") == 1
    assert sample(found, "http_request_duration_seconds_count", endpoint="/predict") == 4
    buckets = [s for s in series(found, "http_request_duration_seconds_bucket") if s["endpoint"] == "/predict"]
    assert len(buckets) >= 10 and {"+Inf", "0.005"} <= {s["le"] for s in buckets}
    assert sample(found, "http_request_duration_seconds_bucket", endpoint="/predict", le="+Inf") == 4

    labels = {s["label"]: sample(found, "model_predictions_total", **s) for s in series(found, "model_predictions_total")
              if s["model"] == PIMA}
    assert set(labels) <= {"0", "1"} and sum(labels.values()) == 5
    assert sample(found, "model_prediction_rows_count", model=PIMA, version="1") == 3
    assert sample(found, "model_prediction_rows_sum", model=PIMA, version="1") == 5

    info = {(s["model"], s["default"]) for s in series(found, "model_info")}
    assert (PIMA, "true") in info and ("titanic", "false") in info
    assert [s for s in series(found, "model_info") if s["default"] == "true"][0]["version"] == "1"


def test_a_regressors_values_go_to_a_histogram_single_rows_and_batches_alike(make_app):
    client = make_app().test_client()
    single = client.post(f"/predict?model={REGRESSOR}", json=PATIENT).json["predictions"][0]["value"]
    batch = [p["value"] for p in client.post(f"/predict?model={REGRESSOR}", json=[PATIENT] * 40).json["predictions"]]
    found = samples(client)
    values = [single, *batch]
    assert sample(found, "model_predicted_values_count", model=REGRESSOR, version="1") == 41
    assert sample(found, "model_predicted_value_count", model=REGRESSOR, version="1") == 41
    assert abs(sample(found, "model_predicted_value_sum", model=REGRESSOR, version="1") - sum(values)) < 1e-6
    for bound in ("100.0", "250.0", "500.0", "+Inf"):
        expected = sum(v <= float(bound) for v in values)
        assert sample(found, "model_predicted_values_bucket", model=REGRESSOR, version="1", le=bound) == expected
    assert not [s for s in series(found, "model_predictions_total") if s["model"] == REGRESSOR]
    assert sample(found, "model_prediction_rows_sum", model=REGRESSOR, version="1") == 41


def test_unknown_paths_share_one_bounded_series(make_app):
    client = make_app().test_client()
    for path in ("/nope", "/wp-admin/setup.php", "/predict/extra/segments", "/hello/a/b"):
        assert_problem(client.get(path), 404)
    found = samples(client)
    assert sample(found, "http_requests_total", endpoint="<unmatched>", method="GET", status="404") == 4
    endpoints = {s["endpoint"] for s in series(found, "http_requests_total")}
    assert not any("nope" in e or "wp-admin" in e or "extra" in e for e in endpoints)


def test_names_in_paths_are_labelled_by_their_route_template(make_app):
    client = make_app().test_client()
    for name in ("Ada", "Grace", "Linus"):
        client.get(f"/hello/{name}")
    client.get("/models/pima-diabetes")
    client.get("/models/titanic")
    endpoints = {s["endpoint"] for s in series(samples(client), "http_requests_total")}
    assert {"/hello/<name>", "/models/<name>"} <= endpoints
    assert not any(name in e for e in endpoints for name in ("Ada", "Grace", "titanic"))


def test_invented_http_methods_do_not_create_new_metric_series(make_app):
    """gunicorn accepts any upper-case token of 3 to 20 characters as a method: a client must not be
    able to add a series to http_requests_total per request."""
    client = make_app().test_client()
    invented = ["FOO", "BARBAZ", "XYZZY", "QWERTYUIOP"]
    for method in invented:
        assert client.open("/predict", method=method).status_code in (400, 405, 501)
    methods = {s["method"] for s in series(samples(client), "http_requests_total")}
    assert not methods & set(invented), f"one series per invented method: {sorted(methods)}"


def test_metrics_can_be_turned_off(make_app):
    client = make_app(METRICS=False).test_client()
    assert client.post("/predict", json=RECORD).status_code == 200
    assert_problem(client.get("/metrics"), 404)
