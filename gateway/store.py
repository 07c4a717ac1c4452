"""Persistence for tenants, keys, forget targets and per-tenant activations.

SQLite in WAL mode by default. Every write is one transaction, so a crash leaves either the
old or the new state, never half of one. The class talks plain SQL through a tiny surface
(`_tx`, `_rows`) so a PostgreSQL backend can reuse the same statements later.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from detectors.aliases import expand_aliases
from detectors.normalize import normalize
from steering.knowledge import FactTerms

from .auth import hash_key

GLOBAL = "global"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    policy TEXT NOT NULL DEFAULT '{}'  -- JSON: this tenant's overrides of the server's response policy
);
CREATE TABLE IF NOT EXISTS targets (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,            -- a tenant id, or 'global'
    name TEXT NOT NULL,
    spec TEXT NOT NULL,             -- JSON: aliases, given_aliases, description, examples, forbidden, negatives
    mandatory INTEGER NOT NULL DEFAULT 0,
    default_active INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS targets_owner ON targets(owner);
CREATE TABLE IF NOT EXISTS steering_vectors (
    target_id TEXT NOT NULL,
    model_id TEXT NOT NULL,         -- vectors belong to one model; another model recomputes its own
    data BLOB NOT NULL,
    PRIMARY KEY (target_id, model_id)
);
CREATE TABLE IF NOT EXISTS activations (
    tenant_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, target_id)
);
"""


@dataclass
class TargetRecord:
    id: str
    owner: str
    name: str
    aliases: list[str] = field(default_factory=list)  # expanded: the name, its variants, the given aliases
    given_aliases: list[str] = field(default_factory=list)  # as the user gave them, so an edit re-expands from these
    description: str = ""
    examples: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    mandatory: bool = False
    default_active: bool = True
    status: str = "ready"
    created_at: int = 0
    # What the served model answers about the target (steering.knowledge), and which model said it:
    # another model is probed again. None until the background stage has probed it.
    knowledge: FactTerms | None = None
    knowledge_model: str | None = None

    def spec_json(self) -> str:
        return json.dumps({"aliases": self.aliases, "given_aliases": self.given_aliases, "description": self.description,
                           "examples": self.examples, "forbidden": self.forbidden, "negatives": self.negatives})


@dataclass(frozen=True)
class TenantRecord:
    id: str
    name: str
    created_at: int
    policy: dict = field(default_factory=dict)


