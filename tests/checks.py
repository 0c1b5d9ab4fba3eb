"""Assertions and headers the tests share, defined once."""
from __future__ import annotations


def assert_problem(response, status):
    """A problem+json answer (Flask test client response) with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status


def assert_prediction(body, rows=1, name="pima-diabetes"):
    assert body["model"]["name"] == name and isinstance(body["model"]["version"], int)
    assert len(body["predictions"]) == rows
    for prediction in body["predictions"]:
        assert prediction["label"] in (0, 1)
        assert set(prediction["probabilities"]) == {"0", "1"}
        assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-9
        best = max(prediction["probabilities"], key=prediction["probabilities"].get)
        assert str(prediction["label"]) == best
        assert isinstance(prediction["warnings"], list)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}
