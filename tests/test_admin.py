"""The admin API in process: who may call it, upload, promote, roll back, delete, audit lines."""
from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from app import create_app
from app.model import artifacts
from app.model.lifecycle import HISTORY_FILE
from tests.conftest import PIMA
from tests.records import ADMIN_KEY, KEY, RECORD, WRONG_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ADMIN_ROUTES = [("post", f"/models/{PIMA}/versions"), ("post", f"/models/{PIMA}/promote"),
                ("post", f"/models/{PIMA}/rollback"), ("delete", f"/models/{PIMA}/versions/1"),
                ("post", f"/models/{PIMA}/train"), ("get", "/jobs/0123456789abcdef0123456789abcdef")]


@pytest.fixture
def admin(models_copy):
    """A client of an app with admin and prediction keys, over a private copy of the models."""
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,),
                      "API_KEYS": (KEY,)})
    return app.test_client()


def parts(folder: Path, **replaced: bytes) -> dict:
    """A version folder's files as the upload's multipart parts; ``replaced`` swaps a part's bytes."""
    files = {"model": artifacts.MODEL_FILE, "metadata": artifacts.METADATA_FILE}
    return {part: (io.BytesIO(replaced.get(part, (folder / name).read_bytes())), name) for part, name in files.items()}


def upload(client, folder: Path, query: str = "", **replaced: bytes):
    return client.post(f"/models/{PIMA}/versions{query}", headers=ADMIN, data=parts(folder, **replaced),
                       content_type="multipart/form-data")


def served_version(client) -> int:
    answer = client.post("/predict", headers=ADMIN, json=RECORD)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json["model"]["version"]


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
def test_admin_routes_do_not_exist_without_admin_keys(make_app, method, path):
    answer = getattr(make_app().test_client(), method)(path, headers=ADMIN)
    assert answer.status_code == 404
    assert "ADMIN_API_KEYS" in answer.json["detail"]


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
@pytest.mark.parametrize("headers, status", [
    ({"Authorization": f"Bearer {KEY}"}, 403),
    ({"X-API-Key": KEY}, 403),
    ({}, 401),
    ({"Authorization": f"Bearer {WRONG_KEY}"}, 401),
    ({"X-API-Key": ""}, 401),
])
def test_admin_routes_refuse_prediction_keys_and_strangers(admin, method, path, headers, status):
    answer = getattr(admin, method)(path, headers=headers)
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_an_admin_key_may_also_predict_and_read_models(admin):
    assert served_version(admin) == 1
    assert admin.get("/models", headers=ADMIN).status_code == 200


def test_admin_routes_are_rate_limited_like_the_rest(models_copy):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,),
                      "RATE_LIMIT": "2/minute"})
    client = app.test_client()
    statuses = [client.post(f"/models/{PIMA}/rollback", headers=ADMIN).status_code for _ in range(3)]
    assert statuses == [409, 409, 429]


def test_an_upload_is_stored_as_the_next_version_and_not_served_until_promoted(admin, models_copy):
    answer = upload(admin, models_copy / PIMA / "1")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.json["version"] == 2 and answer.json["promoted"] is False
    assert answer.headers["Location"] == f"/models/{PIMA}/2"
    assert answer.json["default_version"] == 1 and answer.json["reload"] == "done"
    assert served_version(admin) == 1
    assert admin.post("/predict?version=2", headers=ADMIN, json=RECORD).json["model"]["version"] == 2
    assert artifacts.read_pin(models_copy, PIMA) == 1  # held, so that a restart does not serve it either
    promoted = admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 2})
    assert promoted.status_code == 200, promoted.get_data(as_text=True)
    assert promoted.json["previous"] == 1 and promoted.json["version"] == 2
    assert served_version(admin) == 2


def test_an_upload_asking_for_it_is_served_at_once(admin, models_copy):
    answer = upload(admin, models_copy / PIMA / "1", "?promote=true")
    assert answer.status_code == 201 and answer.json["promoted"] is True
    assert served_version(admin) == 2


def test_rollback_serves_the_version_served_before_the_promotion(admin, models_copy):
    for _ in range(2):
        assert upload(admin, models_copy / PIMA / "1").status_code == 201  # versions 2 and 3
    assert admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 3}).status_code == 200
    rolled = admin.post(f"/models/{PIMA}/rollback", headers=ADMIN)
    assert rolled.status_code == 200 and rolled.json["version"] == 1 and rolled.json["previous"] == 3
    assert served_version(admin) == 1  # not 2, which was never served
    again = admin.post(f"/models/{PIMA}/rollback", headers=ADMIN)
    assert again.status_code == 409 and "nothing to roll back to" in again.json["detail"]


