"""Blueprint: the models being served, their versions and metadata (and, for a browser, a version's card)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from ..model.registry import Registry
from .routes import prefers_html
from .web.card import card_page

bp = Blueprint("models", __name__)


def registry() -> Registry:
    return current_app.extensions["registry"]


@bp.get("/models")
def list_models() -> Response:
    found = registry()
    return jsonify({
        "default": {"name": found.default_name, "version": found.default_version(found.default_name)},
        "models": [summary(found, name) for name in found.names()],
    })


@bp.get("/models/<name>")
def show_model(name: str) -> Response:
    found = registry()
    described = found.describe(name)
    default = found.default_version(name)
    current = next((v for v in described["versions"] if v["version"] == default), described["versions"][-1])
    return jsonify({**current, "default_version": default, "versions": [v["version"] for v in described["versions"]]})


@bp.get("/models/<name>/<int:version>")
def show_model_version(name: str, version: int) -> Response:
    """The version's metadata; a browser (Accept prefers text/html) gets its model card page."""
    if prefers_html(request.headers.get("Accept")):
        return card_page(name, version)
    answer = jsonify(registry().describe_version(name, version))
    answer.headers["Vary"] = "Accept"
    return answer


def summary(found: Registry, name: str) -> dict[str, Any]:
    failed = found.failures.get(name, {})
    loaded = found.models.get(name, {})
    served = loaded.get(found.default_version(name)) or (loaded[max(loaded)] if loaded else None)
    return {
        "name": name,
        "task": served.task if served is not None else None,
        "default_version": found.default_version(name),
        "versions": found.versions(name),
        "unavailable": {str(v): reason for v, reason in sorted(failed.items())},
        "url": f"/models/{name}",
    }
