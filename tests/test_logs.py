"""Logs: keys, request bodies and query strings never reach any log."""
from __future__ import annotations

import logging

import pytest

from tests.checks import bearer
from tests.records import KEY, RECORD, SECOND_KEY, WRONG_KEY, with_


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
