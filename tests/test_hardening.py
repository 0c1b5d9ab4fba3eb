"""The gateway in front of Flask, in process: API keys, rate limits, metrics, security headers, CORS,
the hot path's equivalence with Flask, and model reloads, pins and rollbacks.

Every app here is built with ``create_app`` over the session's trained models, so the Flask test
client goes through the Gateway (``app.wsgi_app``) exactly as gunicorn does.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import StartupError, artifacts, config, create_app, hotpath, reload_models
from app.training import TrainingOptions, train
from tests.conftest import PIMA, ROOT
from tests.test_api import COLUMNS, RECORD, with_

KEY = "alpha-key-A1b2C3d4E5f6G7h8"
SECOND_KEY = "bravo-key-Z9y8X7w6V5u4T3s2"
WRONG_KEY = "wrong-key-Q1q2Q3q4Q5q6Q7q8"
PASSENGER = {"Sex": "female", "Pclass": 1, "Age": None, "Fare": 80.0, "Embarked": "C", "Name": "Ann"}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
ORIGIN = "https://app.example"


@pytest.fixture(autouse=True)
def no_settings_from_the_shell(monkeypatch):
    """A developer's API_KEYS or RATE_LIMIT must not leak into these apps."""
    for name in (*config.PARSERS, "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_app(models_dir):
    def make(**settings):
        return create_app({"TESTING": True, "MODELS_DIR": str(models_dir), **settings})
    return make


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


# ==== API keys =================================================================================
AUTH_CASES = [
    # id, headers, status, error="invalid_token" expected in the challenge (None: not refused)
    ("missing-key", {}, 401, False),
    ("empty-bearer", {"Authorization": "Bearer "}, 401, True),
    ("empty-x-api-key", {"X-API-Key": ""}, 401, True),
    ("wrong-key-as-bearer", bearer(WRONG_KEY), 401, True),
    ("wrong-key-as-x-api-key", {"X-API-Key": WRONG_KEY}, 401, True),
    ("right-key-with-basic-scheme", {"Authorization": f"Basic {KEY}"}, 401, False),
    ("right-key-minus-its-last-character", bearer(KEY[:-1]), 401, True),
    ("right-key-plus-one-character", bearer(KEY + "x"), 401, True),
    ("right-key-in-other-case", bearer(KEY.upper()), 401, True),
    ("right-key-as-bearer", bearer(KEY), 200, None),
    ("right-key-as-lowercase-bearer", {"Authorization": f"bearer {KEY}"}, 200, None),
    ("right-key-as-x-api-key", {"X-API-Key": KEY}, 200, None),
    ("second-of-two-keys", bearer(SECOND_KEY), 200, None),
]


@pytest.fixture
def keyed_app(make_app):
    return make_app(API_KEYS=(KEY, SECOND_KEY))


@pytest.mark.parametrize("headers, status, invalid_token", [c[1:] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES])
def test_predict_needs_one_of_the_configured_api_keys(keyed_app, headers, status, invalid_token):
    response = keyed_app.test_client().post("/predict", json=RECORD, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 200:
        assert response.json["predictions"][0]["label"] in (0, 1)
        return
    assert_problem(response, 401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert ('error="invalid_token"' in challenge) is invalid_token
    text = response.get_data(as_text=True)
    assert KEY not in text and WRONG_KEY not in text  # a refusal never echoes a key


OPEN_REQUESTS = [("GET", "/health"), ("GET", "/ready"), ("GET", "/hello"), ("GET", "/hello/Ada"), ("GET", "/ping"),
                 ("GET", "/")]
PROTECTED_REQUESTS = [("POST", "/predict"), ("GET", "/predict?" + "&".join(f"{k}={v}" for k, v in RECORD.items())),
                      ("POST", "/invocations"), ("GET", "/models"), ("GET", "/models/pima-diabetes"),
                      ("GET", "/metrics")]


def call(client, method, path, **kwargs):
    if method == "POST":
        return client.post(path, json=RECORD, **kwargs)
    return client.open(path, method=method, **kwargs)


@pytest.mark.parametrize("method, path", OPEN_REQUESTS, ids=[p for _, p in OPEN_REQUESTS])
def test_probes_and_the_page_stay_open_with_auth_on(keyed_app, method, path):
    assert call(keyed_app.test_client(), method, path).status_code == 200


@pytest.mark.parametrize("method, path", PROTECTED_REQUESTS, ids=[p.split("?")[0] + ("?query" if "?" in p else "")
                                                                  for _, p in PROTECTED_REQUESTS])
def test_predictions_models_and_metrics_need_the_key(keyed_app, method, path):
    client = keyed_app.test_client()
    assert_problem(call(client, method, path), 401)
    assert call(client, method, path, headers=bearer(KEY)).status_code == 200


@pytest.mark.parametrize("path", ["/static/../predict", "/docs/../models", "/hello/../metrics", "/predict/",
                                  "/models/", "//models", "/models/pima-diabetes/1"])
def test_paths_that_look_like_open_ones_give_nothing_away_without_a_key(keyed_app, path):
    response = keyed_app.test_client().get(path)
    assert response.status_code in (308, 401, 404)
    assert b"predictions" not in response.data and b"schema" not in response.data


def test_keys_can_come_from_a_file_with_comments_and_blank_lines(make_app, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# production keys\n\n   {KEY}   \n# {WRONG_KEY} (revoked)\n\n{SECOND_KEY}\n")
    client = make_app(API_KEYS_FILE=str(key_file)).test_client()
    assert client.post("/predict", json=RECORD, headers=bearer(KEY)).status_code == 200
    assert client.post("/predict", json=RECORD, headers={"X-API-Key": SECOND_KEY}).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, headers=bearer(WRONG_KEY)), 401)
    assert_problem(client.post("/predict", json=RECORD, headers=bearer("# production keys")), 401)
    assert_problem(client.post("/predict", json=RECORD), 401)


SHORT_KEY = "tiny-secret-15c"  # 15 characters


def short_key_in_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("API_KEYS", f"{KEY},{SHORT_KEY}")
    return {}, "key 2 must be at least 16"


def short_key_in_the_settings(monkeypatch, tmp_path):
    return {"API_KEYS": (SHORT_KEY,)}, "at least 16"


def short_key_in_a_file(monkeypatch, tmp_path):
    (tmp_path / "keys").write_text(f"{KEY}\n{SHORT_KEY}\n")
    return {"API_KEYS_FILE": str(tmp_path / "keys")}, "key 2 must be at least 16"


def empty_key_file(monkeypatch, tmp_path):
    (tmp_path / "keys").write_text("# nothing here yet\n\n")
    return {"API_KEYS_FILE": str(tmp_path / "keys")}, "holds no key"


def missing_key_file(monkeypatch, tmp_path):
    return {"API_KEYS_FILE": str(tmp_path / "no-such-file")}, "cannot be read"


@pytest.mark.parametrize("bad_keys", [short_key_in_the_environment, short_key_in_the_settings, short_key_in_a_file,
                                      empty_key_file, missing_key_file])
def test_unusable_keys_stop_startup_without_revealing_a_key(make_app, monkeypatch, tmp_path, bad_keys):
    settings, words = bad_keys(monkeypatch, tmp_path)
    with pytest.raises(StartupError) as refused:
        make_app(**settings)
    message = str(refused.value)
    assert words in message
    assert SHORT_KEY not in message and KEY not in message


# ---- keys, bodies and query strings never reach a log -----------------------------------------
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_keys_bodies_and_query_strings_never_appear_in_any_log(make_app, capfd, caplog, log_format):
    body_value, query_value, text_value = 0.4242424242, 171.2345678, "sentinel-body-text"
    caplog.set_level(logging.DEBUG)
    app = make_app(API_KEYS=(KEY, SECOND_KEY), RATE_LIMIT="6/minute", LOG_LEVEL="DEBUG", LOG_FORMAT=log_format)
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    collector = Collect(logging.DEBUG)
    logging.getLogger("app").addHandler(collector)
    try:
        client = app.test_client()
        query = "&".join(f"{k}={v}" for k, v in with_(Glucose=query_value).items())
        sent = [
            client.post("/predict", json=with_(DiabetesPedigreeFunction=body_value), headers=bearer(KEY)),
            client.post("/predict?model=pima-diabetes", json=with_(DiabetesPedigreeFunction=body_value),
                        headers={"X-API-Key": SECOND_KEY}),
            client.get(f"/predict?{query}", headers=bearer(KEY)),
            client.post("/predict", json=with_(Glucose=text_value), headers=bearer(KEY)),
            client.post("/predict", json=RECORD, headers=bearer(WRONG_KEY)),
            client.post("/predict", json=RECORD, headers={"X-API-Key": WRONG_KEY}),
            client.post("/predict", json=RECORD, headers={"Authorization": f"Basic {KEY}"}),
            client.get(f"/models?api_key={KEY}"),
            client.get("/no-such-path", headers=bearer(KEY)),
            client.get("/models", headers={"X-API-Key": SECOND_KEY}),
        ]
        sent += [client.post("/predict", json=RECORD, headers=bearer(KEY)) for _ in range(6)]  # into the limit
        scrape = client.get("/metrics", headers=bearer(KEY))
    finally:
        logging.getLogger("app").removeHandler(collector)
    statuses = {r.status_code for r in sent}
    assert {200, 401, 404, 422, 429} <= statuses
    captured = capfd.readouterr()
    logged = "\n".join([captured.out, captured.err, caplog.text, *records])
    access = [line for line in captured.err.splitlines() if "app.access" in line]
    assert len(access) >= len(sent), captured.err  # the access log did write, so the checks below mean something
    for secret in (KEY, SECOND_KEY, WRONG_KEY, KEY[:12], SECOND_KEY[-12:], WRONG_KEY[4:16]):
        assert secret not in logged
        assert secret not in scrape.get_data(as_text=True)
    for value in (str(body_value), str(query_value), text_value):
        assert value not in logged
    for line in access:
        assert "?" not in line and "api_key" not in line and "model=" not in line, line


# ==== rate limits ==============================================================================
@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter", "moving-window"])
def test_the_fourth_request_in_a_minute_gets_429_with_retry_after(make_app, strategy):
    client = make_app(RATE_LIMIT="3/minute", RATE_LIMIT_STRATEGY=strategy).test_client()
    for _ in range(3):
        assert client.post("/predict", json=RECORD).status_code == 200
    refused = client.post("/predict", json=RECORD)
    assert_problem(refused, 429)
    assert "3 per 1 minute" in refused.json["detail"]
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
    assert_problem(client.get("/models"), 429)  # one budget for every limited endpoint


def test_each_api_key_has_its_own_budget(make_app):
    client = make_app(API_KEYS=(KEY, SECOND_KEY), RATE_LIMIT="3/minute").test_client()
    for _ in range(3):
        assert client.post("/predict", json=RECORD, headers=bearer(KEY)).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, headers={"X-API-Key": KEY}), 429)  # the key, not the header
    for _ in range(3):
        assert client.post("/predict", json=RECORD, headers=bearer(SECOND_KEY)).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, headers=bearer(SECOND_KEY)), 429)


