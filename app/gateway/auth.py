"""API keys: who may call the protected endpoints.

Off unless keys are configured (``API_KEYS`` or ``API_KEYS_FILE``; the admin API's are
``ADMIN_API_KEYS`` or ``ADMIN_API_KEYS_FILE``, a second set read the same way). A client presents a key as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Keys are kept only as SHA-256 digests
and compared in constant time against every configured key, so neither the comparison nor the
loop leaks which key, or how much of one, matched. A key is never logged: requests are told
apart by ``key_id``, a short digest.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError, check_keys

REALM = 'Bearer realm="model-server"'
# Which endpoints are open without a key is the route table's ``open`` (app/http/routes.py): the
# probes, the page and the docs, which hold no predictions and no model internals.


def read_key_file(path: str, setting: str = "API_KEYS_FILE") -> tuple[str, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{setting} {path} cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{setting} {path} is not UTF-8 text (byte {exc.start})") from None
    keys = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    check_keys(f"{setting} {path}", keys)
    return keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class ApiKeys:
    def __init__(self, keys: tuple[str, ...]):
        self._digests = [_digest(key) for key in keys]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], setting: str = "API_KEYS") -> "ApiKeys | None":
        """The keys of ``setting`` and ``<setting>_FILE``, or None when none is configured."""
        keys = tuple(config.get(setting) or ())
        if keys:
            check_keys(setting, keys)
        if config.get(f"{setting}_FILE"):
            keys += read_key_file(config[f"{setting}_FILE"], f"{setting}_FILE")
        return cls(keys) if keys else None

    def __repr__(self) -> str:  # never the keys themselves, even in a debugger or a log
        return f"ApiKeys({len(self._digests)} keys)"

    def allows(self, key: str) -> bool:
        presented = _digest(key)
        matched = False
        for digest in self._digests:  # no early exit: the time does not depend on which key matched
            matched |= hmac.compare_digest(presented, digest)
        return matched


def presented_key(environ: Mapping[str, Any]) -> str | None:
    """The key in the request, '' for a header that is present but empty, None for none."""
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip()
    return environ.get("HTTP_X_API_KEY")  # another scheme (Basic, ...) is no key at all (RFC 6750)


def key_id(key: str) -> str:
    """A short, stable name for a key: enough to tell clients apart in limits, not to recover it."""
    return hashlib.sha256(b"key-id:" + key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
