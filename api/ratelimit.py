"""Fixed-window request counting (per tenant, per client address for failed logins): in Redis when there is one (shared by every
API process), else in this process."""

from __future__ import annotations

import threading
import time
from typing import Protocol

WINDOW_S = 60


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int) -> int | None:
        """Count one request; None if allowed, else seconds until the window resets."""

    def peek(self, key: str, limit: int) -> int | None:
        """Like ``hit`` for a request that would be the next one, without counting it."""


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW_S)
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] == window}
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        return None if count <= limit else max(1, int((window + 1) * WINDOW_S - now))

    def peek(self, key: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW_S)
        with self._lock:
            count = self._counts.get((key, window), 0)
        return None if count < limit else max(1, int((window + 1) * WINDOW_S - now))


class RedisRateLimiter:
    def __init__(self, url: str):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._fallback = MemoryRateLimiter()

    def hit(self, key: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW_S)
        name = f"hwnas:ratelimit:{key}:{window}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, WINDOW_S * 2)
            count = int(pipe.execute()[0])
        except Exception:  # Redis down: limit per process rather than fail every request
            return self._fallback.hit(key, limit)
        return None if count <= limit else max(1, int((window + 1) * WINDOW_S - now))

    def peek(self, key: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW_S)
        try:
            count = int(self._redis.get(f"hwnas:ratelimit:{key}:{window}") or 0)
        except Exception:
            return self._fallback.peek(key, limit)
        return None if count < limit else max(1, int((window + 1) * WINDOW_S - now))
