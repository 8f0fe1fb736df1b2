"""A per-token rate limit: at most N requests per window of S seconds (``CRM_API_RATE_LIMIT``, "100/10").

Fixed windows, counted in this process under a lock: tiny, thread-safe, no background thread
(stale windows are dropped when the table grows). Several processes each count their own
share; a later issue moves the counters to Redis so that they add up across processes.
Headers follow the IETF draft ``RateLimit-Limit/Remaining/Reset`` (Reset in seconds), and a
refused request also gets ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


class RateLimiter:
    """Counts requests per key in fixed windows of ``window`` seconds."""

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
