"""Drift: references recorded at training and import, served rows counted across workers over a
rolling window, and the population stability index on /metrics and at /models/<name>/<version>/drift."""
from __future__ import annotations

import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from app import config, create_app
from app.model import drift
from app.model.contract import CATEGORY, NUMBER, Feature, Schema
from app.model.importing import NO_SAMPLE_FOR_DRIFT, publish_model
from app.model.output import Output
from tests import server
from tests.checks import assert_problem, bearer
from tests.conftest import PIMA, REGRESSOR, ROOT
from tests.records import KEY

TRAINING = pd.read_csv(ROOT / "data" / "training.csv")
FEATURES = TRAINING.drop(columns="Outcome")


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON records, gaps as null."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def shifted(frame: pd.DataFrame, **offsets: float) -> pd.DataFrame:
    return frame.assign(**{name: frame[name] + offset for name, offset in offsets.items()})


def psi_by_feature(report: dict) -> dict[str, float | None]:
    return {feature["name"]: feature["psi"] for feature in report["features"]}


# ---- the index ---------------------------------------------------------------------------------
@pytest.mark.parametrize("expected, actual, value", [
    ([50, 50], [50, 50], 0.0),
    ([50, 50], [5, 5], 0.0),  # shares are compared, not counts
    ([80, 20], [20, 80], 2 * 0.6 * math.log(4)),
    ([100, 0], [90, 10], (0.9 - 1) * math.log(0.9) + (0.1 - drift.EPSILON) * math.log(0.1 / drift.EPSILON)),
    ([0, 30, 70], [0, 30, 70], 0.0),  # a bin empty on both sides adds nothing
], ids=["same", "same-shares", "swapped", "empty-reference-bin", "empty-on-both-sides"])
def test_psi_sums_each_bins_share_difference_times_its_log_ratio(expected, actual, value):
    assert drift.psi(np.array(expected), np.array(actual)) == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize("value, level", [(0.0, "stable"), (0.099, "stable"), (0.1, "moderate"), (0.25, "moderate"),
                                          (0.2501, "major"), (3.0, "major"), (None, None)])
def test_psi_reads_stable_below_0_1_moderate_to_0_25_and_major_above(value, level):
    assert drift.level(value) == level


@pytest.mark.parametrize("values, edges", [
    (np.arange(1.0, 101.0), [10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1]),
    (np.array([0.0] * 80 + list(range(1, 21))), [0.0, 0.2, 10.1]),  # eight cuts at 0, kept once
    (np.array([5.0, np.nan, 5.0]), [5.0]),  # gaps are not values
    (np.array([np.nan, np.nan]), []),  # all gaps: one bin for any value, and the gaps
])
def test_number_bins_are_cut_at_the_deciles_of_the_present_values_each_cut_once(values, edges):
    assert drift.quantile_edges(values) == edges


def test_a_row_lands_in_the_same_bin_in_training_as_in_serving_edges_and_gaps_included():
    schema = Schema(features=(Feature("x", NUMBER, allow_missing=True),
                              Feature("colour", CATEGORY, allow_missing=True, categories=("blue", "green", "red"))))
    matrix = np.array([[float(v), float(v % 2)] for v in range(1, 101)])  # colours blue and green only
    reference = drift.reference(schema, matrix, Output(winners=np.zeros(100, dtype=np.intp)), "classification",
                                ["no", "yes"], "the rows themselves")
    assert reference["features"]["x"]["counts"] == [10] * 10 and reference["features"]["x"]["missing"] == 0
    assert reference["features"]["colour"] == {"counts": [50, 50, 0], "missing": 0}  # red: room, though unseen
    assert reference["predictions"]["counts"] == [100, 0]
    bins = drift.Bins(schema, reference, "classification", ["no", "yes"])
    edge, gap = reference["features"]["x"]["edges"][0], np.nan
    counts = bins.count(np.array([[edge, 2.0], [edge + 0.001, np.nan], [gap, 0.0]]), np.array([1, 1, 0]))
    x = counts[bins.features[0].start:bins.features[0].stop]
    colour = counts[bins.features[1].start:bins.features[1].stop]
    assert counts[0] == 3
    assert x.tolist() == [1, 1] + [0] * 8 + [1]  # an edge belongs to the bin below it; the gap to the last
    assert colour.tolist() == [1, 0, 1, 1]  # blue, green, red, gaps
    assert counts[bins.predictions].tolist() == [1, 2]


