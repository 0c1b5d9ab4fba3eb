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
}


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
}


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings present in the environment, parsed; a bad value raises ConfigError."""
    environ = os.environ if environ is None else environ
    return {name: parse(name, environ[name]) for name, parse in PARSERS.items() if environ.get(name, "") != ""}
