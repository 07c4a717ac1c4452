"""Bearer-key authentication as a FastAPI dependency."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request

from .errors import APIError


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class StaticKeys:
    """Keys from config/env, all mapping to one default tenant."""

    def __init__(self, keys: list[str]):
        self._hashes = [hash_key(k) for k in keys]

    def tenant_for(self, key: str) -> Tenant | None:
        digest = hash_key(key)
        # Compare against every stored hash so timing does not reveal which key nearly matched.
        ok = False
        for stored in self._hashes:
            ok |= hmac.compare_digest(digest, stored)
        return Tenant("default", "default") if ok else None


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "You didn't provide an API key. Provide it as 'Authorization: Bearer YOUR_KEY'.",
                       type="authentication_error", code="invalid_api_key")
    return key.strip()


def require_tenant(request: Request) -> Tenant:
    key = bearer_key(request)
    tenant = request.app.state.keys.tenant_for(key)
    if tenant is None:
        raise APIError(401, "Incorrect API key provided.", type="authentication_error", code="invalid_api_key")
    request.state.tenant_id = tenant.id
    return tenant
