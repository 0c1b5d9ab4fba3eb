"""Every setting of the service and of its gunicorn server: name, default, parser, one place.

Read by ``create_app``, ``gunicorn.conf.py``, ``train.py`` and ``manage.py``, so a variable is
parsed and checked once and a bad value is one line naming it. Imports nothing heavy: the
command-line tools and gunicorn's config file read it before NumPy or Flask are loaded.

Order of precedence (as in the Flask tutorial): the defaults here, then environment variables,
then the ``test_config`` passed to ``create_app``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

DEFAULT_MODEL_NAME = "pima-diabetes"  # the model train.py builds without options, and serves by default
MIN_KEY_LENGTH = 16


class ConfigError(ValueError):
    """A setting with a value the service cannot use."""


Parser = Callable[[str, str], Any]


# ---- parsers: (name, text) -> value, or ConfigError naming the variable ----------------------
def whole(minimum: int = 1, maximum: int | None = None) -> Parser:
    def parse(name: str, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value
    return parse


def boolean(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def choice(*choices: str, upper: bool = False) -> Parser:
    allowed = [c.upper() if upper else c for c in choices]

    def parse(name: str, text: str) -> str:
        value = text.strip().upper() if upper else text.strip().lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {text!r}")
        return value
    return parse


def keys(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated secrets; messages name a key by its position, never by its value."""
    found = tuple(part.strip() for part in text.split(",") if part.strip())
    check_keys(name, found)
    return found


