"""Every setting the service reads, its default, and how it is parsed from the environment.

Order of precedence (as in the Flask tutorial): these defaults, then environment variables,
then the ``test_config`` passed to ``create_app``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping

DEFAULTS: dict[str, Any] = {
    "MODELS_DIR": "models",
    "DEFAULT_MODEL": "pima-diabetes",
    "MODEL_VERSION": None,  # pin the default model to one version; None serves the newest
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,  # bytes in one request body
    "MAX_BATCH_ROWS": 10_000,
    "MAX_LISTED_ERRORS": 100,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",  # or json
    "EXIT_IF_UNREADY": True,  # refuse to start when the default model cannot be served
    "FAST_PATH": True,  # serve with the compiled NumPy path where it matches scikit-learn
    "HOT_PATH": True,  # answer plain single JSON predictions without Flask's request machinery
    # Authentication: off unless keys are given. Keys are secrets: never logged, never echoed.
    "API_KEYS": (),  # comma-separated in the environment
    "API_KEYS_FILE": None,  # one key per line; blank lines and # comments ignored
    # Rate limiting: off unless a limit is given, e.g. "100/second;3000/minute" (the limits syntax).
    "RATE_LIMIT": None,
    "RATE_LIMIT_STORAGE_URI": "memory://",  # per worker; redis://host:6379 shares one count
    "RATE_LIMIT_STRATEGY": "sliding-window-counter",
    "CORS_ORIGINS": (),  # off unless set: comma-separated origins allowed to call the API
    "METRICS": True,  # Prometheus /metrics
    "ACCESS_LOG": True,  # one line per request: method, path, status, time, request id (never bodies)
}

MIN_KEY_LENGTH = 16


class ConfigError(ValueError):
    """A setting with a value the service cannot use."""


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _boolean(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        value = text.strip().lower() if name != "LOG_LEVEL" else text.strip().upper()
        allowed = [c.upper() if name == "LOG_LEVEL" else c for c in choices]
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {text!r}")
        return value
    return parse


def _keys(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated secrets; messages name a key by its position, never by its value."""
    keys = tuple(part.strip() for part in text.split(",") if part.strip())
    check_keys(name, keys)
    return keys


def check_keys(source: str, keys: tuple[str, ...]) -> None:
    if not keys:
        raise ConfigError(f"{source} is set but holds no key")
    for position, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_LENGTH or any(c.isspace() or not c.isprintable() for c in key):
            raise ConfigError(
                f"{source}: key {position} must be at least {MIN_KEY_LENGTH} printable characters without spaces "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')")


def _origins(name: str, text: str) -> tuple[str, ...]:
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{name}: {origin!r} is not an origin like https://app.example.com (or *)")
    return origins


def _rate_limit(name: str, text: str) -> str:
    from limits import parse_many

    try:
        limits = parse_many(text)
    except ValueError:
        raise ConfigError(f"{name} must look like 100/second or 100/second;3000/minute, got {text!r}") from None
    if any(limit.amount < 1 for limit in limits):
        raise ConfigError(f"{name} must allow at least 1 request per period, got {text!r} (unset it to turn limits off)")
    return text.strip()


def _text(name: str, text: str) -> str:
    if not text.strip():
        raise ConfigError(f"{name} is set but empty")
    return text.strip()


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "MODELS_DIR": _text,
    "DEFAULT_MODEL": _text,
    "MODEL_VERSION": _positive_int,
    "MAX_CONTENT_LENGTH": _positive_int,
    "MAX_BATCH_ROWS": _positive_int,
    "MAX_LISTED_ERRORS": _positive_int,
    "LOG_LEVEL": _choice("debug", "info", "warning", "error"),
    "LOG_FORMAT": _choice("text", "json"),
    "EXIT_IF_UNREADY": _boolean,
    "FAST_PATH": _boolean,
    "HOT_PATH": _boolean,
    "API_KEYS": _keys,
    "API_KEYS_FILE": _text,
    "RATE_LIMIT": _rate_limit,
    "RATE_LIMIT_STORAGE_URI": _text,
    "RATE_LIMIT_STRATEGY": _choice("fixed-window", "sliding-window-counter", "moving-window"),
    "CORS_ORIGINS": _origins,
    "METRICS": _boolean,
    "ACCESS_LOG": _boolean,
}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings present in the environment, parsed; a bad value raises ConfigError."""
    environ = os.environ if environ is None else environ
    return {name: parse(name, environ[name]) for name, parse in PARSERS.items() if environ.get(name, "") != ""}