class Store:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.Lock()
        self._conn.executescript(_SCHEMA)  # idempotent; executescript commits on its own
        self._migrate()

    def _migrate(self) -> None:
        # Databases created before tenants had a policy gain the column with an empty override.
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(tenants)")}
        if "policy" not in columns:
            self._conn.execute("ALTER TABLE tenants ADD COLUMN policy TEXT NOT NULL DEFAULT '{}'")
        # Targets gain what the model knows about them (JSON: model_id, banned, context); NULL = not probed.
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(targets)")}
        if "knowledge" not in columns:
            self._conn.execute("ALTER TABLE targets ADD COLUMN knowledge TEXT")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self):
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # ---- tenants ------------------------------------------------------------------------------

    def create_tenant(self, name: str, policy: dict | None = None) -> tuple[TenantRecord, str]:
        """Returns the tenant and its API key; only the key's hash is kept."""
        tenant = TenantRecord("tn_" + secrets.token_hex(8), name, int(time.time()), dict(policy or {}))
        key = "sk-lethe-" + secrets.token_urlsafe(32)
        with self._tx() as c:
            c.execute("INSERT INTO tenants (id, name, key_hash, created_at, policy) VALUES (?, ?, ?, ?, ?)",
                      (tenant.id, name, hash_key(key), tenant.created_at, json.dumps(tenant.policy)))
        return tenant, key

    def set_tenant_policy(self, tenant_id: str, policy: dict) -> None:
        with self._tx() as c:
            c.execute("UPDATE tenants SET policy = ? WHERE id = ?", (json.dumps(policy), tenant_id))

    def list_tenants(self) -> list[TenantRecord]:
        return [_tenant(r) for r in self._rows(f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY created_at, id")]

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        rows = self._rows(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = ?", (tenant_id,))
        return _tenant(rows[0]) if rows else None

    def tenant_by_key_hash(self, key_hash: str) -> TenantRecord | None:
        rows = self._rows(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE key_hash = ?", (key_hash,))
        return _tenant(rows[0]) if rows else None

    def delete_tenant(self, tenant_id: str) -> list[str]:
        """Deletes the tenant with its targets and activations; returns the deleted target ids."""
        with self._tx() as c:
            ids = [r[0] for r in c.execute("SELECT id FROM targets WHERE owner = ?", (tenant_id,))]
            c.execute("DELETE FROM activations WHERE tenant_id = ?", (tenant_id,))
            c.executemany("DELETE FROM activations WHERE target_id = ?", [(i,) for i in ids])
            c.executemany("DELETE FROM steering_vectors WHERE target_id = ?", [(i,) for i in ids])
            c.execute("DELETE FROM targets WHERE owner = ?", (tenant_id,))
            c.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,))
        return ids

    # ---- targets ------------------------------------------------------------------------------

    def add_target(self, target: TargetRecord) -> None:
        with self._tx() as c:
            c.execute(
                f"INSERT INTO targets ({_TARGET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (target.id, target.owner, target.name, target.spec_json(), int(target.mandatory),
                 int(target.default_active), target.status, target.created_at),
            )

    def update_target(self, target: TargetRecord) -> None:
        with self._tx() as c:
            # An edit forgets what the model was asked about the old text: it is probed again.
            c.execute("UPDATE targets SET name = ?, spec = ?, mandatory = ?, default_active = ?, status = ?, "
                      "knowledge = NULL WHERE id = ?",
                      (target.name, target.spec_json(), int(target.mandatory), int(target.default_active),
                       target.status, target.id))

    def delete_target(self, target_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM activations WHERE target_id = ?", (target_id,))
            c.execute("DELETE FROM steering_vectors WHERE target_id = ?", (target_id,))
            c.execute("DELETE FROM targets WHERE id = ?", (target_id,))

    def get_target(self, target_id: str) -> TargetRecord | None:
        rows = self._rows(f"SELECT {_TARGET_COLUMNS} FROM targets WHERE id = ?", (target_id,))
        return _target(rows[0]) if rows else None

    def targets(self, owners: list[str] | None = None) -> list[TargetRecord]:
        if owners is None:
            rows = self._rows(f"SELECT {_TARGET_COLUMNS} FROM targets ORDER BY created_at, id")
        else:
            marks = ",".join("?" * len(owners))
            rows = self._rows(f"SELECT {_TARGET_COLUMNS} FROM targets WHERE owner IN ({marks}) ORDER BY created_at, id",
                              owners)
        return [_target(r) for r in rows]

    def count_targets(self, owner: str) -> int:
        return self._rows("SELECT COUNT(*) FROM targets WHERE owner = ?", (owner,))[0][0]

    def set_status(self, target_id: str, status: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE targets SET status = ? WHERE id = ?", (status, target_id))

    def put_knowledge(self, target_id: str, model_id: str, terms: FactTerms) -> bool:
        """Stores a target's fact terms unless it was deleted meanwhile; says whether it stored them."""
        data = json.dumps({"model_id": model_id, **terms.to_json()})
        with self._tx() as c:
            return c.execute("UPDATE targets SET knowledge = ? WHERE id = ?", (data, target_id)).rowcount > 0

    # ---- steering vectors ---------------------------------------------------------------------

    def put_steering(self, target_id: str, model_id: str, data: bytes) -> bool:
        """Stores vectors unless the target was deleted meanwhile; says whether it stored them."""
        with self._tx() as c:
            if c.execute("SELECT 1 FROM targets WHERE id = ?", (target_id,)).fetchone() is None:
                return False
            c.execute("INSERT OR REPLACE INTO steering_vectors VALUES (?, ?, ?)", (target_id, model_id, data))
            c.execute("UPDATE targets SET status = 'ready' WHERE id = ?", (target_id,))
        return True

    def drop_steering(self, target_id: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM steering_vectors WHERE target_id = ?", (target_id,))

    def steering(self, model_id: str) -> list[tuple[str, bytes]]:
        return self._rows("SELECT target_id, data FROM steering_vectors WHERE model_id = ?", (model_id,))

    # ---- activations --------------------------------------------------------------------------

    def set_activation(self, tenant_id: str, target_id: str, active: bool) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO activations VALUES (?, ?, ?) ON CONFLICT(tenant_id, target_id) "
                      "DO UPDATE SET active = excluded.active", (tenant_id, target_id, int(active)))

    def activations(self) -> dict[tuple[str, str], bool]:
        return {(t, g): bool(a) for t, g, a in self._rows("SELECT tenant_id, target_id, active FROM activations")}


_TENANT_COLUMNS = "id, name, created_at, policy"


def _tenant(row: tuple) -> TenantRecord:
    id_, name, created_at, policy = row
    return TenantRecord(id_, name, created_at, json.loads(policy))


_TARGET_COLUMNS = "id, owner, name, spec, mandatory, default_active, status, created_at, knowledge"


_SPEC_FIELDS = ("aliases", "given_aliases", "description", "examples", "forbidden", "negatives")


def _target(row: tuple) -> TargetRecord:
    id_, owner, name, spec, mandatory, default_active, status, created_at, knowledge = row
    fields = json.loads(spec)
    known = json.loads(knowledge) if knowledge else None
    if "given_aliases" not in fields:  # stored before given aliases were kept: what the name does not explain
        derived = {normalize(a) for a in expand_aliases(name)}
        fields["given_aliases"] = [a for a in fields.get("aliases", []) if normalize(a) not in derived]
    # Older rows may hold keys no longer used (a per-target "policy" that nothing read).
    return TargetRecord(id=id_, owner=owner, name=name, mandatory=bool(mandatory),
                        default_active=bool(default_active), status=status, created_at=created_at,
                        knowledge=FactTerms.from_json(known) if known else None,
                        knowledge_model=known["model_id"] if known else None,
                        **{k: v for k, v in fields.items() if k in _SPEC_FIELDS})
