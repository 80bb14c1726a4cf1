"""Console database files as the releases before the schema was versioned wrote them (user_version 0).

Each store then created its own table on first use, with sqlite-utils, so a file in the field holds any subset of
them; audit_heads was (device_id, head) until heads were signed, and gained three columns after. The statements
below are those stores' own, copied from them as they shipped, so a test can upgrade a file exactly as an engineer's
laptop holds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

ALL_TABLES = ("devices", "pins", "rollouts", "audit_heads")
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ROLLOUT_BODY = {"id": "r1", "release_id": "rel-1", "release_label": "parts 2.0.0", "batch": 1,
                "max_failure_pct": None, "status": "halted", "reason": "a canary failed", "created_at": 1000.0,
                "steps": [{"device_id": "dev-a", "name": "Press A", "phase": "failed", "detail": "rolled back",
                           "push": {}, "record": {}, "canary": True, "updated_at": 1001.0, "offline_since": 0.0}]}


def write_unversioned_database(path: Path, tables: tuple[str, ...] = ALL_TABLES, signed_heads: bool = True) -> None:
    """A file with `tables` and one row in each, written the way the unversioned releases wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    if "devices" in tables:
        db.table("devices").create({
            "id": str, "name": str, "host": str, "port": int, "manual": int, "arch": str, "hardware": str,
            "model_name": str, "model_version": str, "first_seen": float, "last_seen": float,
        }, pk="id")
        db.table("devices").insert({"id": "dev-a", "name": "Press A", "host": "10.0.0.5", "port": 8470, "manual": 1,
                                    "arch": "aarch64", "hardware": json.dumps({"npu": "hailo-8"}),
                                    "model_name": "parts", "model_version": "1.0.0", "first_seen": 100.0,
                                    "last_seen": 200.0})
    if "pins" in tables:
        db.table("pins").create({"device_id": str, "certificate": str, "fingerprint": str, "role": str,
                                 "paired_at": float, "address": str}, pk="device_id")
        db.table("pins").insert({"device_id": "dev-a", "certificate": CERTIFICATE, "fingerprint": "ab" * 32,
                                 "role": "admin", "paired_at": 150.0, "address": "10.0.0.5:8470"})
    if "rollouts" in tables:
        db.table("rollouts").create({"id": str, "body": str, "status": str, "created_at": float}, pk="id")
        db.table("rollouts").insert({"id": "r1", "body": json.dumps(ROLLOUT_BODY), "status": "halted",
                                     "created_at": 1000.0})
    if "audit_heads" in tables:
        if signed_heads:
            db.table("audit_heads").create({"device_id": str, "head": str, "seq": int, "signature": str,
                                            "seen_at": float}, pk="device_id")
            db.table("audit_heads").insert({"device_id": "dev-a", "head": "cd" * 32, "seq": 7, "signature": "sig",
                                            "seen_at": 300.0})
        else:  # the first layout, before heads were signed
            db.table("audit_heads").create({"device_id": str, "head": str}, pk="device_id")
            db.table("audit_heads").insert({"device_id": "dev-a", "head": "cd" * 32})
    db.conn.commit()
    db.close()
