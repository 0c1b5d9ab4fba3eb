"""CORS: off by default, only the configured origins, and readable refusals."""
from __future__ import annotations

import pytest

from tests.checks import assert_problem
from tests.records import KEY, ORIGIN, RECORD


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
