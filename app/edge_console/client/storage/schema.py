"""The console database's schema, as an ordered list of migrations: the file is at version N once
MIGRATIONS[:N] have been applied to it, and says so in its header (`PRAGMA user_version`).

`database.py` applies the missing ones, all in one transaction, whenever it opens the file. To change the schema,
append a migration; never edit one that has shipped (files in the field are past it already and will not run it
again). A migration is plain SQL on the connection it is given: sqlite-utils' write helpers commit by themselves,
which would end the upgrade's transaction half-way and could leave a file between two versions.

Version 1 is the schema of the releases before the file carried a version (user_version 0), created idempotently:
such a file may hold some or all of these tables already (each store created its own on first use), written by
sqlite-utils; they keep their rows and what is missing is added. The statements are the ones sqlite-utils wrote
for those tables (sqlite-utils 3 wrote FLOAT where 4 writes REAL: the same REAL affinity, so rows read the same).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    summary: str  # what it changes, for the error that names it when it fails
    apply: Callable[[sqlite3.Connection], None]


TABLES_V1 = {
    # Every device ever seen (store.DeviceStore).
    "devices": '''CREATE TABLE IF NOT EXISTS "devices" (
   "id" TEXT PRIMARY KEY,
   "name" TEXT,
   "host" TEXT,
   "port" INTEGER,
   "manual" INTEGER,
   "arch" TEXT,
   "hardware" TEXT,
   "model_name" TEXT,
   "model_version" TEXT,
   "first_seen" REAL,
   "last_seen" REAL
)''',
    # The device certificates pinned at pairing (trust_store.PinStore).
    "pins": '''CREATE TABLE IF NOT EXISTS "pins" (
   "device_id" TEXT PRIMARY KEY,
   "certificate" TEXT,
   "fingerprint" TEXT,
   "role" TEXT,
   "paired_at" REAL,
   "address" TEXT
)''',
    # Staged rollouts, one JSON row each (releases.rollout.RolloutStore).
    "rollouts": '''CREATE TABLE IF NOT EXISTS "rollouts" (
   "id" TEXT PRIMARY KEY,
   "body" TEXT,
   "status" TEXT,
   "created_at" REAL
)''',
    # The newest signed audit-chain head seen of each device (releases.audit_merge.AuditHeads).
    "audit_heads": '''CREATE TABLE IF NOT EXISTS "audit_heads" (
   "device_id" TEXT PRIMARY KEY,
   "head" TEXT,
   "seq" INTEGER,
   "signature" TEXT,
   "seen_at" REAL
)''',
}
# audit_heads was first (device_id, head); these came with signed heads, added to the files that had it already.
AUDIT_HEAD_COLUMNS_SINCE_SIGNED_HEADS = (("seq", "INTEGER"), ("signature", "TEXT"), ("seen_at", "REAL"))


def _unversioned_schema(conn: sqlite3.Connection) -> None:
    for statement in TABLES_V1.values():
        conn.execute(statement)
    present = {row[1] for row in conn.execute('PRAGMA table_info("audit_heads")')}
    for column, kind in AUDIT_HEAD_COLUMNS_SINCE_SIGNED_HEADS:
        if column not in present:
            conn.execute(f'ALTER TABLE "audit_heads" ADD COLUMN "{column}" {kind}')


MIGRATIONS: Sequence[Migration] = (
    Migration("the tables of the releases before the schema was versioned (devices, pins, rollouts, audit_heads)",
              _unversioned_schema),
)
SCHEMA_VERSION = len(MIGRATIONS)
