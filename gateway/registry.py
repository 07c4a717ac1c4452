"""Forget targets as tenants see them: ownership, visibility, activation, and immutable snapshots.

The store is the source of truth. In memory the registry keeps one immutable `_State` (per owner:
its records, its detector `OwnerIndex` and its guard patterns; per tenant: the targets it switched
off) and replaces it by reference on every write. A request takes one `Snapshot` of its tenant
(its own owner state, the global one, its switched-off set) and reads only that from planning to
its last token, so no write can change what it sees half-way, and nothing it reads is mutated.

Writes embed the target first (slow, outside any lock), then, under one writer lock, commit to the
store and publish the new state: a write returns only once its snapshot is live. Each owner's index
is a large base plus a small delta (see `detectors.index`), so a write rebuilds only the delta and
write-to-live stays flat up to 10^5 targets per tenant; a background thread folds the delta into a
new base when it grows.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Mapping

from detectors.aliases import expand_aliases, probe_prompts
from detectors.index import EMPTY_INDEX, DetectionView, Layer, OwnerIndex, PreparedTarget
from detectors.types import TargetSpec
from filters import GuardPatterns

from .store import GLOBAL, Store, TargetRecord

log = logging.getLogger("lethe.registry")


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


def _patterns(layer: Layer) -> GuardPatterns:
    """What the answer guard watches for in a layer: every name, alias and forbidden string."""
    return GuardPatterns(sorted({p for t in layer.targets.values() for p in (t.spec.name, *t.spec.aliases)}))


_NO_PATTERNS = _patterns(EMPTY_INDEX.base)


@dataclass(frozen=True, eq=False)
class OwnerState:
    """One owner's targets, immutable: records by id, the detector index, guard patterns per layer."""

    records: Mapping[str, TargetRecord] = field(default_factory=dict)
    index: OwnerIndex = EMPTY_INDEX
    watched: tuple[GuardPatterns, GuardPatterns] = (_NO_PATTERNS, _NO_PATTERNS)

    def with_index(self, records: Mapping[str, TargetRecord], index: OwnerIndex) -> OwnerState:
        # Unchanged layers keep their compiled patterns: a write recompiles only the delta's.
        base = self.watched[0] if index.base is self.index.base else _patterns(index.base)
        delta = self.watched[1] if index.delta is self.index.delta else _patterns(index.delta)
        return OwnerState(records, index, (base, delta))


_NO_OWNER = OwnerState()


@dataclass(frozen=True, eq=False)
class _State:
    owners: Mapping[str, OwnerState]
    inactive: Mapping[str, frozenset[str]]  # tenant id -> ids of the targets it switched off


@dataclass(frozen=True, eq=False)
class Snapshot:
    """What one request of one tenant sees, from planning to its last token. Immutable."""

    tenant_id: str
    owners: tuple[OwnerState, ...]  # the tenant's own, then the global one
    inactive: frozenset[str]

    @cached_property
    def view(self) -> DetectionView:
        return DetectionView(tuple(o.index for o in self.owners), self.inactive, asker=self.tenant_id)

    @cached_property
    def watched(self) -> GuardPatterns:
        return GuardPatterns.combine([p for o in self.owners for p in o.watched])

    @property
    def has_active(self) -> bool:
        return not self.view.empty

    def record(self, target_id: str) -> TargetRecord | None:
        for owner in self.owners:
            found = owner.records.get(target_id)
            if found is not None:
                return found
        return None