def test_guessed_keys_use_up_the_address_budget_not_the_keys(make_app):
    client = make_app(API_KEYS=(KEY,), RATE_LIMIT="3/minute").test_client()
    for _ in range(3):
        assert_problem(client.post("/predict", json=RECORD, headers=bearer(WRONG_KEY)), 401)
    for _ in range(2):  # no unlimited guessing from one address
        assert_problem(client.post("/predict", json=RECORD, headers=bearer(WRONG_KEY)), 429)
    for _ in range(3):
        assert client.post("/predict", json=RECORD, headers=bearer(KEY)).status_code == 200


def test_without_keys_the_client_address_is_the_identity(make_app):
    client = make_app(RATE_LIMIT="3/minute").test_client()
    first, second = {"REMOTE_ADDR": "10.0.0.1"}, {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(3):
        assert client.post("/predict", json=RECORD, environ_base=first).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, environ_base=first), 429)
    assert client.post("/predict", json=RECORD, environ_base=second).status_code == 200


def test_probes_are_never_limited(make_app):
    client = make_app(RATE_LIMIT="1/minute").test_client()
    assert client.post("/predict", json=RECORD).status_code == 200
    assert_problem(client.post("/predict", json=RECORD), 429)
    for _ in range(10):
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200


BAD_RATE_SETTINGS = [
    ("words", "RATE_LIMIT", "lots", "RATE_LIMIT must look like 100/second"),
    ("unknown-period", "RATE_LIMIT", "3/fortnight", "RATE_LIMIT must look like"),
    ("trailing-separator", "RATE_LIMIT", "3/minute;", "RATE_LIMIT must look like"),
    ("negative", "RATE_LIMIT", "-1/minute", "RATE_LIMIT must look like"),
    ("zero", "RATE_LIMIT", "0/minute", "RATE_LIMIT"),  # would refuse every limited request for ever
    ("unknown-strategy", "RATE_LIMIT_STRATEGY", "leaky-bucket", "RATE_LIMIT_STRATEGY must be one of fixed-window"),
]


