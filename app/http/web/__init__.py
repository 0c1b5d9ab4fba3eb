"""Blueprint: the browser page at ``/``, a form generated from the default model's schema.

It posts the form as JSON to /predict and shows the answer; everything it needs is served
from here (no CDN), so it works offline.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template

from ...model.errors import ModelUnavailable

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static/web")


@bp.get("/")
def index() -> Response | str:
    registry = current_app.extensions["registry"]
    reason = registry.unready_reason()
    if reason is not None:
        raise ModelUnavailable(f"not ready: {reason}")
    model = registry.get()
    return render_template("index.html", model=model, features=model.schema.features,
                           metrics=model.metadata.get("test_metrics") or {}, classes=model.classes,
                           target_range=model.metadata.get("target_range"),
                           needs_key=current_app.extensions["gateway"].keys is not None)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page; no icon, and nothing to log as an error."""
    return Response(status=204, headers={"Cache-Control": "max-age=86400"})
