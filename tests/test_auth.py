"""API keys: which endpoints need one, how a key is presented, and keys that stop startup."""
from __future__ import annotations

import pytest

from app import StartupError
from tests.checks import assert_problem, bearer
from tests.records import KEY, RECORD, SECOND_KEY, WRONG_KEY


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
