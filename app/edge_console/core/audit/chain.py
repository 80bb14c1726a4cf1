"""Hash-chained audit entries: each entry carries the hash of the one before it, so an edited, inserted or deleted
entry breaks the chain where it happened. Shared by the device's log and the console's merge of logs.

An entry is a JSON object {seq, at, actor, event, details, prev, hash}; `hash` is the SHA-256 of the entry's
canonical JSON without `hash` (sorted keys, no spaces), `prev` the hash of entry seq-1 ("" for the first).
What a chain cannot prove by itself is that nothing was cut off its end: whoever reads a log keeps the last
hash it saw (the console does) and checks it is still there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = ""


def canonical(entry: dict) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def make_entry(seq: int, prev: str, at: float, actor: str, event: str, details: dict) -> dict:
    entry = {"seq": seq, "at": round(at, 3), "actor": actor, "event": event, "details": details, "prev": prev}
    entry["hash"] = entry_hash(entry)
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    problem: str = ""  # what is wrong and where, for a person
    first_bad_seq: int | None = None
    head: str = GENESIS  # hash of the last entry that verified

    def to_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "problem": self.problem, "first_bad_seq": self.first_bad_seq,
                "head": self.head}


def verify_chain(entries: Iterable[dict], expect_head: str | None = None) -> ChainReport:
    """Check every link; `expect_head`: a hash seen earlier that must still be in the chain (no cut tail)."""
    prev, count, seen_head = GENESIS, 0, expect_head in (None, GENESIS)
    for count, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not {"seq", "hash", "prev"} <= set(entry):
            return ChainReport(False, count - 1, f"entry {count} is not an audit entry", count, prev)
        seq = entry.get("seq")
        if seq != count:
            what = "missing (deleted?)" if isinstance(seq, int) and seq > count else "out of order (inserted?)"
            return ChainReport(False, count - 1, f"entry #{count} is {what}: found #{seq} in its place", count, prev)
        if entry["prev"] != prev:
            return ChainReport(False, count - 1, f"entry #{seq} does not follow #{seq - 1}: an entry before it was "
                                                 "changed or removed", seq, prev)
        if entry_hash(entry) != entry["hash"]:
            return ChainReport(False, count - 1, f"entry #{seq} was edited after it was written (its hash does "
                                                 "not match)", seq, prev)
        prev = entry["hash"]
        seen_head = seen_head or prev == expect_head
    if not seen_head:
        return ChainReport(False, count, "entries that were there before are gone: the log was cut short or "
                                         "replaced", None, prev)
    return ChainReport(True, count, "", None, prev)
