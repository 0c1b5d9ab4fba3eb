"""The OpenAPI document: generated from the models, valid, and true to the live server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests import server


def test_openapi_document_describes_keys_and_limits_when_they_are_on(models_dir):
    from app import create_app

    app = create_app({"TESTING": True, "MODELS_DIR": str(models_dir), "API_KEYS": ("a-test-key-of-20-chars",),
                      "RATE_LIMIT": "10/second", "ADMIN_API_KEYS": ("an-admin-key-of-20-chars",)})
    document = app.test_client().get("/openapi.json").json
    validate(document)
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    promote = document["paths"]["/models/{name}/promote"]["post"]
    assert {"401", "403", "409", "429"} <= set(promote["responses"]) and promote["security"]
    predict = document["paths"]["/predict"]["post"]
    assert {"401", "429"} <= set(predict["responses"]) and predict["security"]
    assert "security" not in document["paths"]["/health"]["get"]
    assert "429" not in document["paths"]["/metrics"]["get"]["responses"]


def test_openapi_document_is_valid_and_generated_from_the_model_schemas(client):
    document = client.get("/openapi.json").json
    validate(document)
    record = document["components"]["schemas"]["PimaDiabetesRecord"]
    assert record["required"] == ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "BMI",
                                  "DiabetesPedigreeFunction", "Age"]
    assert record["properties"]["BMI"]["nullable"] is True and "nullable" not in record["properties"]["Glucose"]
    assert "56 to 199" in record["properties"]["Glucose"]["description"]
    assert record["example"] == client.get("/models/pima-diabetes").json["example"]
    titanic = document["components"]["schemas"]["TitanicRecord"]
    assert titanic["properties"]["Sex"]["enum"] == ["female", "male"]
    assert titanic["properties"]["Embarked"]["enum"][-1] is None  # gaps seen in training
    get_parameters = {p["name"] for p in document["paths"]["/predict"]["get"]["parameters"]}
    assert set(record["required"]) <= get_parameters
    assert {"200", "400", "404", "413", "415", "422"} <= set(document["paths"]["/predict"]["post"]["responses"])


def test_swagger_ui_is_served_from_local_assets(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html and "https://" not in html.split("<body>")[0]
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.data) > 100_000


@pytest.mark.integration
def test_schemathesis_finds_no_server_errors_and_no_responses_that_break_the_document(models_dir, tmp_path):
    """Property-based requests from the document against a live gunicorn.

    Every check runs except positive_data_acceptance: the document cannot express every
    cross-field rule (a CSV body, positional dataframe_split rows), so some schema-valid bodies are
    rightly answered 422, which the document lists.
    """
    st = Path(sys.executable).parent / "st"
    with server.running(models_dir, tmp_path / "server.log") as url:
        done = subprocess.run(
            [str(st), "run", f"{url}/openapi.json", "--max-examples", "40", "--seed", "7",
             "--request-timeout", "10", "--exclude-checks", "positive_data_acceptance", "--no-color"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,  # st writes .schemathesis/ here
        )
    assert done.returncode == 0, done.stdout[-6000:]
    assert "No issues found" in done.stdout
    generated = [line for line in done.stdout.splitlines() if "generated" in line]
    assert generated and int(generated[-1].split()[0]) > 500, generated
    assert " 500 " not in (tmp_path / "server.log").read_text()