def damaged(change) -> dict:
    reference = {"rows": 4, "features": {"x": {"edges": [1.0, 2.0], "counts": [1, 1, 1], "missing": 1}},
                 "predictions": {"rows": 4, "from": "rows", "counts": [3, 1]}}
    change(reference)
    return reference


ONE_NUMBER = Schema(features=(Feature("x", NUMBER, allow_missing=True),))
UNUSABLE_REFERENCES = [
    ("none recorded", None, "published before drift references were recorded"),
    ("import without a sample", drift.unavailable(NO_SAMPLE_FOR_DRIFT), "imported without a sample"),
    ("counts for other bins", damaged(lambda r: r["features"]["x"]["counts"].pop()), "has 2 counts for 3 bins"),
    ("edges out of order", damaged(lambda r: r["features"]["x"].update(edges=[2.0, 1.0])), "out of order"),
    ("a feature missing", damaged(lambda r: r["features"].pop("x")), "KeyError"),
    ("prediction counts for other classes", damaged(lambda r: r["predictions"]["counts"].append(0)),
     "3 counts for 2 bins"),
]


@pytest.mark.parametrize("reference, reason", [case[1:] for case in UNUSABLE_REFERENCES],
                         ids=[case[0] for case in UNUSABLE_REFERENCES])
def test_a_version_without_a_usable_reference_has_no_bins_and_says_why(reference, reason):
    stored = {} if reference is None else {drift.METADATA_KEY: reference}
    bins, why = drift.bins_for(ONE_NUMBER, stored, "classification", ["no", "yes"])
    assert bins is None and reason in why


def test_a_sound_reference_compares_to_itself_with_a_psi_of_zero():
    bins, why = drift.bins_for(ONE_NUMBER, {drift.METADATA_KEY: damaged(lambda r: None)}, "classification", ["a", "b"])
    assert why is None
    counts = bins.count(np.array([[0.5], [1.5], [2.5], [np.nan]]), np.array([0, 0, 0, 1]))
    compared = bins.compare(counts, min_rows=4)
    assert compared["features"][0]["psi"] == 0.0 and compared["predictions"]["psi"] == 0.0


# ---- the reference, at training and import -------------------------------------------------------
def metadata(models: Path, name: str, version: int = 1) -> dict:
    return json.loads((models / name / str(version) / "metadata.json").read_text())


def test_training_records_every_features_bins_and_gaps_and_the_held_out_predictions(models_dir):
    found = metadata(models_dir, PIMA)
    reference = found["drift_reference"]
    rows = found["training_data"]["rows"]
    assert reference["rows"] == rows == len(TRAINING)
    for feature in found["schema"]["features"]:
        entry = reference["features"][feature["name"]]
        assert sum(entry["counts"]) + entry["missing"] == rows
        assert len(entry["counts"]) == len(entry["edges"]) + 1
        assert entry["missing"] == int(FEATURES[feature["name"]].isna().sum())
    assert reference["predictions"]["from"] == "held-out rows"
    assert len(reference["predictions"]["counts"]) == len(found["classes"])
    assert sum(reference["predictions"]["counts"]) == reference["predictions"]["rows"] == found["test_metrics"]["rows"]


def test_a_category_has_a_bin_per_category_and_a_regressors_predictions_have_value_bins(models_dir):
    titanic = metadata(models_dir, "titanic")
    sex = next(f for f in titanic["schema"]["features"] if f["name"] == "Sex")
    assert len(titanic["drift_reference"]["features"]["Sex"]["counts"]) == len(sex["categories"])
    predictions = metadata(models_dir, REGRESSOR)["drift_reference"]["predictions"]
    assert len(predictions["counts"]) == len(predictions["edges"]) + 1 > 5
    assert sum(predictions["counts"]) == predictions["rows"]


def pima_pipeline():
    return make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000)).fit(FEATURES, TRAINING["Outcome"])