@pytest.mark.parametrize("name, value, words", [c[1:] for c in BAD_RATE_SETTINGS], ids=[c[0] for c in BAD_RATE_SETTINGS])
def test_a_bad_rate_limit_setting_stops_startup_with_a_clear_message(make_app, monkeypatch, name, value, words):
    with pytest.raises(config.ConfigError, match=re.escape(words)):
        config.from_environment({"RATE_LIMIT": "3/minute", name: value})
    monkeypatch.setenv("RATE_LIMIT", "3/minute")
    monkeypatch.setenv(name, value)
    with pytest.raises(StartupError, match=re.escape(words)) as refused:
        make_app()
    assert "\n" not in str(refused.value)


# ==== metrics ==================================================================================
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
    assert client.post("/predict", json=RECORD).status_code == 200  # hot path
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


# ==== headers ==================================================================================
def api_responses(make_app):
    client = make_app(MAX_BATCH_ROWS=2).test_client()
    yield "health", client.get("/health")
    yield "hot-path-200", client.post("/predict", json=RECORD)
    yield "flask-path-200", client.post("/predict?model=pima-diabetes", json=RECORD)
    yield "get-predict-400", client.get("/predict")
    yield "422", client.post("/predict", json={})
    yield "413", client.post("/predict", json=[RECORD] * 3)
    yield "415", client.post("/predict", data="x", content_type="text/plain")
    yield "404", client.get("/nope")
    yield "405", client.delete("/predict")
    yield "models", client.get("/models")
    yield "openapi", client.get("/openapi.json")
    yield "metrics", client.get("/metrics")
    guarded = make_app(API_KEYS=(KEY,), RATE_LIMIT="1/minute").test_client()
    yield "gateway-401", guarded.post("/predict", json=RECORD)
    guarded.post("/predict", json=RECORD, headers=bearer(KEY))
    yield "gateway-429", guarded.post("/predict", json=RECORD, headers=bearer(KEY))


