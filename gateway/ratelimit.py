"""Per-tenant rate limits: a token bucket per (tenant, kind of work), kept in memory.

Generation and target registration are limited apart, so a tenant registering targets in bulk
cannot starve its own chat traffic, and no tenant can take the engine or the index from others.
"""

from __future__ import annotations

import math
import threading
import time

from fastapi import Depends, Request

from .auth import Tenant, require_caller, require_tenant
from .errors import APIError


class RateLimiter:
    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Takes one unit for `key`; returns 0, or the seconds to wait when the bucket is empty."""
        if self.capacity <= 0:  # 0 means unlimited
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.refill_per_second
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0


def _limited(request: Request, kind: str, key: str, what: str) -> None:
    wait = request.app.state.rate_limits[kind].acquire(key)
    if wait:
        raise APIError(429, f"Rate limit reached for {what}; retry in {math.ceil(wait)} s.", type="rate_limit_error",
                       code="rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})


def limit_generation(request: Request, tenant: Tenant = Depends(require_tenant)) -> Tenant:
    _limited(request, "generation", tenant.id, "requests")
    return tenant


def limit_target_writes(request: Request, tenant: Tenant | None = Depends(require_caller)) -> Tenant | None:
    _limited(request, "target_writes", tenant.id if tenant else "admin", "forget-target changes")
    return tenant


def limit_tenant_target_writes(request: Request, tenant: Tenant = Depends(require_tenant)) -> Tenant:
    _limited(request, "target_writes", tenant.id, "forget-target changes")
    return tenant
