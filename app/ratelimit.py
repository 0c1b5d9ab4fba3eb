"""Rate limits per API key (or, without authentication, per client address).

Built on ``limits``, the library under Flask-Limiter, called from the WSGI layer so that one check
covers the hot path and Flask alike. With the default ``memory://`` storage each gunicorn worker
counts on its own, so a client can get up to WORKERS times the limit; a shared storage
(``RATE_LIMIT_STORAGE_URI=redis://host:6379``, with the ``redis`` package installed) makes the
limit exact across workers and servers.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from limits import parse_many, storage, strategies

from .config import ConfigError

log = logging.getLogger("app.ratelimit")

STRATEGIES = {
    "fixed-window": strategies.FixedWindowRateLimiter,
    "sliding-window-counter": strategies.SlidingWindowCounterRateLimiter,
    "moving-window": strategies.MovingWindowRateLimiter,
}


@dataclass(frozen=True)
class Refusal:
    limit: str
    retry_after: int  # whole seconds, as the Retry-After header wants


class RateLimiter:
    def __init__(self, text: str, storage_uri: str, strategy: str):
        self.limits = parse_many(text)
        try:
            self.storage = storage.storage_from_string(storage_uri)
        except Exception as exc:  # the library raises several types for a bad URI or a missing driver
            raise ConfigError(f"RATE_LIMIT_STORAGE_URI {storage_uri.split('@')[-1]!r} is not usable: {exc}") from None
        self.limiter = STRATEGIES[strategy](self.storage)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "RateLimiter | None":
        if not config.get("RATE_LIMIT"):
            return None
        return cls(config["RATE_LIMIT"], config["RATE_LIMIT_STORAGE_URI"], config["RATE_LIMIT_STRATEGY"])

    def hit(self, client: str) -> Refusal | None:
        """Count one request for ``client``; a Refusal if any of the limits is exhausted."""
        try:
            for limit in self.limits:
                if not self.limiter.hit(limit, client):
                    reset = self.limiter.get_window_stats(limit, client).reset_time
                    return Refusal(str(limit), max(1, math.ceil(reset - time.time())))
        except Exception as exc:  # storage down (e.g. Redis): serve rather than fail every request
            log.error("rate limit storage failed, request let through: %s: %s", type(exc).__name__, exc)
        return None