def test_every_api_response_carries_an_id_nosniff_no_store_and_a_csp(make_app):
    seen = 0
    for name, response in api_responses(make_app):
        seen += 1
        headers = response.headers
        assert GENERATED_ID.match(headers.get("X-Request-ID", "")), name
        for header, value in (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")):
            assert headers.getlist(header) == [value], (name, header, headers.getlist(header))
        (policy,) = headers.getlist("Content-Security-Policy")
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, name
        if response.mimetype == "application/problem+json":
            assert response.json["request_id"] == headers["X-Request-ID"], name
    assert seen == 14


@pytest.mark.parametrize("body, query", [(RECORD, ""), (RECORD, "?model=pima-diabetes"), ({}, ""), ({}, "?model=x")],
                         ids=["hot-path", "flask-path", "hot-path-error", "flask-path-error"])
def test_a_valid_request_id_is_echoed_and_an_invalid_one_replaced(make_app, body, query):
    client = make_app().test_client()
    for given, echoed in [("abc-123", True), ("Trace.id:42_x", True), ("a" * 128, True), ("bad id!", False),
                          ("a" * 129, False), ("<script>", False), ("", False)]:
        response = client.post(f"/predict{query}", json=body, headers={"X-Request-ID": given})
        returned = response.headers["X-Request-ID"]
        assert (returned == given) is echoed, (given, returned)
        if not echoed:
            assert GENERATED_ID.match(returned)
        if response.status_code != 200:
            assert response.json["request_id"] == returned


def directive(policy: str, name: str) -> str:
    for part in policy.split(";"):
        if part.strip().startswith(name + " "):
            return part.strip()
    return ""


def test_the_page_has_a_strict_csp_and_may_be_cached(make_app):
    response = make_app().test_client().get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    (policy,) = response.headers.getlist("Content-Security-Policy")
    scripts = directive(policy, "script-src")
    assert scripts == "script-src 'self'" and "'unsafe-inline'" not in scripts
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_uses_nothing_its_csp_forbids(make_app):
    html = make_app().test_client().get("/").get_data(as_text=True)
    assert re.findall(r"<script\b[^>]*>", html) and all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert not re.search(r"<script\b[^>]*>(?!\s*</script>)", html)  # no inline script body
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers
    assert not re.search(r"\sstyle\s*=", html) and "<style" not in html  # style-src 'self'
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing from outside


def test_the_docs_have_their_own_csp(make_app):
    client = make_app().test_client()
    docs = client.get("/docs/")
    assert docs.status_code == 200
    (policy,) = docs.headers.getlist("Content-Security-Policy")
    assert policy not in (client.get("/").headers["Content-Security-Policy"],
                          client.get("/health").headers["Content-Security-Policy"])
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self'" in directive(policy, "script-src")


def preflight(client, origin):
    return client.options("/predict", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "Content-Type, X-API-Key"})


