"""Blueprint: liveness, readiness, MLflow's probe and the classic first endpoint."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ..model.errors import ModelUnavailable

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    """Liveness: the process answers. Deliberately touches nothing else."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Response:
    """Readiness: the default model is loaded and verified, so /predict can answer."""
    registry = current_app.extensions["registry"]
    reason = registry.unready_reason()
    if reason is not None:
        raise ModelUnavailable(f"not ready: {reason}")
    model = registry.get()
    return jsonify({
        "status": "ready",
        "default_model": {"name": model.name, "version": model.version},
        "models": {name: sorted(versions) for name, versions in registry.models.items()},
    })


@bp.get("/ping")
def ping() -> Response:
    """MLflow's health probe: 200 when the default model can answer."""
    reason = current_app.extensions["registry"].unready_reason()
    return jsonify({"status": "ok" if reason is None else "unavailable"}), (200 if reason is None else 503)


@bp.get("/hello")
def hello() -> Response:
    return jsonify({"message": "Hello, World!"})


@bp.get("/hello/<name>")
def hello_name(name: str) -> Response:
    return jsonify({"message": f"Hello, {name[:100]}!"})
