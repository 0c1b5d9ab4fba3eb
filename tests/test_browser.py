"""The browser page and the API docs in real headless Chromium, driven by Playwright."""
from __future__ import annotations

import time

import pytest
import requests

from tests import server
from tests.conftest import REGRESSOR
from tests.records import PATIENT, RECORD
from tests.tools import ROOT, apt_install

pytestmark = pytest.mark.integration
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    executable = apt_install("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def base_url(models_dir, tmp_path_factory):
    with server.running(models_dir, tmp_path_factory.mktemp("browser") / "server.log") as url:
        yield url


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.foreign_requests = []
    page.on("request", lambda r: r.url.startswith(base_url) or page.foreign_requests.append(r.url))
    page.csp_violations = []
    page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_violations.append(m.text))
    yield page
    context.close()


def fill(page, record):
    for name, value in record.items():
        if page.get_attribute(f"#f-{name}", "data-kind") == "category":
            page.select_option(f"#f-{name}", "" if value is None else str(value))
        else:
            page.fill(f"#f-{name}", "" if value is None else str(value))


def test_page_predicts_what_the_api_predicts_and_shows_the_model(page, base_url):
    page.goto(base_url + "/")
    assert page.text_content("h1") == "pima-diabetes"
    assert page.text_content("#model-version") == "1"
    assert page.text_content("#model-accuracy").endswith("%")
    assert "(mg/dL)" in page.text_content("label[for=f-Glucose]")
    fill(page, RECORD)
    page.click("#predict-button")
    page.wait_for_selector("#result:not([hidden])")
    expected = requests.post(f"{base_url}/predict", json=RECORD, timeout=10).json()["predictions"][0]
    names = {"0": "no diabetes", "1": "diabetes"}  # data/columns.json: the API answers 0 or 1, people read names
    assert page.text_content("#result-label") == names[str(expected["label"])]
    assert [b.text_content() for b in page.query_selector_all(".bar > span:first-child")] == list(names.values())
    shown = page.text_content(f".bar[data-label='{expected['label']}'] .probability")
    assert shown == f"{expected['probabilities'][str(expected['label'])] * 100:.1f}%"
    assert page.text_content("#result-model") == "pima-diabetes version 1"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-page.png"), full_page=True)
    assert page.foreign_requests == []
    assert page.csp_violations == []


def test_page_shows_errors_next_to_the_field(page, base_url):
    page.goto(base_url + "/")
    fill(page, {**RECORD, "Glucose": None, "BMI": None})
    page.click("#predict-button")
    error = page.wait_for_selector("[data-field=Glucose] .error:not(:empty)")
    assert "trained without gaps" in error.text_content()
    assert page.text_content("[data-field=BMI] .error") == ""  # BMI may be missing
    assert page.is_hidden("#result")


def test_page_flags_values_outside_the_training_range(page, base_url):
    page.goto(base_url + "/")
    fill(page, {**RECORD, "Age": 95})
    page.click("#predict-button")
    page.wait_for_selector("#result:not([hidden])")
    assert "Age=95 is outside the range seen in training" in page.text_content("#result-warnings")


def test_swagger_ui_renders_every_operation_offline(page, base_url):
    page.goto(base_url + "/docs/")
    page.wait_for_selector(".opblock-summary-path")
    paths = {element.text_content().replace("\u200b", "") for element in page.query_selector_all(".opblock-summary-path")}
    assert {"/predict", "/models/{name}", "/health", "/ready", "/invocations"} <= paths
    assert page.foreign_requests == []
    assert page.csp_violations == []


def test_with_api_keys_on_the_page_asks_for_a_key_and_sends_it(browser, models_dir, tmp_path):
    key = "browser-test-key-0123456789"
    with server.running(models_dir, tmp_path / "server.log", API_KEYS=key) as url:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(url + "/")
            fill(page, RECORD)
            page.fill("#api-key", "not-the-right-key-at-all")
            page.click("#predict-button")
            page.wait_for_selector("#form-error:not(:empty)")
            assert "API key is not valid" in page.text_content("#form-error")
            page.fill("#api-key", key)
            page.click("#predict-button")
            page.wait_for_selector("#result:not([hidden])")
            assert page.text_content("#result-model") == "pima-diabetes version 1"
        finally:
            context.close()
    assert key not in (tmp_path / "server.log").read_text()


def test_page_shows_a_regressors_value_against_the_training_range(browser, models_dir, tmp_path):
    with server.running(models_dir, tmp_path / "server.log", DEFAULT_MODEL=REGRESSOR) as url:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(url + "/")
            assert page.text_content("h1") == REGRESSOR
            assert "test RMSE" in page.text_content("#model-meta")
            assert "predicting the mean" in page.text_content("#model-meta")
            fill(page, PATIENT)
            page.click("#predict-button")
            page.wait_for_selector("#result-range:not([hidden])")
            expected = requests.post(f"{url}/predict", json=PATIENT, timeout=10).json()["predictions"][0]["value"]
            assert float(page.text_content("#result-label")) == pytest.approx(expected, rel=1e-5)
            assert page.text_content("#result-range-text").startswith("within the range of the progression seen in training: 25 to 346")
            assert page.query_selector_all(".bar") == []  # no class bars for a value
            page.screenshot(path=str(ARTIFACTS / "browser-page-regressor.png"), full_page=True)
        finally:
            context.close()