def test_cors_is_off_by_default(make_app):
    client = make_app().test_client()
    response = client.post("/predict", json=RECORD, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight(client, ORIGIN).headers


def test_cors_answers_only_the_configured_origins(make_app):
    client = make_app(CORS_ORIGINS=(ORIGIN,)).test_client()
    allowed = client.post("/predict", json=RECORD, headers={"Origin": ORIGIN})
    assert allowed.status_code == 200 and allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Model-Version" in allowed.headers.get("Access-Control-Expose-Headers", "")
    checked = preflight(client, ORIGIN)
    assert checked.status_code == 200 and checked.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in checked.headers["Access-Control-Allow-Methods"]
    assert "x-api-key" in checked.headers["Access-Control-Allow-Headers"].lower()
    for other in ("https://evil.example", "https://app.example.evil", "http://app.example"):
        refused = client.post("/predict", json=RECORD, headers={"Origin": other})
        assert refused.status_code == 200 and "Access-Control-Allow-Origin" not in refused.headers
        assert "Access-Control-Allow-Origin" not in preflight(client, other).headers


@pytest.mark.parametrize("refusal", ["401", "429"])
def test_gateway_refusals_are_readable_by_an_allowed_origin(make_app, refusal):
    """A browser app on an allowed origin must be able to read a 401 or a 429 (and its Retry-After,
    which the CORS settings expose for exactly this), or it only sees an opaque network error."""
    if refusal == "401":
        client = make_app(CORS_ORIGINS=(ORIGIN,), API_KEYS=(KEY,)).test_client()
        response = client.post("/predict", json=RECORD, headers={"Origin": ORIGIN})
    else:
        client = make_app(CORS_ORIGINS=(ORIGIN,), RATE_LIMIT="1/minute").test_client()
        assert client.post("/predict", json=RECORD, headers={"Origin": ORIGIN}).status_code == 200
        response = client.post("/predict", json=RECORD, headers={"Origin": ORIGIN})
    assert_problem(response, int(refusal))
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN, dict(response.headers)
    if refusal == "429":
        assert "Retry-After" in response.headers.get("Access-Control-Expose-Headers", "")


# ==== the hot path answers exactly as Flask does ===============================================
MAX_ROWS = 20
SAME_ID = {"X-Request-ID": "same-request-id"}


@pytest.fixture(scope="module")
def twin_apps(models_dir):
    settings = {"TESTING": True, "MODELS_DIR": str(models_dir), "MAX_BATCH_ROWS": MAX_ROWS}
    return create_app({**settings, "HOT_PATH": True}), create_app({**settings, "HOT_PATH": False})


@pytest.fixture
def hot_calls(monkeypatch):
    """Every call of hotpath.answer and what it returned (None: handed back to Flask)."""
    calls: list = []
    original = hotpath.answer

    def counted(app, environ):
        result = original(app, environ)
        calls.append(result)
        return result

    monkeypatch.setattr(hotpath, "answer", counted)
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
def test_the_hot_path_answers_good_bodies_byte_for_byte_as_flask(twin_apps, hot_calls, payload, warns):
    hot, flask = both(twin_apps, as_json(payload))
    assert hot.status_code == flask.status_code == 200, flask.get_data(as_text=True)
    assert hot.data == flask.data
    for header in ("Content-Type", "X-Model-Version", "X-Request-ID"):
        assert hot.headers.get(header) == flask.headers.get(header), header
    assert len(hot_calls) == 1 and hot_calls[0] is not None  # the hot app answered on the hot path
    assert all(bool(p["warnings"]) is warns for p in hot.json["predictions"])


BAD_BODIES = [
    ("invalid-json", b'{"Glucose": 148,'),
    ("trailing-garbage", as_json(RECORD) + b"x"),
    ("unknown-field", as_json(with_(Insulin=80))),
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
def test_the_hot_path_answers_bad_bodies_exactly_as_flask(twin_apps, hot_calls, body):
    hot, flask = both(twin_apps, body)
    assert 400 <= flask.status_code < 500, flask.get_data(as_text=True)
    assert hot.status_code == flask.status_code
    assert hot.mimetype == flask.mimetype == "application/problem+json"
    hot_body, flask_body = hot.json, flask.json
    assert hot_body["request_id"] == flask_body["request_id"] == "same-request-id"
    assert hot.data == flask.data
    assert all(result is None for result in hot_calls)  # handed back to Flask, never answered half-way


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8"])
def test_json_with_a_charset_takes_the_hot_path(twin_apps, hot_calls, content_type):
    hot, flask = both(twin_apps, as_json(RECORD), content_type=content_type)
    assert hot.status_code == 200 and hot.data == flask.data
    assert len(hot_calls) == 1 and hot_calls[0] is not None


@pytest.mark.parametrize("path, payload, headers, name", [
    ("/predict?model=titanic", PASSENGER, {}, "titanic"),
    ("/predict?model=pima-diabetes&version=1", RECORD, {}, PIMA),
    ("/predict", RECORD, {"Origin": ORIGIN}, PIMA),
], ids=["query-model", "query-version", "origin-header"])
def test_queries_and_origins_go_to_flask_and_still_work(twin_apps, hot_calls, path, payload, headers, name):
    hot, flask = both(twin_apps, as_json(payload), path=path, headers=headers)
    assert hot.status_code == flask.status_code == 200, hot.get_data(as_text=True)
    assert hot.data == flask.data
    assert hot.json["model"]["name"] == name
    assert hot_calls == []


def test_the_flask_only_app_never_takes_the_hot_path(twin_apps, hot_calls):
    _, flask = twin_apps
    assert flask.test_client().post("/predict", json=RECORD).status_code == 200
    assert hot_calls == []


# ==== lifecycle: reload, pins, rollback ========================================================
@pytest.fixture(scope="module")
def second_version(models_dir, tmp_path_factory) -> Path:
    """A logistic-regression version 2 of the default model, trained once, beside a copy of version 1."""
    folder = tmp_path_factory.mktemp("two-versions")
    shutil.copytree(models_dir / PIMA / "1", folder / PIMA / "1")
    result = train(TrainingOptions(data=ROOT / "data" / "training.csv", test_data=ROOT / "data" / "test.csv",
                                   target="Outcome", name=PIMA, estimator="logreg", folds=3, models_dir=folder))
    assert result.artifact.version == 2
    return folder / PIMA / "2"


@pytest.fixture
def models_copy(models_dir, tmp_path) -> Path:
    """A private copy of the session's models (version 1 of the default model only, and titanic)."""
    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    return copy


def add_version_2(models_copy: Path, second_version: Path) -> Path:
    target = models_copy / PIMA / "2"
    shutil.copytree(second_version, target)
    return target


def served(client) -> tuple[int, str]:
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 200, response.get_data(as_text=True)
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json["default_model"]["version"] == response.json["model"]["version"]
    return response.json["model"]["version"], response.headers["X-Model-Version"]


def test_reload_picks_up_a_new_version(models_copy, second_version):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client) == (1, f"{PIMA}/1")
    add_version_2(models_copy, second_version)
    assert served(client) == (1, f"{PIMA}/1")  # nothing changes until a reload
    assert reload_models(app) is None
    assert served(client) == (2, f"{PIMA}/2")
    assert client.post("/predict?version=1", json=RECORD).json["model"]["version"] == 1


def test_a_pin_file_makes_reload_serve_the_pinned_version(models_copy, second_version):
    add_version_2(models_copy, second_version)
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client)[0] == 2
    artifacts.write_pin(models_copy, PIMA, 1)
    assert reload_models(app) is None
    assert served(client)[0] == 1
    assert client.get("/models").json["default"] == {"name": PIMA, "version": 1}
    artifacts.write_pin(models_copy, PIMA, None)
    assert reload_models(app) is None
    assert served(client)[0] == 2


