"""The Flask application factory: the one place where the layers are put together.

``create_app`` reads the settings (defaults, then the environment, then test overrides), loads
and verifies the models once, registers the HTTP layer's blueprints and error handlers, and puts
the gateway in front. Each step is a small function below.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask, g, request

from . import config
from .logs import configure_logging
from .model import artifacts
from .model.registry import Registry
from .model.signing import SigningError
from .model.trust import TrustError

log = logging.getLogger("app")


class StartupError(RuntimeError):
    """The service cannot serve; the message says why and how to fix it."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask("app", static_folder=None)  # the logger is "app"; the page's assets are the web blueprint's
    configure(app, test_config)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    load_registry(app)
    register_drift(app)
    register_metrics(app)
    register_blueprints(app)
    install_reloader(app)
    register_request_hooks(app)
    enable_cors(app)
    install_gateway(app)
    return app


def configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    try:
        app.config.from_mapping(config.load())
    except config.ConfigError as exc:
        raise StartupError(f"configuration: {exc}") from None
    if test_config:
        app.config.from_mapping(test_config)
    # Flask turns debug on from FLASK_DEBUG in the environment; nothing here runs the dev server,
    # and debug would change error handling in production, so it is off whatever the environment says.
    app.config["DEBUG"] = False
    app.json.sort_keys = False  # keep "model" before "predictions", fields in schema order
    app.json.compact = True


def read_registry(app: Flask, previous: Registry | None = None) -> Registry:
    try:
        policy = artifacts.load_policy(app.config)
    except (TrustError, SigningError) as exc:
        raise StartupError(f"configuration: {exc}") from None
    return Registry.load(app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"], app.config["MODEL_VERSION"],
                         compile_models=app.config["COMPILED_MODELS"], policy=policy, previous=previous)


def load_registry(app: Flask) -> None:
    registry = read_registry(app)
    app.extensions["registry"] = registry
    app.extensions["models_state"] = registry.state  # what the last (re)load saw: the poller compares with it
    reason = registry.unready_reason()
    if reason is None:
        app.logger.info("serving %s by default", registry.get().tag)
    elif app.config["EXIT_IF_UNREADY"]:
        raise StartupError(reason)
    else:
        app.logger.error("not ready: %s", reason)


def reload_models(app: Flask) -> str | None:
    """Load the models again (gunicorn's HUP, in the master before it forks new workers).

    The new set replaces the old only if it can serve the default model; otherwise the old one
    keeps serving and the reason is returned and logged, so a bad new version cannot take the
    service down.
    """
    current = app.extensions.get("registry")
    fresh = read_registry(app, previous=current)
    app.extensions["models_state"] = fresh.state  # tried, even if refused: the poller does not retry it
    reason = fresh.unready_reason()
    if reason is not None and current is not None and current.unready_reason() is None:
        log.error("reload refused, still serving %s: %s", current.get().tag, reason)
        return reason
    app.extensions["registry"] = fresh
    log.info("reloaded: serving %s by default", fresh.get().tag if reason is None else "nothing")
    return reason


def reload_keys(app: Flask) -> None:
    """Read the key files again (HUP), so keys rotate without a restart; a bad file keeps the old keys."""
    from .gateway.auth import ApiKeys

    gateway = app.extensions["gateway"]
    try:
        keys = ApiKeys.from_config(app.config)
        admin_keys = ApiKeys.from_config(app.config, "ADMIN_API_KEYS")
    except config.ConfigError as exc:
        log.error("API keys not reloaded, the old ones stay in force: %s", exc)
        return
    if keys is None and gateway.keys is not None:
        log.error("API keys not reloaded: the new configuration holds none, and authentication stays on")
        return
    gateway.keys = keys
    gateway.admin_keys = admin_keys  # none left turns the admin API off, which gives nobody more access


def register_drift(app: Flask) -> None:
    """DRIFT: count the rows each version is asked over a rolling window, across workers (in the
    folder gunicorn.conf.py prepares; without it, in this process)."""
    if app.config["DRIFT"]:
        from .gateway.drift import DriftWindow, counts_dir

        app.extensions["drift"] = DriftWindow(app.config["DRIFT_WINDOW"], app.config["DRIFT_MIN_ROWS"], counts_dir())


def register_metrics(app: Flask) -> None:
    if app.config["METRICS"]:
        from .gateway.metrics import Metrics

        app.extensions["metrics"] = Metrics(app.extensions.get("drift"))


def register_blueprints(app: Flask) -> None:
    from .http import admin, drift, errors, health, metrics, models, openapi, predict, web

    # the admin routes always exist in Flask; the gateway answers 404 for them without admin keys
    for blueprint in (health.bp, predict.bp, models.bp, drift.bp, admin.bp, web.bp):
        app.register_blueprint(blueprint)
    if app.config["METRICS"]:
        app.register_blueprint(metrics.bp)
    openapi.register_docs(app)
    errors.register_error_handlers(app)


def install_reloader(app: Flask) -> None:
    """How the admin API brings every worker to a change: under gunicorn, HUP the master (it loads
    the models and replaces the workers, dropping no request); alone (tests, flask run), reload here."""
    from .master import request_reload

    def reload() -> str:
        if request_reload():
            return "requested"
        reload_models(app)
        return "done"

    app.extensions["reload"] = reload
    if app.config["JOBS_QUEUE_URL"] and not app.config["MODELS_POLL_INTERVAL"]:
        log.warning("JOBS_QUEUE_URL is set but MODELS_POLL_INTERVAL is 0: versions that queued jobs publish are "
                    "served only after a reload (make reload, or set MODELS_POLL_INTERVAL)")


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def note_request() -> None:
        # The gateway assigned the id; the rule Flask matched labels this request in the metrics.
        g.request_id = request.environ["app.request_id"]
        if request.url_rule is not None:
            request.environ["app.route"] = request.url_rule.rule


def enable_cors(app: Flask) -> None:
    """Cross-origin calls from the configured origins only; off by default."""
    origins = list(app.config["CORS_ORIGINS"])
    if not origins:
        return
    from flask_cors import CORS

    from .gateway import CORS_EXPOSED_HEADERS

    CORS(app, origins=origins, allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
         expose_headers=list(CORS_EXPOSED_HEADERS), methods=["GET", "POST"], max_age=600)


def install_gateway(app: Flask) -> None:
    from .gateway import Gateway

    try:
        app.wsgi_app = app.extensions["gateway"] = Gateway(app, app.wsgi_app)
    except config.ConfigError as exc:
        raise StartupError(f"configuration: {exc}") from None
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:  # outermost, so rate limits, logs and the direct path all see the client's address
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
