"""Blueprint: the browser page at ``/``, a form generated from a model's schema.

The default model, or the one picked (``/?model=NAME&version=N``, the page's model picker lists
every loaded version, regressors included). It posts the form as JSON to /predict and shows the
answer, with the classes' display names where the version has them, and why (each feature's
contribution, when the model explains its predictions); everything it needs is
served from here (no CDN), so it works offline.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from ...model import explain
from ...model.errors import ModelUnavailable
from ..payloads import VERSION
from ..problems import MalformedRequest

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static/web")


@bp.get("/")
def index() -> Response | str:
    registry = current_app.extensions["registry"]
    reason = registry.unready_reason()
    if reason is not None:
        raise ModelUnavailable(f"not ready: {reason}")
    version_text = request.args.get("version")
    if version_text is not None and not VERSION.fullmatch(version_text):
        raise MalformedRequest(f"version must be a positive whole number, got {version_text[:20]!r}")
    model = registry.get(request.args.get("model") or None, int(version_text) if version_text else None)
    choices = [{"name": name, "version": version, "task": loaded.task,
                "default": version == registry.default_version(name),
                "selected": (name, version) == (model.name, model.version)}
               for name in registry.names() for version, loaded in sorted(registry.models.get(name, {}).items())]
    return render_template("index.html", model=model, features=model.schema.features,
                           metrics=model.metadata.get("test_metrics") or {}, classes=model.classes,
                           class_names=model.metadata.get("class_names") or {}, choices=choices,
                           target_range=model.metadata.get("target_range"),
                           explained=isinstance(model.explainer, explain.Explainer),
                           labels={f.name: f.label or f.name for f in model.schema.features},
                           needs_key=current_app.extensions["gateway"].keys is not None)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every page; no icon, and nothing to log as an error."""
    return Response(status=204, headers={"Cache-Control": "max-age=86400"})


from . import card  # noqa: E402,F401 - the card page's file route is on this blueprint
