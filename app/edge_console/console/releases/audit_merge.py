"""One audit trail for a compliance report: the console's own log merged with its devices' logs, each chain
verified (and each device checked against the last entry the console saw of it, so a log cut short shows).

The console records its own changes (imports, pushes, rollouts, rollbacks, pairings) in <data>/audit.log, the
same hash-chained format the devices keep (core/audit_log.py). Qt-free.
"""

from __future__ import annotations

import csv
import io
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlite_utils

from edge_console.core.audit_chain import ChainReport, verify_chain
from edge_console.core.audit_log import AuditLog


def console_audit(data_dir: Path) -> AuditLog:
    return AuditLog(Path(data_dir) / "audit.log")


@dataclass
class SourceLog:
    source: str  # "console" or the device's name
    device_id: str
    entries: list[dict]
    report: ChainReport
    error: str = ""  # the device could not be read


@dataclass
class MergedAudit:
    logs: list[SourceLog] = field(default_factory=list)

    @property
    def broken(self) -> list[SourceLog]:
        return [log for log in self.logs if not log.report.ok]

    def rows(self) -> list[dict]:
        out = []
        for log in self.logs:
            for entry in log.entries:
                out.append({"at": entry.get("at"), "source": log.source, "device_id": log.device_id,
                            "seq": entry.get("seq"), "actor": entry.get("actor"), "event": entry.get("event"),
                            "details": entry.get("details"), "chain_ok": log.report.ok})
        return sorted(out, key=lambda r: (r["at"] or 0, r["source"], r["seq"] or 0))

    def to_json(self) -> str:
        return json.dumps({"chains": [{"source": log.source, "device_id": log.device_id, **log.report.to_dict(),
                                       "error": log.error} for log in self.logs],
                           "entries": self.rows()}, indent=1, default=str)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "source", "device_id", "seq", "actor", "event", "details", "chain_ok"])
        for row in self.rows():
            writer.writerow([row["at"], row["source"], row["device_id"], row["seq"], row["actor"], row["event"],
                             json.dumps(row["details"], sort_keys=True), row["chain_ok"]])
        return out.getvalue()


class AuditHeads:
    """The last hash the console saw of each device's chain: a log that no longer holds it was cut short."""

    def __init__(self, database: Path) -> None:
        self.db = sqlite_utils.Database(database)
        self.table = self.db.table("audit_heads")
        if not self.table.exists():
            self.table.create({"device_id": str, "head": str}, pk="device_id")

    def get(self, device_id: str) -> str | None:
        row = next(self.table.rows_where("device_id = ?", [device_id]), None)
        return row["head"] if row else None

    def set(self, device_id: str, head: str) -> None:
        with self.db.conn:
            self.table.upsert({"device_id": device_id, "head": head}, pk="device_id")


async def fetch_device_log(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
                           limit: int = 5000) -> list[dict]:
    entries: list[dict] = []
    while True:
        after = entries[-1]["seq"] if entries and isinstance(entries[-1].get("seq"), int) else 0
        async with session.get(f"{base}/v1/audit?after={after}&limit=1000", ssl=tls) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
            page = (await r.json()).get("entries") or []
        if not page:
            return entries
        entries += page
        if len(entries) >= limit:
            return entries


def check(source: str, device_id: str, entries: list[dict], heads: AuditHeads | None) -> SourceLog:
    report = verify_chain(entries, heads.get(device_id) if heads else None)
    if report.ok and heads is not None and report.head:
        heads.set(device_id, report.head)
    return SourceLog(source, device_id, entries, report)