def test_delete_removes_a_version_that_is_not_served_and_refuses_the_served_one(admin, models_copy):
    assert upload(admin, models_copy / PIMA / "1").status_code == 201
    refused = admin.delete(f"/models/{PIMA}/versions/1", headers=ADMIN)
    assert refused.status_code == 409 and "served by default" in refused.json["detail"]
    deleted = admin.delete(f"/models/{PIMA}/versions/2", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json["action"] == "delete"
    assert not (models_copy / PIMA / "2").exists()
    assert admin.post("/predict?version=2", headers=ADMIN, json=RECORD).status_code == 404
    assert admin.delete(f"/models/{PIMA}/versions/2", headers=ADMIN).status_code == 404


def garbage_model(folder: Path) -> dict:
    return {"model": b"not a skops file"}


def other_scikit_learn(folder: Path) -> dict:
    metadata = json.loads((folder / artifacts.METADATA_FILE).read_text())
    metadata["versions"]["scikit-learn"] = "0.24.2"
    return {"metadata": json.dumps(metadata).encode(), "model": b"not a skops file"}


def metadata_not_json(folder: Path) -> dict:
    return {"metadata": b"{not json"}


def schema_unlike_the_model(folder: Path) -> dict:
    metadata = json.loads((folder / artifacts.METADATA_FILE).read_text())
    metadata["schema"]["features"][0]["name"] = "Pregnancy"
    return {"metadata": json.dumps(metadata).encode()}


def class_names_of_no_class(folder: Path) -> dict:
    metadata = json.loads((folder / artifacts.METADATA_FILE).read_text())
    metadata["class_names"] = {"7": "seven"}
    return {"metadata": json.dumps(metadata).encode()}


@pytest.mark.parametrize("spoil, fields", [
    (garbage_model, ["model"]),
    (class_names_of_no_class, ["model"]),
    (other_scikit_learn, ["metadata", "model"]),  # every problem, not just the first
    (metadata_not_json, ["metadata"]),
    (schema_unlike_the_model, ["model"]),
])
def test_an_upload_the_server_would_not_load_is_refused_with_every_problem(admin, models_copy, spoil, fields):
    before = sorted(p.name for p in (models_copy / PIMA).iterdir())
    answer = upload(admin, models_copy / PIMA / "1", **spoil(models_copy / PIMA / "1"))
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.json["type"].endswith("/invalid-artifact")
    assert [e["field"] for e in answer.json["errors"]] == fields
    assert ".upload-" not in json.dumps(answer.json)  # the server's staging path is not shown
    assert sorted(p.name for p in (models_copy / PIMA).iterdir()) == before  # nothing kept, nothing pinned


@pytest.mark.parametrize("body, content_type, status, field", [
    ({"model": (io.BytesIO(b"x"), "m")}, "multipart/form-data", 422, "metadata"),
    ({"model": (io.BytesIO(b"x"), "m"), "extra": (io.BytesIO(b"x"), "e")}, "multipart/form-data", 422, "extra"),
    (b'{"model": 1}', "application/json", 415, None),
])
def test_an_upload_that_is_not_a_version_is_refused(admin, models_copy, body, content_type, status, field):
    answer = admin.post(f"/models/{PIMA}/versions", headers=ADMIN, data=body, content_type=content_type)
    assert answer.status_code == status, answer.get_data(as_text=True)
    if field:
        assert field in [e["field"] for e in answer.json["errors"]]
    assert artifacts.list_versions(models_copy, PIMA) == [1]


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(models_copy):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,),
                      "MAX_UPLOAD_LENGTH": 1000})
    answer = upload(app.test_client(), models_copy / PIMA / "1")
    assert answer.status_code == 413 and "MAX_UPLOAD_LENGTH" in answer.json["detail"]
    assert artifacts.list_versions(models_copy, PIMA) == [1]


def test_a_bad_model_name_is_a_400(admin):
    assert admin.post("/models/Bad Name!/promote", headers=ADMIN, json={"version": 1}).status_code == 400


@pytest.mark.parametrize("body", [{}, {"version": "2"}, {"version": 0}, {"version": True}, [2], None])
def test_promote_needs_a_version_number(admin, body):
    answer = admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json=body)
    assert answer.status_code == 422 and answer.json["errors"][0]["field"] == "version"


def test_promote_refuses_a_version_that_does_not_load(admin, models_copy):
    broken = models_copy / PIMA / "2"
    shutil.copytree(models_copy / PIMA / "1", broken)
    (broken / artifacts.MODEL_FILE).write_bytes(b"tampered")
    answer = admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 2})
    assert answer.status_code == 409 and "sha256" in answer.json["detail"]
    assert served_version(admin) == 1


def test_promote_refuses_the_default_model_pinned_by_model_version(models_copy):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,),
                      "MODEL_VERSION": 1})
    answer = app.test_client().post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 1})
    assert answer.status_code == 409 and "MODEL_VERSION" in answer.json["detail"]


