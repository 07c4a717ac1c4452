"""Admin surface: tenants and per-tenant activations, behind LETHE_ADMIN_KEY."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from ..auth import require_admin
from ..errors import APIError
from ..protocol import Activation, TenantCreate, TenantPatch
from ..store import TenantRecord
from .targets import set_activation_for

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


def _tenant_not_found(tenant_id: str) -> APIError:
    return APIError(404, f"No tenant found with id '{tenant_id}'.", param="tenant_id", code="tenant_not_found")


def _tenant_view(request: Request, tenant: TenantRecord) -> dict:
    policy = request.app.state.default_policy.merged(tenant.policy)
    return {"id": tenant.id, "object": "tenant", "name": tenant.name, "created_at": tenant.created_at,
            "policy": policy.as_dict()}


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, request: Request):
    tenant, key = await asyncio.to_thread(request.app.state.store.create_tenant, body.name,
                                          body.policy.stored() if body.policy else None)
    # The key is shown this once; only its hash is stored.
    return {**_tenant_view(request, tenant), "api_key": key}


@router.get("/tenants")
async def list_tenants(request: Request):
    tenants = await asyncio.to_thread(request.app.state.store.list_tenants)
    return {"object": "list", "data": [_tenant_view(request, t) for t in tenants]}


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: str, request: Request):
    tenant = await asyncio.to_thread(request.app.state.store.get_tenant, tenant_id)
    if tenant is None:
        raise _tenant_not_found(tenant_id)
    return _tenant_view(request, tenant)


@router.patch("/tenants/{tenant_id}")
async def update_tenant(tenant_id: str, body: TenantPatch, request: Request):
    store = request.app.state.store

    def update():
        tenant = store.get_tenant(tenant_id)
        if tenant is None:
            raise _tenant_not_found(tenant_id)
        store.set_tenant_policy(tenant_id, {**tenant.policy, **body.policy.stored()})
        for target in request.app.state.registry.all():
            if target.owner == tenant_id:  # steering switched on: its targets need vectors now
                request.app.state.steering.on_target_changed(target, changed=False)
        return store.get_tenant(tenant_id)

    return _tenant_view(request, await asyncio.to_thread(update))


@router.delete("/tenants/{tenant_id}")
async def delete_tenant(tenant_id: str, request: Request):
    if await asyncio.to_thread(request.app.state.store.get_tenant, tenant_id) is None:
        raise _tenant_not_found(tenant_id)
    await asyncio.to_thread(request.app.state.registry.forget_tenant, tenant_id)
    return {"id": tenant_id, "object": "tenant.deleted", "deleted": True}


@router.put("/tenants/{tenant_id}/forget-targets/{target_id}/activation")
async def set_tenant_activation(tenant_id: str, target_id: str, body: Activation, request: Request):
    if await asyncio.to_thread(request.app.state.store.get_tenant, tenant_id) is None:
        raise _tenant_not_found(tenant_id)
    return await set_activation_for(request.app.state.registry, tenant_id, target_id, body.active)
