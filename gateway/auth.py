"""Bearer-key authentication as FastAPI dependencies: tenant keys from the store, the admin key from env.

Keys are stored as SHA-256 hashes and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from fastapi import Request

from .errors import APIError


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    policy: dict = field(default_factory=dict)  # overrides of the server's response policy


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(401, "You didn't provide an API key. Provide it as 'Authorization: Bearer YOUR_KEY'.",
                       type="authentication_error", code="invalid_api_key")
    return key.strip()


def _invalid_key() -> APIError:
    return APIError(401, "Incorrect API key provided.", type="authentication_error", code="invalid_api_key")


def _is_admin_key(request: Request, key: str) -> bool:
    admin_hash = request.app.state.admin_key_hash
    return admin_hash is not None and hmac.compare_digest(hash_key(key), admin_hash)


def _tenant_for(request: Request, key: str) -> Tenant | None:
    digest = hash_key(key)
    record = request.app.state.store.tenant_by_key_hash(digest)
    return Tenant(record.id, record.name, record.policy) if record else None


def require_tenant(request: Request) -> Tenant:
    tenant = _tenant_for(request, bearer_key(request))
    if tenant is None:
        raise _invalid_key()
    request.state.tenant_id = tenant.id
    return tenant


def require_admin(request: Request) -> None:
    if not _is_admin_key(request, bearer_key(request)):
        raise _invalid_key()
    request.state.tenant_id = "admin"


def require_caller(request: Request) -> Tenant | None:
    """A tenant, or None for the admin."""
    key = bearer_key(request)
    if _is_admin_key(request, key):
        request.state.tenant_id = "admin"
        return None
    tenant = _tenant_for(request, key)
    if tenant is None:
        raise _invalid_key()
    request.state.tenant_id = tenant.id
    return tenant