def test_every_change_leaves_one_audit_line_with_the_key_id_and_never_the_key(admin, models_copy, caplog):
    from app.gateway.auth import key_id

    with caplog.at_level(logging.INFO, logger="app.audit"):
        upload(admin, models_copy / PIMA / "1")
        admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 2})
        admin.post(f"/models/{PIMA}/rollback", headers=ADMIN)
        admin.delete(f"/models/{PIMA}/versions/2", headers=ADMIN)
        admin.delete(f"/models/{PIMA}/versions/1", headers=ADMIN)  # refused: no change, no line
    lines = [r.getMessage() for r in caplog.records if r.name == "app.audit"]
    assert [line.split("action=")[1].split()[0] for line in lines] == ["upload", "promote", "rollback", "delete"]
    assert all(f"key={key_id(ADMIN_KEY)}" in line and ADMIN_KEY not in line for line in lines)
    history = [json.loads(line) for line in (models_copy / PIMA / HISTORY_FILE).read_text().splitlines()]
    assert [h["action"] for h in history] == ["publish", "promote", "rollback", "delete"]


def test_the_openapi_document_has_the_admin_api_only_when_it_is_on(admin, client):
    assert "/models/{name}/promote" in admin.get("/openapi.json").json["paths"]
    assert "/models/{name}/promote" not in client.get("/openapi.json").json["paths"]


def test_an_upload_that_asks_for_promotion_against_model_version_stores_nothing(models_copy):
    app = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "ADMIN_API_KEYS": (ADMIN_KEY,),
                      "MODEL_VERSION": 1})
    answer = upload(app.test_client(), models_copy / PIMA / "1", "?promote=true")
    assert answer.status_code == 409 and "MODEL_VERSION" in answer.json["detail"]
    assert artifacts.list_versions(models_copy, PIMA) == [1]
    assert not (models_copy / PIMA / HISTORY_FILE).exists()


def test_a_broken_pin_file_is_a_conflict_that_a_promotion_repairs(admin, models_copy):
    (models_copy / PIMA / artifacts.PIN_FILE).write_text("garbage\n")
    refused = upload(admin, models_copy / PIMA / "1")
    assert refused.status_code == 409 and "promote a version" in refused.json["detail"]
    repaired = admin.post(f"/models/{PIMA}/promote", headers=ADMIN, json={"version": 1})
    assert repaired.status_code == 200 and repaired.json["previous"] is None
    assert artifacts.read_pin(models_copy, PIMA) == 1


def test_the_first_version_of_a_new_model_is_its_default_and_a_refused_one_leaves_no_trace(admin, models_copy):
    refused = admin.post("/models/newcomer/versions", headers=ADMIN, data=parts(models_copy / PIMA / "1",
                                                                                model=b"not a model"),
                         content_type="multipart/form-data")
    assert refused.status_code == 422 and not (models_copy / "newcomer").exists()
    stored = admin.post("/models/newcomer/versions", headers=ADMIN, data=parts(models_copy / PIMA / "1"),
                        content_type="multipart/form-data")
    assert stored.status_code == 201 and stored.json["version"] == 1
    assert stored.json["promoted"] is True and stored.json["default_version"] == 1
    answer = admin.post("/predict?model=newcomer", headers=ADMIN, json=RECORD)
    assert answer.status_code == 200 and answer.json["model"] == {"name": "newcomer", "version": 1}


@pytest.mark.parametrize("query, field", [("?promte=true", "promte"), ("?promote=maybe", "promote")])
def test_an_upload_with_an_unknown_or_bad_option_is_refused(admin, models_copy, query, field):
    answer = upload(admin, models_copy / PIMA / "1", query)
    assert answer.status_code == 422 and [e["field"] for e in answer.json["errors"]] == [field]
    assert artifacts.list_versions(models_copy, PIMA) == [1]


def test_a_deleted_version_number_is_never_given_to_another_version(admin, models_copy):
    assert upload(admin, models_copy / PIMA / "1").json["version"] == 2
    assert admin.delete(f"/models/{PIMA}/versions/2", headers=ADMIN).status_code == 200
    again = upload(admin, models_copy / PIMA / "1")
    assert again.status_code == 201 and again.json["version"] == 3


def test_an_upload_carries_the_card_files_and_refuses_a_changed_or_unlisted_one(admin, models_copy):
    folder = models_copy / PIMA / "1"
    card = {relative: (io.BytesIO((folder / relative).read_bytes()), relative.split("/")[1])
            for relative in json.loads((folder / artifacts.METADATA_FILE).read_text())["files"]}
    stored = admin.post(f"/models/{PIMA}/versions", headers=ADMIN, data={**parts(folder), **card},
                        content_type="multipart/form-data")
    assert stored.status_code == 201, stored.get_data(as_text=True)
    version = stored.json["version"]
    assert (models_copy / PIMA / str(version) / "card" / "roc.svg").read_bytes() == (folder / "card" / "roc.svg").read_bytes()
    spoiled = {**parts(folder), "card/roc.svg": (io.BytesIO(b"<svg/>"), "roc.svg"),
               "card/extra.svg": (io.BytesIO(b"<svg/>"), "extra.svg")}
    refused = admin.post(f"/models/{PIMA}/versions", headers=ADMIN, data=spoiled, content_type="multipart/form-data")
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json["errors"]} == {"card/roc.svg", "card/extra.svg"}
    assert artifacts.list_versions(models_copy, PIMA) == [1, version]