def check_keys(source: str, found: tuple[str, ...]) -> None:
    if not found:
        raise ConfigError(f"{source} is set but holds no key")
    for position, key in enumerate(found, 1):
        if len(key) < MIN_KEY_LENGTH or any(c.isspace() or not c.isprintable() for c in key):
            raise ConfigError(
                f"{source}: key {position} must be at least {MIN_KEY_LENGTH} printable characters without spaces "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def origins(name: str, text: str) -> tuple[str, ...]:
    found = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in found:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{name}: {origin!r} is not an origin like https://app.example.com (or *)")
    return found


def type_names(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated dotted names of Python types, e.g. mypackage.transformers.Clipper."""
    found = tuple(part.strip() for part in text.split(",") if part.strip())
    for dotted in found:
        if not all(part.isidentifier() for part in dotted.split(".")) or "." not in dotted:
            raise ConfigError(f"{name}: {dotted!r} is not a dotted type name like mypackage.module.TypeName")
    return found


def rate_limit(name: str, text: str) -> str:
    from limits import parse_many  # small, and only when a limit is set

    try:
        limits = parse_many(text)
    except ValueError:
        raise ConfigError(f"{name} must look like 100/second or 100/second;3000/minute, got {text!r}") from None
    if any(limit.amount < 1 for limit in limits):
        raise ConfigError(
            f"{name} must allow at least 1 request per period, got {text!r} (unset it to turn limits off)")
    return text.strip()


def text(name: str, value: str) -> str:
    if not value.strip():
        raise ConfigError(f"{name} is set but empty")
    return value.strip()


# ---- the settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    default: Any
    parse: Parser
    server: bool = False  # read by gunicorn.conf.py rather than by the app


SETTINGS: dict[str, Setting] = {
    # models
    "MODELS_DIR": Setting("models", text),
    "DEFAULT_MODEL": Setting(DEFAULT_MODEL_NAME, text),
    "MODEL_VERSION": Setting(None, whole()),  # pin the default model to one version; None serves the newest
    "EXIT_IF_UNREADY": Setting(True, boolean),  # refuse to start when the default model cannot be served
    "COMPILED_MODELS": Setting(True, boolean),
    # seconds between looks at MODELS_DIR for versions and pins another replica (or manage.py) changed;
    # a change makes the server reload as on HUP. 0: only HUP, make reload and the admin API reload
    "MODELS_POLL_INTERVAL": Setting(0, whole(0, 3600), server=True),  # serve with the compiled NumPy backend where it matches scikit-learn
    # model files: what loading may build, and who must have signed them (app/model/trust.py, signing.py)
    "TRUSTED_TYPES": Setting((), type_names),  # types a skops model may hold beyond the project's reviewed list
    "TRUSTED_TYPES_FILE": Setting(None, text),  # the same, one per line
    "ALLOW_PICKLE_MODELS": Setting(False, boolean),  # DANGEROUS: read pickle versions (model.joblib), which run code
    "VERIFY_KEYS_FILE": Setting(None, text),  # PEM public keys; when set, every version must be signed by one
    "SIGNING_KEY_FILE": Setting(None, text),  # PEM private key: train.py and manage.py import sign what they publish
    # requests
    "MAX_CONTENT_LENGTH": Setting(16 * 1024 * 1024, whole()),  # bytes in one request body
    "MAX_BATCH_ROWS": Setting(10_000, whole()),
    "MAX_EXPLAINED_ROWS": Setting(100, whole()),  # rows per request a model explained by approximation explains
    "EXPLAIN_TIME_LIMIT": Setting(5, whole(1, 3600)),  # seconds of explaining one request may ask for (cost measured at load)
    "MAX_LISTED_ERRORS": Setting(100, whole()),
    "DIRECT_PATH": Setting(True, boolean),  # answer plain JSON predictions without Flask's request machinery
    # gateway: authentication is off unless keys are given; keys are never logged, never echoed
    "API_KEYS": Setting((), keys),  # comma-separated in the environment
    "API_KEYS_FILE": Setting(None, text),  # one key per line; blank lines and # comments ignored
    # the admin API (upload, promote, roll back, delete, retrain): off, answering 404, unless admin keys are given;
    # an admin key may also predict, a prediction key gets 403 there
    "ADMIN_API_KEYS": Setting((), keys),
    "ADMIN_API_KEYS_FILE": Setting(None, text),
    "MAX_UPLOAD_LENGTH": Setting(512 * 1024 * 1024, whole()),  # bytes in one upload or training request
    # training jobs: a local process per job (at most MAX_RUNNING_JOBS at once) unless a queue is given,
    # e.g. redis://redis:6379/1: jobs go to RQ, run by `python manage.py worker` wherever the models volume is
    "JOBS_QUEUE_URL": Setting(None, text),
    "MAX_RUNNING_JOBS": Setting(1, whole(1, 64)),
    "JOB_TIMEOUT": Setting(3600, whole()),  # seconds a training job may run
    "RATE_LIMIT": Setting(None, rate_limit),  # off unless set, e.g. "100/second;3000/minute"
    "RATE_LIMIT_STORAGE_URI": Setting("memory://", text),  # per worker; redis://host:6379 shares one count
    # reverse proxies in front that append to X-Forwarded-For: the client is that many hops back
    # (0: the connection's address; more than the real count lets clients forge their address)
    "TRUSTED_PROXIES": Setting(0, whole(minimum=0, maximum=5)),
    "RATE_LIMIT_STRATEGY": Setting("sliding-window-counter",
                                   choice("fixed-window", "sliding-window-counter", "moving-window")),
    "CORS_ORIGINS": Setting((), origins),  # off unless set: comma-separated origins allowed to call the API
    "METRICS": Setting(True, boolean),  # Prometheus /metrics
    # drift (app/model/drift.py, app/gateway/drift.py): rows asked of each model version are counted, across
    # workers, into the bins of its training reference over a rolling window; PSI per feature and for predictions
    "DRIFT": Setting(True, boolean),  # count rows for drift; false: nothing is counted (the bench measures the cost)
    "DRIFT_WINDOW": Setting(3600, whole(1, 30 * 86400)),  # seconds of requests the PSI looks at, moving in 1/12 steps
    "DRIFT_MIN_ROWS": Setting(500, whole(1)),  # fewer rows in the window: no PSI (null, and why), not a noisy number
    # logs
    "LOG_LEVEL": Setting("INFO", choice("debug", "info", "warning", "error", upper=True)),
    "LOG_FORMAT": Setting("text", choice("text", "json")),
    "ACCESS_LOG": Setting(True, boolean),  # one line per request, never bodies, query strings or keys
    # gunicorn
    "HOST": Setting("0.0.0.0", text, server=True),
    "PORT": Setting(8000, whole(1, 65535), server=True),
    "WORKERS": Setting(max(2, os.cpu_count() or 1), whole(1, 256), server=True),
    "TIMEOUT": Setting(30, whole(), server=True),
    "GRACEFUL_TIMEOUT": Setting(30, whole(), server=True),
    "KEEPALIVE": Setting(5, whole(0), server=True),
    "MAX_REQUESTS": Setting(0, whole(0), server=True),
    "MAX_REQUESTS_JITTER": Setting(0, whole(0), server=True),
    "LIMIT_REQUEST_LINE": Setting(4094, whole(0, 8190), server=True),
    "LIMIT_REQUEST_FIELDS": Setting(100, whole(1, 32768), server=True),
    "LIMIT_REQUEST_FIELD_SIZE": Setting(8190, whole(0), server=True),
    "PIDFILE": Setting(None, text, server=True),
}
# Earlier names, still read when the new one is not set.
RENAMED = {"FAST_PATH": "COMPILED_MODELS", "HOT_PATH": "DIRECT_PATH"}
DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings present in the environment, parsed; a bad value raises ConfigError."""
    environ = os.environ if environ is None else environ
    found = {}
    for old, new in RENAMED.items():
        if environ.get(old, "") != "" and environ.get(new, "") == "":
            found[new] = SETTINGS[new].parse(old, environ[old])
    for name, setting in SETTINGS.items():
        if environ.get(name, "") != "":
            found[name] = setting.parse(name, environ[name])
    return found


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting: the defaults, overridden by the environment."""
    return {**DEFAULTS, **from_environment(environ)}