def test_import_takes_the_reference_from_its_sample_and_without_one_says_why_there_is_none(tmp_path):
    fitted = pima_pipeline()
    sample = pd.read_csv(ROOT / "data" / "test.csv")
    with_sample = publish_model(fitted, "imported", tmp_path, sample=sample, target="Outcome")
    reference = with_sample.metadata["drift_reference"]
    assert reference["rows"] == reference["predictions"]["rows"] == len(sample)
    assert reference["predictions"]["from"] == "the import sample"
    without = publish_model(fitted, "imported", tmp_path)
    assert without.metadata["drift_reference"] == {"unavailable": NO_SAMPLE_FOR_DRIFT}
    client = create_app({"TESTING": True, "MODELS_DIR": str(tmp_path), "DEFAULT_MODEL": "imported"}).test_client()
    answer = client.get("/models/imported/2/drift").json
    assert answer["available"] is False and answer["reason"] == NO_SAMPLE_FOR_DRIFT
    assert client.get("/models/imported/1/drift").json["available"] is True


# ---- counting in one process ---------------------------------------------------------------------
def served_drift(client, name: str = PIMA, version: int = 1, **kwargs) -> dict:
    answer = client.get(f"/models/{name}/{version}/drift", **kwargs)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json


def predict_rows(client, frame: pd.DataFrame) -> None:
    """A few rows one by one (the direct path), the rest as a CSV body (the Flask route)."""
    rows = records(frame)
    for row in rows[:20]:
        assert client.post("/predict", json=row).status_code == 200
    if len(frame) > 20:
        body = frame.iloc[20:].to_csv(index=False)
        assert client.post("/predict", data=body, content_type="text/csv").status_code == 200


def test_rows_like_the_training_rows_stay_stable(make_app):
    client = make_app(DRIFT_MIN_ROWS=100).test_client()
    predict_rows(client, FEATURES)
    report = served_drift(client)
    assert report["available"] is True and report["rows"] == len(FEATURES) and report["reason"] is None
    assert all(psi < 0.01 for psi in psi_by_feature(report).values()), psi_by_feature(report)
    assert {feature["level"] for feature in report["features"]} == {"stable"}
    assert report["predictions"]["psi"] < 0.1 and report["predictions"]["kind"] == "classes"


def test_shifted_inputs_raise_the_psi_of_the_features_that_moved_and_no_other(make_app):
    client = make_app(DRIFT_MIN_ROWS=100).test_client()
    predict_rows(client, shifted(FEATURES, Glucose=45, Age=15))
    found = psi_by_feature(served_drift(client))
    assert found["Glucose"] > 0.25 and found["Age"] > 0.25, found
    assert all(psi < 0.01 for name, psi in found.items() if name not in ("Glucose", "Age")), found
    glucose = next(f for f in served_drift(client)["features"] if f["name"] == "Glucose")
    assert glucose["level"] == "major"
    assert sum(b["current"] for b in glucose["bins"]) == pytest.approx(1.0)
    assert glucose["bins"][-1] == {"label": "missing", "gaps": True, "reference": 0.0, "current": 0.0}
    assert glucose["bins"][0]["low"] is None and glucose["bins"][-2]["high"] is None


def test_with_too_few_rows_the_psi_is_null_and_the_answer_says_why(make_app):
    client = make_app(DRIFT_MIN_ROWS=50).test_client()
    predict_rows(client, FEATURES.head(10))
    report = served_drift(client)
    assert report["rows"] == 10 and report["min_rows"] == 50
    assert "only 10 rows" in report["reason"] and "DRIFT_MIN_ROWS" in report["reason"]
    assert set(psi_by_feature(report).values()) == {None} and report["predictions"]["psi"] is None
    assert {feature["level"] for feature in report["features"]} == {None}


