"""Blueprint: a model version's drift at ``/models/<name>/<version>/drift``: the PSI of each feature
and of the predictions over the rolling window, with every bin's reference and current share (the
card page's panel draws them). The numbers come from the gateway's drift window, counted across
workers; app/model/drift.py defines them."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..model.drift import LEVELS, MAJOR, MODERATE

bp = Blueprint("drift", __name__)
THRESHOLDS = {"moderate": MODERATE, "major": MAJOR, "levels": list(LEVELS)}


@bp.get("/models/<name>/<int:version>/drift")
def show_drift(name: str, version: int) -> Response:
    model = current_app.extensions["registry"].get(name, version)  # 404 for an unknown model or version
    window = current_app.extensions.get("drift")
    if window is None:
        report = {"model": {"name": model.name, "version": model.version}, "window": None, "available": False,
                  "reason": "drift counting is off on this server (DRIFT=false)"}
    else:
        report = window.report(model)
    return jsonify({**report, "thresholds": THRESHOLDS})
