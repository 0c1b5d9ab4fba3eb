"""The Flask application factory.

``create_app`` reads the defaults, then the environment, then test overrides; loads and
verifies the models once; and registers blueprints, error handlers and logging. Nothing
happens at import time.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Mapping

from flask import Flask, g, request

from . import config
from .errors import register_error_handlers
from .logs import configure_logging
from .registry import Registry

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class StartupError(RuntimeError):
    """The service cannot serve; the message says why and how to fix it."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    configure(app, test_config)
    configure_logging(app)
    load_registry(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    return app


def configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    app.config.from_mapping(config.DEFAULTS)
    try:
        app.config.from_mapping(config.from_environment())
    except config.ConfigError as exc:
        raise StartupError(f"configuration: {exc}") from None
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False  # keep "model" before "predictions", fields in schema order
    app.json.compact = True


def load_registry(app: Flask) -> None:
    registry = Registry.load(app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"], app.config["MODEL_VERSION"],
                             fast=app.config["FAST_PATH"])
    app.extensions["registry"] = registry
    reason = registry.problem()
    if reason is None:
        model = registry.get()
        app.logger.info("serving %s by default", model.tag)
    elif app.config["EXIT_IF_UNREADY"]:
        raise StartupError(reason)
    else:
        app.logger.error("not ready: %s", reason)


def register_blueprints(app: Flask) -> None:
    from . import api, health, openapi, web

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    openapi.register_docs(app)


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def tag_response(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path != "/" and not request.path.startswith(("/docs", "/static")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
