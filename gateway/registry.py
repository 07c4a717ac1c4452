"""Forget targets as tenants see them: ownership, visibility, activation, and the detector's index.

The store is the source of truth; this class keeps an in-memory view of activations (read on
every request) and keeps the detector's index in step with the store on every write.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace

from detectors.aliases import expand_aliases, probe_prompts
from detectors.types import TargetSpec

from .store import GLOBAL, Store, TargetRecord


class TargetNotFound(LookupError):
    pass


class TargetForbidden(PermissionError):
    pass


@dataclass(frozen=True)
class Caller:
    """Who is acting: a tenant, or the admin (tenant_id None)."""

    tenant_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


class Registry:
    def __init__(self, store: Store, detector):
        self.store = store
        self.detector = detector
        self._lock = threading.Lock()
        self._targets: dict[str, TargetRecord] = {}
        self._overrides: dict[tuple[str, str], bool] = {}

    def load(self, progress: bool = False) -> int:
        """Rebuilds the in-memory view and the detector index from the store (server start)."""
        records = self.store.targets()
        with self._lock:
            self._targets = {r.id: r for r in records}
            self._overrides = self.store.activations()
        self.detector.add_many([_spec(r) for r in records], progress=progress)
        return len(records)

    # ---- reads --------------------------------------------------------------------------------

    def all(self) -> list[TargetRecord]:
        with self._lock:
            return list(self._targets.values())

    def visible(self, tenant_id: str) -> list[TargetRecord]:
        with self._lock:
            return [t for t in self._targets.values() if t.owner in (tenant_id, GLOBAL)]

    def is_active(self, tenant_id: str, target: TargetRecord) -> bool:
        if target.owner == GLOBAL and target.mandatory:
            return True
        return self._overrides.get((tenant_id, target.id), target.default_active)

    def active(self, tenant_id: str) -> list[TargetRecord]:
        return [t for t in self.visible(tenant_id) if self.is_active(tenant_id, t)]

    def active_ids(self, tenant_id: str) -> set[str]:
        return {t.id for t in self.active(tenant_id)}

    def get_visible_unchecked(self, target_id: str) -> TargetRecord | None:
        with self._lock:
            return self._targets.get(target_id)

    def get(self, caller: Caller, target_id: str) -> TargetRecord:
        with self._lock:
            target = self._targets.get(target_id)
        # One answer for "absent" and "someone else's", so ids cannot be probed.
        if target is None or not (caller.is_admin or target.owner in (caller.tenant_id, GLOBAL)):
            raise TargetNotFound(target_id)
        return target

    # ---- writes -------------------------------------------------------------------------------

    def create(self, owner: str, *, name: str, aliases: list[str], description: str, examples: list[str],
               forbidden: list[str], negatives: list[str], policy: dict, mandatory: bool) -> TargetRecord:
        record = TargetRecord(
            id="ft_" + secrets.token_hex(12), owner=owner, name=name,
            aliases=expand_aliases(name, aliases), description=description,
            examples=examples or probe_prompts(name, description), forbidden=forbidden, negatives=negatives,
            policy=policy, mandatory=mandatory, status="ready", created_at=int(time.time()),
        )
        self.store.add_target(record)
        self.detector.add(_spec(record))
        with self._lock:
            self._targets[record.id] = record
        return record

    def update(self, caller: Caller, target_id: str, **changes) -> TargetRecord:
        current = self._owned(caller, target_id)
        fields = {**current.__dict__, **{k: v for k, v in changes.items() if v is not None}}
        if "aliases" in changes or "name" in changes:
            fields["aliases"] = expand_aliases(fields["name"], changes.get("aliases") or current.aliases)
        record = TargetRecord(**fields)
        self.store.update_target(record)
        self.detector.remove(record.id)
        self.detector.add(_spec(record))
        with self._lock:
            self._targets[record.id] = record
        return record

    def set_status(self, target_id: str, status: str, persist: bool = True) -> None:
        if persist:
            self.store.set_status(target_id, status)
        with self._lock:
            target = self._targets.get(target_id)
            if target is not None:
                self._targets[target_id] = replace(target, status=status)

    def delete(self, caller: Caller, target_id: str) -> None:
        self._owned(caller, target_id)
        self.store.delete_target(target_id)
        self.detector.remove(target_id)
        with self._lock:
            self._targets.pop(target_id, None)
            self._overrides = {k: v for k, v in self._overrides.items() if k[1] != target_id}

    def set_active(self, tenant_id: str, caller: Caller, target_id: str, active: bool) -> TargetRecord:
        target = self.get(Caller(tenant_id), target_id)
        if target.owner == GLOBAL and target.mandatory and not active:
            raise TargetForbidden("This forget target is mandatory and cannot be deactivated.")
        self.store.set_activation(tenant_id, target_id, active)
        with self._lock:
            self._overrides[(tenant_id, target_id)] = active
        return target

    def forget_tenant(self, tenant_id: str) -> None:
        for target_id in self.store.delete_tenant(tenant_id):
            self.detector.remove(target_id)
        with self._lock:
            self._targets = {k: v for k, v in self._targets.items() if v.owner != tenant_id}
            self._overrides = {k: v for k, v in self._overrides.items() if k[0] != tenant_id}

    def _owned(self, caller: Caller, target_id: str) -> TargetRecord:
        target = self.get(caller, target_id)
        if target.owner != (caller.tenant_id or GLOBAL) and not caller.is_admin:
            raise TargetForbidden("Global forget targets can only be changed with the admin key.")
        return target


def _spec(record: TargetRecord) -> TargetSpec:
    # A conversation that quotes a forbidden string touches the target as surely as one that names it.
    aliases = tuple(dict.fromkeys([*record.aliases, *record.forbidden]))
    return TargetSpec(id=record.id, owner=record.owner, name=record.name, aliases=aliases,
                      description=record.description, examples=tuple(record.examples),
                      negatives=tuple(record.negatives))