def test_the_model_picker_opens_any_loaded_model_regressors_included(page, base_url):
    page.goto(base_url + "/")
    listed = [o.text_content() for o in page.query_selector_all("#model-choice option")]
    assert "pima-diabetes version 1 (default)" in listed and f"{REGRESSOR} version 1 (default) · regressor" in listed
    page.select_option("#model-choice", label=f"{REGRESSOR} version 1 (default) · regressor")
    page.wait_for_url(f"**/?model={REGRESSOR}&version=1")
    assert page.text_content("h1") == REGRESSOR
    fill(page, PATIENT)
    page.click("#predict-button")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#result-model") == f"{REGRESSOR} version 1"
    page.select_option("#model-choice", label="titanic version 1 (default)")
    page.wait_for_url("**/?model=titanic&version=1")
    assert page.text_content("h1") == "titanic"
    assert page.csp_violations == []


def served_rows_with_glucose_raised(base_url: str, test_rows) -> int:
    """Post the test rows twice with Glucose raised by 35 mg/dL, and wait until the drift window has
    counted them (workers fold their rows every second); returns the rows counted."""
    shifted = test_rows.drop(columns=["Outcome"]).assign(Glucose=lambda f: f["Glucose"] + 35)
    records = shifted.astype(object).where(shifted.notna(), None).to_dict(orient="records")
    for _ in range(2):
        assert requests.post(f"{base_url}/predict", json=records, timeout=30).status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        drift = requests.get(f"{base_url}/models/pima-diabetes/1/drift", timeout=10).json()
        if drift["rows"] >= 2 * len(records):
            return drift["rows"]
        time.sleep(0.25)
    raise AssertionError(f"the drift window counted {drift['rows']} rows, not {2 * len(records)}")


def test_the_model_card_opens_from_the_page_with_its_plots_and_the_class_names(page, base_url, test_rows):
    served_rows_with_glucose_raised(base_url, test_rows)
    page.goto(base_url + "/")
    page.click("#card-link")
    page.wait_for_selector("#card-metrics")
    assert page.url == base_url + "/models/pima-diabetes/1"
    assert page.text_content("h1").startswith("pima-diabetes")
    assert "no diabetes" in page.text_content("#card-classes")
    metrics = [row.get_attribute("data-metric") for row in page.query_selector_all("#card-metrics tbody tr")]
    assert metrics == ["accuracy", "balanced accuracy", "ROC AUC", "log loss"]
    plots = page.query_selector_all("#card-plots img")
    assert len(plots) == 5
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert all(image.evaluate("i => i.naturalWidth") > 100 for image in plots)  # each SVG loaded and drew
    page.wait_for_selector("#drift-table:not([hidden])")
    assert page.text_content("#drift-table tr[data-feature=Glucose] td:nth-child(3)") == "major shift"
    assert page.text_content("#drift-table tr[data-feature=Pregnancies] td:nth-child(3)") == "stable"
    assert len(page.query_selector_all("#drift-table tr[data-feature=Glucose] .bin")) >= 5  # training and now, per bin
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "card-page.png"), full_page=True)
    page.click("#card-predict")
    page.wait_for_selector("#predict-form")
    assert page.text_content("#model-version") == "1"
    assert page.foreign_requests == []
    assert page.csp_violations == []


def test_page_shows_why_with_a_bar_per_feature_largest_first(page, base_url):
    page.goto(base_url + "/")
    fill(page, RECORD)
    page.click("#predict-button")
    page.wait_for_selector("#why:not([hidden])")
    expected = requests.post(f"{base_url}/predict?explain=true", json=RECORD, timeout=10).json()
    contributions = expected["predictions"][0]["explanation"]["contributions"]
    rows = page.query_selector_all("#why-bars .contribution")
    assert [r.get_attribute("data-feature") for r in rows] == sorted(contributions, key=lambda n: -abs(contributions[n]))
    assert rows[0].query_selector(".feature").text_content() == "Plasma glucose"  # the feature's label
    for row in rows:
        value = contributions[row.get_attribute("data-feature")]
        assert ("up" if value > 0 else "down") in row.get_attribute("class")
        assert row.query_selector(".amount").text_content()[0] == ("+" if value > 0 else "\u2212")
    widths = [float(r.query_selector(".fill").evaluate("e => e.style.width").rstrip("%")) for r in rows]
    assert widths[0] == 50 and widths == sorted(widths, reverse=True)  # the largest reaches the edge
    assert "log-odds of diabetes" in page.text_content("#why-title")  # the class by its display name
    assert page.text_content("#why-baseline").startswith("baseline (the average over the training data) -")
    assert "approximate (background-shapley" in page.text_content("#why-method")
    page.screenshot(path=str(ARTIFACTS / "browser-page-explained.png"), full_page=True)
    assert page.csp_violations == []
