"""Blueprint: Prometheus metrics at ``/metrics``, registered while METRICS is on."""
from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    found = current_app.extensions["metrics"]
    served = current_app.extensions["registry"]
    found.describe_models(served)
    return Response(found.exposition(served), mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})