def tampered_model(folder: Path, models: Path) -> str:
    with open(folder / artifacts.MODEL_FILE, "ab") as stream:
        stream.write(b"tampered")
    return "sha256"


def truncated_model(folder: Path, models: Path) -> str:
    path = folder / artifacts.MODEL_FILE
    path.write_bytes(path.read_bytes()[:1000])
    return "changed or truncated"


def deleted_metadata(folder: Path, models: Path) -> str:
    (folder / artifacts.METADATA_FILE).unlink()
    return "metadata.json is missing"


def garbage_pin(folder: Path, models: Path) -> str:
    (models / PIMA / artifacts.PIN_FILE).write_text("banana\n")
    return "should hold a version number"


def pin_to_a_missing_version(folder: Path, models: Path) -> str:
    artifacts.write_pin(models, PIMA, 7)
    return "has no version 7"


@pytest.mark.parametrize("damage", [tampered_model, truncated_model, deleted_metadata, garbage_pin,
                                    pin_to_a_missing_version])
def test_a_bad_new_state_is_refused_on_reload_and_the_old_version_keeps_serving(models_copy, second_version, damage):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()
    assert served(client)[0] == 1
    words = damage(add_version_2(models_copy, second_version), models_copy)
    reason = reload_models(app)
    assert reason is not None and words in reason
    assert served(client) == (1, f"{PIMA}/1")
    assert client.get("/ready").status_code == 200
    assert client.post("/predict", data=as_json(RECORD), content_type="application/json").status_code == 200