def test_a_regressor_and_a_model_with_categories_are_compared_per_bin(make_app, models_dir):
    client = make_app(DRIFT_MIN_ROWS=1).test_client()
    patient = {"age": 59, "sex": "female", "bmi": 32.1, "bp": None, "s1": 157, "s2": 93.2, "s3": 38, "s4": 4,
               "s5": 4.8598, "s6": 87}
    assert client.post(f"/predict?model={REGRESSOR}", json=[patient] * 30).status_code == 200
    report = served_drift(client, REGRESSOR)
    assert report["rows"] == 30 and report["predictions"]["kind"] == "values"
    sex = next(f for f in report["features"] if f["name"] == "sex")
    assert [b["current"] for b in sex["bins"]] == [1.0, 0.0, 0.0]  # female, male, gaps
    bp = next(f for f in report["features"] if f["name"] == "bp")
    assert bp["bins"][-1]["current"] == 1.0 and bp["psi"] > 0.25  # every row a gap


def samples(client) -> dict[tuple[str, frozenset], float]:
    text = client.get("/metrics", headers=bearer(KEY)).get_data(as_text=True)
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_carry_the_psi_per_model_version_and_feature_and_the_rows_counted(make_app):
    client = make_app(DRIFT_MIN_ROWS=100).test_client()
    predict_rows(client, shifted(FEATURES, Glucose=45))
    found = samples(client)
    version = {"model": PIMA, "version": "1"}
    assert found[("model_drift_rows", frozenset(version.items()))] == len(FEATURES)
    glucose = found[("model_feature_psi", frozenset({**version, "feature": "Glucose"}.items()))]
    assert glucose == pytest.approx(psi_by_feature(served_drift(client))["Glucose"]) and glucose > 0.25
    assert {dict(labels)["feature"] for name, labels in found if name == "model_feature_psi"} == set(FEATURES.columns)
    assert ("model_prediction_psi", frozenset(version.items())) in found
    titanic = {"model": "titanic", "version": "1"}  # loaded, asked nothing: rows 0, no index
    assert found[("model_drift_rows", frozenset(titanic.items()))] == 0
    assert not [labels for name, labels in found if name == "model_feature_psi" and dict(labels)["model"] == "titanic"]


def test_the_drift_endpoint_needs_a_key_like_the_other_model_routes_and_404s_unknown_versions(make_app):
    client = make_app(API_KEYS=(KEY,)).test_client()
    assert_problem(client.get(f"/models/{PIMA}/1/drift"), 401)
    assert served_drift(client, headers=bearer(KEY))["model"] == {"name": PIMA, "version": 1}
    assert_problem(client.get(f"/models/{PIMA}/9/drift", headers=bearer(KEY)), 404)
    assert_problem(client.get("/models/nope/1/drift", headers=bearer(KEY)), 404)


def test_with_drift_off_nothing_is_counted_and_the_endpoint_says_so(make_app):
    client = make_app(DRIFT=False).test_client()
    predict_rows(client, FEATURES.head(30))
    report = served_drift(client)
    assert report["available"] is False and "DRIFT=false" in report["reason"]
    assert not [name for name, _ in samples(client) if name.startswith(("model_drift", "model_feature_psi"))]


def test_rows_leave_the_window_once_it_has_passed(make_app):
    client = make_app(DRIFT_WINDOW=2, DRIFT_MIN_ROWS=1).test_client()
    predict_rows(client, FEATURES.head(30))
    report = served_drift(client)
    assert report["rows"] == 30 and report["window"]["seconds"] == 2
    time.sleep(2.2)
    assert served_drift(client)["rows"] == 0
    predict_rows(client, FEATURES.head(5))
    assert served_drift(client)["rows"] == 5


def test_counting_that_fails_never_fails_a_prediction_and_says_so_once(make_app, capfd):
    app = make_app()
    client = app.test_client()
    predict_rows(client, FEATURES.head(1))  # counting has started in this process
    app.extensions["drift"]._waiting = None  # from now on every observe raises
    for row in records(FEATURES.head(5)):
        assert client.post("/predict", json=row).status_code == 200
    logged = capfd.readouterr().err
    assert logged.count("ERROR app.drift: drift not counted (AttributeError") == 1, logged


def test_the_drift_settings_are_read_from_the_environment():
    # bad values are in test_settings.py's table of settings that stop startup
    loaded = config.load({"DRIFT": "off", "DRIFT_WINDOW": "60", "DRIFT_MIN_ROWS": "60"})
    assert (loaded["DRIFT"], loaded["DRIFT_WINDOW"], loaded["DRIFT_MIN_ROWS"]) == (False, 60, 60)