class Registry:
    def __init__(self, store: Store, detector):
        self.store = store
        self.detector = detector
        self._write = threading.Lock()  # one writer at a time; readers never lock
        self._state = _State({}, {})
        self._merging: set[str] = set()

    def load(self, progress: bool = False) -> int:
        """Rebuilds the in-memory state from the store (server start)."""
        records = self.store.targets()
        prepared = self.detector.prepare_many([_spec(r) for r in records], progress=progress)
        self.install(zip(records, prepared), self.store.activations())
        return len(records)

    def install(self, targets: Iterable[tuple[TargetRecord, PreparedTarget]],
                activations: Mapping[tuple[str, str], bool] = {}, layers: Mapping[str, Layer] = {}) -> None:
        """Replaces the in-memory state with prepared targets, grouped by owner, one base layer
        each. `layers` may give an owner's base already built (a benchmark's cached index); that
        owner's other targets go into its delta."""
        grouped: dict[str, tuple[dict, list]] = {}
        for record, target in targets:
            recs, prepared = grouped.setdefault(record.owner, ({}, []))
            recs[record.id] = record
            prepared.append(target)
        def index(owner: str, prepared: list[PreparedTarget]) -> OwnerIndex:
            if owner not in layers:
                return OwnerIndex.build(prepared)
            base = layers[owner]
            return OwnerIndex(base).with_changes([p for p in prepared if base.targets.get(p.id) is not p])

        owners = {o: _NO_OWNER.with_index(recs, index(o, prepared)) for o, (recs, prepared) in grouped.items()}
        mandatory = {i for i, r in grouped.get(GLOBAL, ({}, []))[0].items() if r.mandatory}
        inactive: dict[str, set[str]] = {}
        for (tenant_id, target_id), active in activations.items():
            if not active and target_id not in mandatory:
                inactive.setdefault(tenant_id, set()).add(target_id)
        with self._write:
            self._state = _State(owners, {t: frozenset(ids) for t, ids in inactive.items()})

    # ---- reads (lock-free: one reference read of the current state) ---------------------------

    def snapshot(self, tenant_id: str) -> Snapshot:
        state = self._state
        owners = tuple(state.owners[o] for o in (tenant_id, GLOBAL) if o in state.owners)
        return Snapshot(tenant_id, owners, state.inactive.get(tenant_id, frozenset()))

    def all(self) -> list[TargetRecord]:
        return [r for o in self._state.owners.values() for r in o.records.values()]

    def visible(self, tenant_id: str) -> list[TargetRecord]:
        return [r for o in self.snapshot(tenant_id).owners for r in o.records.values()]

    def is_active(self, tenant_id: str, target: TargetRecord) -> bool:
        if target.owner == GLOBAL and target.mandatory:
            return True
        return target.id not in self._state.inactive.get(tenant_id, frozenset())

    def get_visible_unchecked(self, target_id: str) -> TargetRecord | None:
        return _find(self._state, target_id)

    def get(self, caller: Caller, target_id: str) -> TargetRecord:
        target = self.get_visible_unchecked(target_id)
        # One answer for "absent" and "someone else's", so ids cannot be probed.
        if target is None or not (caller.is_admin or target.owner in (caller.tenant_id, GLOBAL)):
            raise TargetNotFound(target_id)
        return target

    # ---- writes: embed outside the lock, then commit and publish under it ----------------------

    def create(self, owner: str, *, name: str, aliases: list[str], description: str, examples: list[str],
               forbidden: list[str], negatives: list[str], mandatory: bool) -> TargetRecord:
        record = TargetRecord(
            id="ft_" + secrets.token_hex(12), owner=owner, name=name, given_aliases=list(aliases),
            aliases=expand_aliases(name, aliases), description=description,
            examples=examples or probe_prompts(name, description), forbidden=forbidden, negatives=negatives,
            mandatory=mandatory, status="ready", created_at=int(time.time()),
        )
        prepared = self.detector.prepare(_spec(record))
        with self._write:
            self.store.add_target(record)
            self._publish_owner(owner, upserts={record.id: (record, prepared)})
        return record

    def update(self, caller: Caller, target_id: str, **changes) -> TargetRecord:
        current = self._owned(caller, target_id)
        changes = {k: v for k, v in changes.items() if v is not None}
        fields = {**current.__dict__, **changes}
        if "aliases" in changes:
            fields["given_aliases"] = list(changes["aliases"])
        if "aliases" in changes or "name" in changes:
            # From what the user gave, never from the expanded list: a renamed target keeps no
            # alias of its old name, and "Potter's" does not become "Potter's's".
            fields["aliases"] = expand_aliases(fields["name"], fields["given_aliases"])
        generated = current.examples == probe_prompts(current.name, current.description)
        if generated and "examples" not in changes and ("name" in changes or "description" in changes):
            # Generated from the old name: they would keep the old name firing semantically.
            fields["examples"] = probe_prompts(fields["name"], fields["description"])
        fields["knowledge"] = fields["knowledge_model"] = None  # the store drops it too: probed again
        record = TargetRecord(**fields)
        prepared = self.detector.prepare(_spec(record))
        with self._write:
            if _find(self._state, target_id) is None:  # deleted while this edit was being embedded
                raise TargetNotFound(target_id)
            record = replace(record, status=_find(self._state, target_id).status)
            self.store.update_target(record)
            self._publish_owner(record.owner, upserts={record.id: (record, prepared)},
                                activate=record.id if record.mandatory else None)
        return record

    def set_status(self, target_id: str, status: str, persist: bool = True) -> None:
        with self._write:
            target = _find(self._state, target_id)
            if target is None:
                return
            if persist:
                self.store.set_status(target_id, status)
            self._replace_record(replace(target, status=status))

    def set_knowledge(self, asked: TargetRecord, model_id: str, terms) -> bool:
        """Stores and publishes what the model knows about a target, as it was when the model was
        asked; false if it was deleted or renamed meanwhile (the new name is asked again)."""
        with self._write:
            target = _find(self._state, asked.id)
            if target is None or (target.name, target.aliases) != (asked.name, asked.aliases):
                return False
            if not self.store.put_knowledge(asked.id, model_id, terms):
                return False
            self._replace_record(replace(target, knowledge=terms, knowledge_model=model_id))
        return True

    def _replace_record(self, record: TargetRecord) -> None:
        # Only the record changes, not what detection or the guard's watched names read.
        owner = self._state.owners[record.owner]
        self._set_owner(record.owner, OwnerState({**owner.records, record.id: record}, owner.index, owner.watched))

    def delete(self, caller: Caller, target_id: str) -> None:
        target = self._owned(caller, target_id)
        with self._write:
            if _find(self._state, target_id) is None:
                raise TargetNotFound(target_id)
            self.store.delete_target(target_id)
            self._publish_owner(target.owner, removals={target_id}, activate=target_id)

    def set_active(self, tenant_id: str, caller: Caller, target_id: str, active: bool) -> TargetRecord:
        target = self.get(Caller(tenant_id), target_id)
        if target.owner == GLOBAL and target.mandatory and not active:
            raise TargetForbidden("This forget target is mandatory and cannot be deactivated.")
        with self._write:
            if _find(self._state, target_id) is None:
                raise TargetNotFound(target_id)
            self.store.set_activation(tenant_id, target_id, active)
            state = self._state
            current = state.inactive.get(tenant_id, frozenset())
            ids = current | {target_id} if not active else current - {target_id}
            self._state = _State(state.owners, {**state.inactive, tenant_id: ids})
        return target

    def forget_tenant(self, tenant_id: str) -> None:
        with self._write:
            self.store.delete_tenant(tenant_id)
            state = self._state
            self._state = _State({o: s for o, s in state.owners.items() if o != tenant_id},
                                 {t: ids for t, ids in state.inactive.items() if t != tenant_id})

    def wait_merged(self, timeout: float = 60.0) -> None:
        """Blocks until no background merge is running (for tools and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._merging and time.monotonic() < deadline:
            time.sleep(0.01)

    # ---- publishing (callers hold self._write) -----------------------------------------------

    def _set_owner(self, owner: str, owner_state: OwnerState) -> None:
        state = self._state
        self._state = _State({**state.owners, owner: owner_state}, state.inactive)

    def _publish_owner(self, owner: str, upserts: dict | None = None, removals: set[str] = frozenset(),
                       activate: str | None = None) -> None:
        upserts = upserts or {}
        current = self._state.owners.get(owner, _NO_OWNER)
        records = {k: v for k, v in current.records.items() if k not in removals}
        records.update({k: record for k, (record, _) in upserts.items()})
        index = current.index.with_changes([p for _, p in upserts.values()], removals)
        self._set_owner(owner, current.with_index(records, index))
        if activate is not None:  # deleted, or made mandatory: no tenant's switch applies any more
            state = self._state
            self._state = _State(state.owners, {t: ids - {activate} if activate in ids else ids
                                                for t, ids in state.inactive.items()})
        if index.needs_merge and owner not in self._merging:
            self._merging.add(owner)
            threading.Thread(target=self._merge, args=(owner,), name=f"lethe-merge-{owner}", daemon=True).start()

    def _merge(self, owner: str) -> None:
        """Folds an owner's delta into a new base off the request path, then swaps it in, replaying
        the writes that landed meanwhile."""
        try:
            while True:
                start = self._state.owners.get(owner)
                if start is None:
                    return
                merged = start.index.merged()
                merged_patterns = _patterns(merged.base)
                with self._write:
                    current = self._state.owners.get(owner)
                    if current is None:
                        return
                    index = merged if current.index is start.index else current.index.rebased(merged)
                    staged = OwnerState(current.records, merged, (merged_patterns, _NO_PATTERNS))
                    self._set_owner(owner, staged.with_index(current.records, index))
                    if not index.needs_merge:
                        return
        except Exception:  # the unmerged state stays correct, only slower to write
            log.exception("merging the index of %s failed", owner)
        finally:
            with self._write:
                self._merging.discard(owner)

    def _owned(self, caller: Caller, target_id: str) -> TargetRecord:
        target = self.get(caller, target_id)
        if target.owner != (caller.tenant_id or GLOBAL) and not caller.is_admin:
            raise TargetForbidden("Global forget targets can only be changed with the admin key.")
        return target


def _find(state: _State, target_id: str) -> TargetRecord | None:
    for owner in state.owners.values():
        found = owner.records.get(target_id)
        if found is not None:
            return found
    return None


def _spec(record: TargetRecord) -> TargetSpec:
    # A conversation that quotes a forbidden string touches the target as surely as one that names it.
    aliases = tuple(dict.fromkeys([*record.aliases, *record.forbidden]))
    return TargetSpec(id=record.id, owner=record.owner, name=record.name, aliases=aliases,
                      description=record.description, examples=tuple(record.examples),
                      negatives=tuple(record.negatives))