def manage(models: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "--models-dir", str(models), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_manage_lists_pins_rolls_back_and_unpins(models_copy, second_version, env_without_settings):
    add_version_2(models_copy, second_version)
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)})
    client = app.test_client()

    listed = manage(models_copy, env_without_settings, "versions")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{PIMA} 1", f"{PIMA} 2  (default)"]

    rolled = manage(models_copy, env_without_settings, "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert "pinned to version 1 (was 2)" in rolled.stdout
    assert artifacts.read_pin(models_copy, PIMA) == 1
    assert reload_models(app) is None and served(client)[0] == 1

    again = manage(models_copy, env_without_settings, "rollback")
    assert again.returncode != 0 and "is the oldest version; nothing to roll back to" in again.stderr
    assert artifacts.read_pin(models_copy, PIMA) == 1

    pinned = manage(models_copy, env_without_settings, "pin", PIMA, "2")
    assert pinned.returncode == 0 and artifacts.read_pin(models_copy, PIMA) == 2
    assert reload_models(app) is None and served(client)[0] == 2

    unpinned = manage(models_copy, env_without_settings, "unpin")
    assert unpinned.returncode == 0 and "newest version, 2" in unpinned.stdout
    assert artifacts.read_pin(models_copy, PIMA) is None
    assert reload_models(app) is None and served(client)[0] == 2


def pinned_to_1(models: Path) -> None:
    artifacts.write_pin(models, PIMA, 1)


def garbage_pin_file(models: Path) -> None:
    (models / PIMA / artifacts.PIN_FILE).write_text("two\n")


MANAGE_CASES = [
    # id, prepare a copy holding version 1 only, arguments, words in the error (None: succeeds), pin afterwards
    ("versions-marks-the-pin", pinned_to_1, ("versions",), None, 1),
    ("rollback-from-the-only-version", None, ("rollback",), "is the oldest version; nothing to roll back to", None),
    ("pin-a-missing-version", None, ("pin", PIMA, "9"), "has no version 9", None),
    ("unknown-model", None, ("versions", "no-such-model"), "no versions of 'no-such-model'", None),
    ("path-in-the-name", None, ("rollback", "../escape"), "invalid model name", None),
    ("garbage-pin-file", garbage_pin_file, ("rollback",), "should hold a version number", ...),
]


@pytest.mark.parametrize("prepare, args, error, pin", [c[1:] for c in MANAGE_CASES], ids=[c[0] for c in MANAGE_CASES])
def test_manage_refuses_what_it_cannot_do_with_a_message(models_dir, tmp_path, capsys, prepare, args, error, pin):
    """In process (manage.main), to keep the file fast; the subprocess test above covers the command line."""
    import manage

    copy = tmp_path / "models"
    shutil.copytree(models_dir / PIMA, copy / PIMA)
    if prepare:
        prepare(copy)
    if error is None:
        assert manage.main(["--models-dir", str(copy), *args]) == 0
        assert f"{PIMA} 1  (default, pinned)" in capsys.readouterr().out
    else:
        with pytest.raises(SystemExit) as refused:
            manage.main(["--models-dir", str(copy), *args])
        assert str(refused.value.code).startswith("error: ") and error in str(refused.value.code)
    if pin is not ...:
        assert artifacts.read_pin(copy, PIMA) == pin


def test_debug_mode_cannot_be_switched_on_from_the_environment(monkeypatch, models_dir):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app({"MODELS_DIR": str(models_dir)})
    assert app.debug is False
    response = app.test_client().post("/predict", data="{oops", content_type="application/json")
    assert response.status_code == 400 and "Traceback" not in response.get_data(as_text=True)