# ---- counting across gunicorn workers ------------------------------------------------------------
def post_from_threads(url: str, rows: list[dict], threads: int = 4) -> None:
    """Each row once, on a new connection each (so both workers answer), from a few threads."""
    def send(part: list[dict]) -> None:
        for row in part:
            answer = requests.post(f"{url}/predict", json=row, timeout=10)
            assert answer.status_code == 200, answer.text
    workers = [threading.Thread(target=send, args=(rows[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)


def counted(url: str, version: int, rows: int, seconds: float = 5) -> dict:
    """The drift answer once it counts ``rows`` (workers fold every second), or the last one."""
    deadline = time.monotonic() + seconds
    while True:
        report = requests.get(f"{url}/models/{PIMA}/{version}/drift", timeout=10).json()
        if report["rows"] >= rows or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def scraped_rows(url: str, version: int) -> float:
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "model_drift_rows" and sample.labels == {"model": PIMA, "version": str(version)}:
                return sample.value
    return 0.0


def writers(folder: Path, version: int) -> set[str]:
    return {path.name.split("@")[2] for path in folder.glob(f"{PIMA}@{version}@*")}


@pytest.mark.integration
def test_two_gunicorn_workers_count_into_one_window_that_survives_a_reload_to_a_new_version(
        models_copy, logreg_version, tmp_path):
    metrics_dir = tmp_path / "metrics"
    log = tmp_path / "gunicorn.log"
    process, url = server.start(models_copy, log, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), DRIFT_MIN_ROWS="100")
    try:
        server.wait_until_healthy(process, url, log)
        rows = records(shifted(FEATURES, Glucose=45))
        post_from_threads(url, rows)
        report = counted(url, 1, len(rows))
        assert report["rows"] == len(rows) == scraped_rows(url, 1)
        assert len(writers(metrics_dir / "drift", 1)) == 2, "both workers answered and counted"
        assert psi_by_feature(report)["Glucose"] > 0.25 and psi_by_feature(report)["BMI"] < 0.01

        shutil.copytree(logreg_version, models_copy / PIMA / "2")
        process.send_signal(signal.SIGHUP)  # new workers serve version 2; the old ones exit
        deadline, answered_by = time.monotonic() + 20, []
        while not answered_by or answered_by[-1] != f"{PIMA}/2":
            assert time.monotonic() < deadline, log.read_text()
            answered_by.append(requests.post(f"{url}/predict", json=rows[0], timeout=10).headers["X-Model-Version"])
        post_from_threads(url, rows[:99])
        old_rows = len(rows) + answered_by.count(f"{PIMA}/1")
        assert counted(url, 1, old_rows)["rows"] == old_rows  # the exited workers' rows still count
        assert counted(url, 2, 100)["rows"] == 100  # the probe that saw version 2, and 99 more
        assert writers(metrics_dir / "drift", 1).isdisjoint(writers(metrics_dir / "drift", 2))
    finally:
        server.stop(process)


def test_each_counting_process_writes_a_file_of_its_own_and_dead_aged_out_files_are_swept(make_app, tmp_path):
    from app.gateway.drift import SUFFIX, DriftWindow
    from app.model import predict

    model = make_app().extensions["registry"].get()
    decoded = model.decoder.records(records(FEATURES.head(4)))
    output = predict.predict(model, decoded)
    stale = tmp_path / f"retired@9@999999999-0a1b2c3d{SUFFIX}"  # an exited worker's, long out of the window
    np.lib.format.open_memmap(stale, mode="w+", dtype=np.int64, shape=(12, 3))[:, 0] = -1
    first, second = DriftWindow(3600, 1, tmp_path), DriftWindow(3600, 1, tmp_path)  # as a reused pid would be
    for window in (first, second):
        window.observe(model, decoded.matrix, output)
        window.fold()
    assert len(list(tmp_path.glob(f"{PIMA}@1@*{SUFFIX}"))) == 2  # neither truncated the other's counts
    assert first.report(model)["rows"] == 8
    assert not stale.exists()
