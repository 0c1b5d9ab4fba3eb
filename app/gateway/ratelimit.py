"""Rate limits per API key (or, without authentication, per client address).

Built on ``limits``, the library under Flask-Limiter, called from the gateway so that one check
covers the direct path and Flask alike. With the default ``memory://`` storage each gunicorn worker
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

from ..config import ConfigError

log = logging.getLogger("app.ratelimit")
STORAGE_TIMEOUT = 0.25  # seconds
STORAGE_RETRY = 5.0  # seconds without limits after the storage failed, so an outage costs one timeout

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
        # A storage that accepts connections and never answers must not hang every request until
        # the worker timeout: Redis calls give up after STORAGE_TIMEOUT and the request goes through.
        options = {"socket_timeout": STORAGE_TIMEOUT, "socket_connect_timeout": STORAGE_TIMEOUT} \
            if storage_uri.startswith("redis") else {}
        try:
            self.storage = storage.storage_from_string(storage_uri, **options)
        except Exception as exc:  # the library raises several types for a bad URI or a missing driver
            raise ConfigError(f"RATE_LIMIT_STORAGE_URI {storage_uri.split('@')[-1]!r} is not usable: {exc}") from None
        self.limiter = STRATEGIES[strategy](self.storage)
        self._last_failure_log = -1e9
        self._skip_until = -1e9  # after a storage failure, do not ask it again for a few seconds

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "RateLimiter | None":
        if not config.get("RATE_LIMIT"):
            return None
        return cls(config["RATE_LIMIT"], config["RATE_LIMIT_STORAGE_URI"], config["RATE_LIMIT_STRATEGY"])

    def hit(self, client: str) -> Refusal | None:
        """Count one request for ``client``; a Refusal if any of the limits is exhausted.

        With several limits, all are tested before any is counted, so a request refused by one
        limit does not use up the others (as Flask-Limiter does it).
        """
        if time.monotonic() < self._skip_until:
            return None
        try:
            if len(self.limits) > 1:
                for limit in self.limits:
                    if not self.limiter.test(limit, client):
                        return self._refusal(limit, client)
            for limit in self.limits:
                if not self.limiter.hit(limit, client):
                    return self._refusal(limit, client)
        except Exception as exc:  # storage down (e.g. Redis): serve rather than fail every request
            now = time.monotonic()
            self._skip_until = now + STORAGE_RETRY
            if now - self._last_failure_log > 10:  # one line per 10 s, not one per request
                self._last_failure_log = now
                log.error("rate limit storage failed, requests let through: %s: %s", type(exc).__name__, exc)
        return None

    def _refusal(self, limit, client: str) -> Refusal:
        reset = self.limiter.get_window_stats(limit, client).reset_time
        return Refusal(str(limit), max(1, math.ceil(reset - time.time())))
