"""Security headers and request ids on every answer: API, page, docs, the direct path and refusals."""
from __future__ import annotations

import re

import pytest

from tests.checks import bearer
from tests.records import KEY, RECORD

GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def api_responses(make_app):
    client = make_app(MAX_BATCH_ROWS=2).test_client()
    yield "health", client.get("/health")
    yield "direct-path-200", client.post("/predict", json=RECORD)
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
                         ids=["direct-path", "flask-path", "direct-path-error", "flask-path-error"])
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
