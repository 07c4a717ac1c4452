"""ASGI middleware: body size limit, JSON bodies whatever their content type, per-request metrics
and a structured access log.

Written as plain ASGI (not BaseHTTPMiddleware) so streaming responses pass through untouched.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from .errors import APIError
from .metrics import Metrics

access_log = logging.getLogger("lethe.access")


class BodyTooLarge(Exception):
    pass


# What `curl -d` and bare clients send; every body this API takes is JSON, so it is read as JSON
# (as OpenAI's API does) and a body that is not JSON still gets the usual 400.
_NOT_DECLARED = (b"", b"application/x-www-form-urlencoded", b"text/plain")


def _as_json(scope) -> dict:
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
    declared = dict(scope.get("headers") or []).get(b"content-type", b"")
    if declared.split(b";")[0].strip().lower() not in _NOT_DECLARED:
        return scope
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


class GatewayMiddleware:
    def __init__(self, app, metrics: Metrics, max_body_bytes: int):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = {"code": 500}
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            status["code"] = 413
            return self._record(scope, status["code"], started, request_id)
        received = 0
        scope = _as_json(scope)

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            await self._too_large(send)
            status["code"] = 413
        finally:
            self._record(scope, status["code"], started, request_id)

    async def _too_large(self, send) -> None:
        err = APIError(413, f"Request body exceeds {self.max_body_bytes} bytes.", code="request_too_large")
        body = json.dumps(err.body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope, status: int, started: float, request_id: str) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(path, str(status)).inc()
        self.metrics.latency.labels(path).observe(elapsed)
        # Only routing facts: prompts, completions and keys never reach the log.
        tenant = (scope.get("state") or {}).get("tenant_id")
        access_log.info(json.dumps({"request_id": request_id, "method": scope["method"], "route": path,
                                    "status": status, "ms": round(elapsed * 1000, 2), "tenant": tenant}))
