"""Rate limits in process: per key or address, every strategy, probes exempt, bad settings refused."""
from __future__ import annotations

import re

import pytest

from app import StartupError, config
from tests.checks import assert_problem, bearer
from tests.records import KEY, RECORD, SECOND_KEY, WRONG_KEY


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


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(make_app):
    client = make_app(RATE_LIMIT="2/minute", TRUSTED_PROXIES=1).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.9"}
    first, second = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "198.51.100.2, 203.0.113.7"}
    for _ in range(2):
        assert client.post("/predict", json=RECORD, environ_base=proxy, headers=first).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, environ_base=proxy, headers=first), 429)
    # the last hop is what the trusted proxy saw; what the client wrote before it is not trusted
    assert client.post("/predict", json=RECORD, environ_base=proxy, headers=second).status_code == 200


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(make_app):
    client = make_app(RATE_LIMIT="2/minute").test_client()
    for forged in ("203.0.113.1", "203.0.113.2"):
        assert client.post("/predict", json=RECORD, headers={"X-Forwarded-For": forged}).status_code == 200
    assert_problem(client.post("/predict", json=RECORD, headers={"X-Forwarded-For": "203.0.113.3"}), 429)


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
