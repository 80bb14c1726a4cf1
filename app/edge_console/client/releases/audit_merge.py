"""One audit trail for a compliance report: the console's own log merged with its devices' logs, each chain
verified (and each device checked against the last entry the console saw of it, so a log cut short shows).

The console records its own changes (imports, pushes, rollouts, rollbacks, pairings) in <data>/audit.log, the
same hash-chained format the devices keep (core/audit/log.py). Qt-free.
"""

from __future__ import annotations

import csv
import io
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from edge_console.client.net.device_answers import NOT_EXPECTED, UnreadableAnswer, read_json
from edge_console.client.storage.database import ConsoleDatabase, open_or_share
from edge_console.core.audit.anchor import SignedHead, head_is_signed_by
from edge_console.core.audit.chain import ChainReport, verify_chain
from edge_console.core.audit.log import AuditLog


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
    """The newest signed head the console saw of each device's chain (core/audit/anchor.py): a log that no longer
    holds that hash at that number was rewritten or cut short."""

    def __init__(self, database: ConsoleDatabase | Path) -> None:
        """`database`: the lane's shared connection, or a path to open one of its own (closed by `close`)."""
        self.database, self._owns_database = open_or_share(database)
        self.db = self.database.db
        self.table = self.db.table("audit_heads")

    def get(self, device_id: str) -> RememberedHead | None:
        row = next(self.table.rows_where("device_id = ?", [device_id]), None)
        if not row or not row["head"]:
            return None
        return RememberedHead(row["head"], row.get("seq") or 0, row.get("seen_at") or 0.0)

    def set(self, device_id: str, head: str, seq: int = 0, signature: str = "") -> None:
        with self.db.conn:
            self.table.upsert({"device_id": device_id, "head": head, "seq": seq, "signature": signature,
                               "seen_at": time.time()}, pk="device_id")

    def close(self) -> None:
        if self._owns_database:
            self.database.close()


@dataclass(frozen=True)
class RememberedHead:
    head: str
    seq: int  # 0: remembered before heads carried their number (any position will do)
    seen_at: float


async def fetch_device_log(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
                           limit: int = 5000) -> list[dict]:
    entries: list[dict] = []
    while True:
        after = entries[-1]["seq"] if entries and isinstance(entries[-1].get("seq"), int) else 0
        async with session.get(f"{base}/v1/audit?after={after}&limit=1000", ssl=tls) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
            page = (await read_json(r, expect=dict)).get("entries") or []
        if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
            raise UnreadableAnswer("/v1/audit", NOT_EXPECTED, "its entries are not a list of objects")
        if not page:
            return entries
        entries += page
        if len(entries) >= limit:
            return entries


async def fetch_signed_head(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None) -> SignedHead | None:
    """The device's signed chain head (None from a device in lab mode, which signs nothing). Read before the
    entries, so the entries read after it hold the entry it names."""
    async with session.get(f"{base}/v1/audit/verify", ssl=tls) as r:
        if r.status != 200:
            raise aiohttp.ClientResponseError(r.request_info, r.history, status=r.status, message=r.reason or "")
        body = await read_json(r, expect=dict)
    signed = body.get("signed_head")
    return SignedHead.from_dict(signed) if signed is not None else None


def check(source: str, device_id: str, entries: list[dict], heads: AuditHeads | None,
          signed: SignedHead | None = None, certificate: bytes | None = None) -> SourceLog:
    """Verify a device's chain, its signed head (against the device's pinned `certificate`) and the head this
    console remembered from before; remember the new head when all hold."""
    remembered = heads.get(device_id) if heads else None
    # A head remembered with its number is looked for at that number (the message can say which entry changed);
    # one from before heads carried numbers, anywhere in the chain.
    report = verify_chain(entries, remembered.head if remembered and not remembered.seq else None)
    problem = _anchor_problem(device_id, entries, remembered, signed, certificate) if report.ok else ""
    if problem:
        report = ChainReport(False, report.entries, problem, None, report.head)
    elif report.ok and heads is not None and report.head:
        if signed is not None and signed.seq:
            heads.set(device_id, signed.head, signed.seq, signed.signature)
        elif remembered is None or not remembered.seq:
            heads.set(device_id, report.head, len(entries))
    return SourceLog(source, device_id, entries, report)


def _hash_at(entries: list[dict], seq: int) -> str | None:
    return entries[seq - 1].get("hash") if 0 < seq <= len(entries) else None


def _anchor_problem(device_id: str, entries: list[dict], remembered: RememberedHead | None,
                    signed: SignedHead | None, certificate: bytes | None) -> str:
    if remembered is not None and remembered.seq and _hash_at(entries, remembered.seq) != remembered.head:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(remembered.seen_at))
        return (f"the log was rewritten or cut: entry #{remembered.seq} no longer has the hash this console saw on "
                f"{when}")
    if signed is None or certificate is None:
        return ""  # a device in lab mode signs nothing; the remembered head above still holds
    if signed.device_id != device_id or not head_is_signed_by(signed, certificate):
        return "the device's signed chain head does not verify against its pinned certificate"
    if signed.seq and _hash_at(entries, signed.seq) != signed.head:
        return f"the log does not hold the head the device signed (entry #{signed.seq})"
    return ""
