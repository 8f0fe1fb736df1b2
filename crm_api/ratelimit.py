"""A per-token rate limit: at most N requests per window of S seconds (``CRM_API_RATE_LIMIT``, "100/10").

Fixed windows. Without Redis they are counted in this process under a lock: tiny, thread-safe, no
background thread (stale windows are dropped when the table grows). With ``CRM_REDIS_URL`` set
(``make cluster``: two app processes behind nginx) they are counted in Redis, one key per token
and window, so that the replicas share one limit (:class:`RedisRateLimiter`; decision 0039).
Headers follow the IETF draft ``RateLimit-Limit/Remaining/Reset`` (Reset in seconds), and a
refused request also gets ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

LOG = logging.getLogger("kestrel")

PRUNE_ABOVE = 10_000
"""Windows kept before the ended ones are dropped (one per token seen in the last window)."""


@dataclass(frozen=True)
class RateDecision:
    """One request's place in its window."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """The RateLimit headers (and Retry-After when refused)."""
        found = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                 "RateLimit-Reset": str(self.reset_seconds)}
        if not self.allowed:
            found["Retry-After"] = str(self.reset_seconds)
        return found


class Limiter(Protocol):
    """What the API asks of a rate limiter."""

    limit: int
    window: float

    def hit(self, key: object) -> RateDecision:
        """Count one request of ``key`` and say whether it is allowed."""
        ...


class RateLimiter:
    """Counts requests per key in fixed windows of ``window`` seconds, in this process."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[object, tuple[float, int]] = {}

    def hit(self, key: object) -> RateDecision:
        """Count one request of ``key`` and say whether it is allowed."""
        now = self._clock()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= self.window:
                started, count = now, 0
            allowed = count < self.limit
            if allowed:
                count += 1
            self._windows[key] = (started, count)
            if len(self._windows) > PRUNE_ABOVE:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < self.window}
        reset = max(1, math.ceil(started + self.window - now))
        return RateDecision(allowed, self.limit, self.limit - count, reset)


class RedisRateLimiter:
    """Counts requests per key in fixed windows of ``window`` seconds, in Redis: every process adds up.

    A window is ``floor(now / window)`` of the Redis server's clock (all replicas agree on it);
    its counter is one key, incremented and given an expiry in one transaction. A refused request
    counts too (it cannot lengthen the wait: the window ends when it ends). If Redis does not
    answer, the request is let through and the failure logged: the limit protects the service,
    it must not take the API down with the cache.
    """

    def __init__(self, limit: int, window: float, client: Any, *, namespace: str = "kestrel") -> None:
        self.limit = limit
        self.window = window
        self._client = client
        self._prefix = f"{namespace}.ratelimit"

    def hit(self, key: object) -> RateDecision:
        """Count one request of ``key`` and say whether it is allowed."""
        from redis.exceptions import RedisError

        try:
            seconds, micros = self._client.time()
            now = seconds + micros / 1_000_000
            index = math.floor(now / self.window)
            counter = f"{self._prefix}.{key}.{index}"
            with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, max(1, math.ceil(self.window)) + 1)
                count = int(pipe.execute()[0])
        except RedisError as error:
            LOG.warning("rate limit not counted, Redis did not answer: %s", error)
            return RateDecision(True, self.limit, self.limit, max(1, math.ceil(self.window)))
        reset = max(1, math.ceil((index + 1) * self.window - now))
        allowed = count <= self.limit
        return RateDecision(allowed, self.limit, max(0, self.limit - count), reset)


def make_rate_limiter(limit: int, window: float, redis_url: str | None, namespace: str = "kestrel") -> Limiter:
    """A limiter in Redis when ``redis_url`` is given (counts shared by every process), else in this process."""
    if not redis_url:
        return RateLimiter(limit, window)
    from redis import Redis

    return RedisRateLimiter(limit, window, Redis.from_url(redis_url, socket_timeout=2.0), namespace=namespace)
