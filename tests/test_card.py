"""The model card: made at training and import, stored and signed with the version, served as a page."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, log_loss, mean_absolute_error,
                             mean_squared_error, r2_score, roc_auc_score)

from app import create_app
from app.http.routes import prefers_html
from app.model import artifacts, bootstrap, card, signing
from app.model.importing import publish_model
from tests.conftest import PIMA, REGRESSOR
from tests.records import KEY

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
CLASSIFIER_PLOTS = {"confusion.svg", "roc.svg", "precision-recall.svg", "calibration.svg", "importance.svg"}
REGRESSOR_PLOTS = {"predicted-actual.svg", "residuals.svg", "importance.svg"}


def metadata_of(models_dir, name, version=1) -> dict:
    return json.loads((models_dir / name / str(version) / "metadata.json").read_text())


# ---- made at training -----------------------------------------------------------------------------
def test_training_stores_the_card_files_with_their_sha256_in_the_metadata(models_dir):
    metadata = metadata_of(models_dir, PIMA)
    listed = metadata["files"]
    assert set(listed) == {f"card/{name}" for name in CLASSIFIER_PLOTS | {"README.md"}}
    for relative, digest in listed.items():
        assert artifacts.sha256_file(models_dir / PIMA / "1" / relative) == digest
    assert {p["file"] for p in metadata["card"]["plots"]} == CLASSIFIER_PLOTS


def test_a_classifier_card_has_metrics_with_intervals_around_them(models_dir):
    summary = metadata_of(models_dir, PIMA)["card"]
    by_name = {m["name"]: m for m in summary["metrics"]}
    assert set(by_name) == {"accuracy", "balanced accuracy", "ROC AUC", "log loss"}
    for metric in by_name.values():
        assert metric["low"] <= metric["value"] <= metric["high"], metric
        assert metric["high"] - metric["low"] > 0.005  # a few hundred rows cannot pin a metric down
    assert by_name["accuracy"]["value"] == metadata_of(models_dir, PIMA)["test_metrics"]["accuracy"]


def test_a_regressor_card_has_residuals_and_predicted_against_actual(models_dir):
    summary = metadata_of(models_dir, REGRESSOR)["card"]
    assert {p["file"] for p in summary["plots"]} == REGRESSOR_PLOTS
    assert [m["name"] for m in summary["metrics"]] == ["RMSE", "MAE", "R²"]


def test_permutation_importance_ranks_the_features_the_model_uses_first(models_dir):
    importance = metadata_of(models_dir, PIMA)["card"]["importance"]
    assert importance[0]["feature"] == "Glucose"  # the Pima data's strongest signal, by far
    assert [f["mean"] for f in importance] == sorted((f["mean"] for f in importance), reverse=True)


def test_the_plots_are_svg_with_text_as_text_and_the_card_is_skops_markdown(models_dir):
    folder = models_dir / PIMA / "1" / "card"
    roc = (folder / "roc.svg").read_text()
    assert roc.lstrip().startswith("<?xml") and "<svg" in roc and "false positive rate" in roc
    assert "diabetes" in (folder / "confusion.svg").read_text()  # the classes' display names
    markdown = (folder / "README.md").read_text()
    for section in ("# Model description", "## Intended uses & limitations", "## Training Procedure",
                    "## Evaluation Results", "# How to Get Started with the Model"):
        assert section in markdown
    assert "![ROC curve](roc.svg)" in markdown and "95% CI" in markdown
    assert "[More Information Needed]" not in markdown


def test_a_card_that_cannot_be_drawn_never_costs_the_version(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(card, "build", broken)
    said = []
    made = card.build_safely(None, "classification", [0, 1], None, {}, said.append)
    assert made.files == {} and "no fonts" in made.summary["note"] and "no fonts" in said[0]


# ---- the bootstrap ------------------------------------------------------------------------------
def test_bootstrap_metrics_equal_scikit_learn_on_the_rows_themselves():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 300)
    scores = np.clip(truth * 0.3 + rng.random(300) * 0.7, 0, 1)
    scores[:40] = 0.5  # ties count half in the AUC
    probabilities = np.column_stack([1 - scores, scores])
    predicted = (scores > 0.5).astype(int)
    by_name = {m["name"]: m["value"] for m in bootstrap.classification_intervals(truth, predicted, probabilities, 2)}
    assert by_name["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-4)
    assert by_name["balanced accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted), abs=1e-4)
    assert by_name["ROC AUC"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-4)
    assert by_name["log loss"] == pytest.approx(log_loss(truth, probabilities), abs=1e-4)
    values = rng.normal(size=200)
    guesses = values + rng.normal(scale=0.5, size=200)
    by_name = {m["name"]: m["value"] for m in bootstrap.regression_intervals(values, guesses)}
    assert by_name["RMSE"] == pytest.approx(np.sqrt(mean_squared_error(values, guesses)), rel=1e-3)
    assert by_name["MAE"] == pytest.approx(mean_absolute_error(values, guesses), rel=1e-3)
    assert by_name["R²"] == pytest.approx(r2_score(values, guesses), rel=1e-3)


def test_a_bootstrap_round_is_the_metric_of_the_rows_it_drew():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 50)
    scores = rng.random(50)
    block = next(bootstrap.counts(50, rounds=3, seed=5))
    assert block.shape == (3, 50) and (block.sum(axis=1) == 50).all()
    drawn = np.repeat(np.arange(50), block[0].astype(int))
    measure = bootstrap._auc_measure(truth == 1, scores)
    assert measure(block[:1])[0] == pytest.approx(roc_auc_score(truth[drawn], scores[drawn]))


def test_bootstrap_intervals_narrow_as_rows_grow():
    def width(rows: int) -> float:
        rng = np.random.default_rng(3)
        truth = rng.integers(0, 2, rows)
        predicted = np.where(rng.random(rows) < 0.8, truth, 1 - truth)
        accuracy = bootstrap.classification_intervals(truth, predicted, None, 2)[0]
        return accuracy["high"] - accuracy["low"]

    assert width(4000) < width(250) / 3


# ---- made at import -------------------------------------------------------------------------------
def test_an_import_with_a_sample_and_its_target_gets_a_card(tmp_path, test_rows, models_dir):
    model = artifacts.load(models_dir / PIMA / "1").model
    made = publish_model(model, "notebook", tmp_path, sample=test_rows, target="Outcome")
    summary = made.metadata["card"]
    assert summary["evaluated_on"].startswith("the import sample (332 rows")
    assert {p["file"] for p in summary["plots"]} == CLASSIFIER_PLOTS
    assert (made.path / "card" / "roc.svg").is_file()


def test_an_import_without_a_target_gets_a_card_that_says_why_it_has_no_numbers(tmp_path, models_dir):
    model = artifacts.load(models_dir / PIMA / "1").model
    made = publish_model(model, "notebook", tmp_path)
    assert made.metadata["card"]["metrics"] == [] and "--target" in made.metadata["card"]["note"]
    assert set(made.metadata["files"]) == {"card/README.md"}


# ---- signed and verified ------------------------------------------------------------------------------
def test_the_signature_covers_the_card_and_a_changed_plot_is_refused(tmp_path, models_dir):
    private, public = tmp_path / "key.pem", tmp_path / "key.pub"
    signing.generate_key_pair(private, public)
    models = tmp_path / "models"
    model = artifacts.load(models_dir / PIMA / "1").model
    publish_model(model, PIMA, models, sample=pd.read_csv("data/test.csv"), target="Outcome",
                  signing_key=signing.load_private_key(private))
    client = create_app({"TESTING": True, "MODELS_DIR": str(models), "VERIFY_KEYS_FILE": str(public)}).test_client()
    assert client.get(f"/models/{PIMA}/1/card/roc.svg").status_code == 200
    (models / PIMA / "1" / "card" / "roc.svg").write_text("<svg><script>alert(1)</script></svg>")
    changed = client.get(f"/models/{PIMA}/1/card/roc.svg")
    assert changed.status_code == 404 and "changed after the version was made" in changed.json["detail"]


# ---- served ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("accept, html", [
    (BROWSER, True),
    ("text/html", True),
    ("*/*", False),  # curl, requests
    (None, False),
    ("application/json", False),
    ("application/json, text/html", False),  # a tie: JSON
    ("text/html;q=0.5, application/json", False),
    ("text/html, application/json;q=0.9", True),
    ("text/html;q=0", False),
    ("text/html;q=nonsense", False),
])
def test_an_accept_header_asks_for_the_page_only_when_it_ranks_html_first(accept, html):
    assert prefers_html(accept) is html


def test_a_browser_gets_the_card_page_and_an_api_client_the_json(client):
    page = client.get(f"/models/{PIMA}/1", headers={"Accept": BROWSER})
    assert page.status_code == 200 and page.mimetype == "text/html" and page.headers["Vary"] == "Accept"
    text = page.get_data(as_text=True)
    for expected in ('data-plot="roc.svg"', f'src="/models/{PIMA}/1/card/roc.svg"', "95% interval", "ROC AUC",
                     "no diabetes", f'href="/?model={PIMA}&amp;version=1"'):
        assert expected in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]  # the page's headers, not the API's
    answer = client.get(f"/models/{PIMA}/1", headers={"Accept": "*/*"})
    assert answer.mimetype == "application/json" and answer.json["card"]["markdown"] == f"/models/{PIMA}/1/card/README.md"
    assert {p["url"] for p in answer.json["card"]["plots"]} >= {f"/models/{PIMA}/1/card/roc.svg"}


def test_the_card_page_and_its_files_are_open_but_the_json_needs_the_key(make_app):
    client = make_app(API_KEYS=(KEY,)).test_client()
    assert client.get(f"/models/{PIMA}/1", headers={"Accept": BROWSER}).status_code == 200
    assert client.get(f"/models/{PIMA}/1/card/roc.svg").status_code == 200
    assert client.get(f"/models/{PIMA}/1", headers={"Accept": "*/*"}).status_code == 401
    assert client.get(f"/models/{PIMA}/1", headers={"Accept": "*/*", "X-API-Key": KEY}).status_code == 200


@pytest.mark.parametrize("path, status", [
    (f"/models/{PIMA}/1/card/roc.svg", 200),
    (f"/models/{PIMA}/1/card/README.md", 200),
    (f"/models/{PIMA}/1/card/nothing.svg", 404),  # not one of the version's files
    (f"/models/{PIMA}/1/card/model.skops", 404),  # only the card's kinds of files
    (f"/models/{PIMA}/1/card/..%2Fmetadata.json", 404),
    (f"/models/{PIMA}/9/card/roc.svg", 404),
    ("/models/nothing/1/card/roc.svg", 404),
])
def test_card_files_are_served_by_name_and_nothing_else(client, path, status):
    answer = client.get(path)
    assert answer.status_code == status, answer.get_data(as_text=True)[:300]
    if status == 200:
        assert answer.mimetype in ("image/svg+xml", "text/markdown")
    else:
        assert answer.mimetype == "application/problem+json"


def test_a_version_uploaded_without_its_plots_is_served_with_a_card_that_says_so(models_copy):
    shutil.rmtree(models_copy / PIMA / "1" / "card")
    client = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)}).test_client()
    page = client.get(f"/models/{PIMA}/1", headers={"Accept": BROWSER}).get_data(as_text=True)
    assert "was not uploaded with the version" in page and "ROC AUC" in page


def test_a_version_made_before_cards_gets_a_page_that_says_so(models_copy):
    path = models_copy / PIMA / "1" / "metadata.json"
    metadata = json.loads(path.read_text())
    del metadata["card"], metadata["files"]
    path.write_text(json.dumps(metadata))
    client = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)}).test_client()
    page = client.get(f"/models/{PIMA}/1", headers={"Accept": BROWSER})
    assert page.status_code == 200 and 'id="card-missing"' in page.get_data(as_text=True)
    assert client.get(f"/models/{PIMA}/1").json["card"] is None


def test_the_prediction_page_links_to_the_card(client):
    page = client.get(f"/?model={PIMA}&version=1").get_data(as_text=True)
    assert f'href="/models/{PIMA}/1"' in page and "model card" in page


def test_r2_intervals_stay_finite_when_a_round_draws_one_value_every_time():
    r2 = bootstrap.regression_intervals(np.array([100.0, 101.0, 102.5]), np.array([100.5, 100.0, 102.0]))[2]
    assert r2["low"] is None or r2["low"] > -1e3, r2  # not -4e12 from a variance that is 0 up to rounding


def test_drawing_a_card_leaves_the_callers_matplotlib_backend_alone(models_dir):
    import matplotlib

    matplotlib.use("svg")
    model = artifacts.load(models_dir / REGRESSOR / "1").model
    card.build(model, "regression", [], None, {"schema": {"features": []}})
    card._svg(card._figure()[0])
    assert matplotlib.get_backend() == "svg"


def test_an_open_card_of_a_version_that_failed_to_load_does_not_say_why(models_copy):
    with open(models_copy / "titanic" / "1" / "model.skops", "ab") as stream:
        stream.write(b"tampered")
    client = create_app({"TESTING": True, "MODELS_DIR": str(models_copy), "API_KEYS": (KEY,)}).test_client()
    for answer in (client.get("/models/titanic/1", headers={"Accept": BROWSER}),
                   client.get("/models/titanic/1/card/README.md")):
        assert answer.status_code == 503 and str(models_copy) not in answer.json["detail"]
        assert "sha256" not in answer.json["detail"]


def test_a_card_without_its_markdown_links_to_none(models_copy):
    path = models_copy / PIMA / "1" / "metadata.json"
    metadata = json.loads(path.read_text())
    del metadata["files"]["card/README.md"]
    path.write_text(json.dumps(metadata))
    client = create_app({"TESTING": True, "MODELS_DIR": str(models_copy)}).test_client()
    assert 'id="card-markdown"' not in client.get(f"/models/{PIMA}/1", headers={"Accept": BROWSER}).get_data(as_text=True)
    assert client.get(f"/models/{PIMA}/1").json["card"]["markdown"] is None
    assert 'id="card-markdown"' in client.get(f"/models/{REGRESSOR}/1", headers={"Accept": BROWSER}).get_data(as_text=True)
