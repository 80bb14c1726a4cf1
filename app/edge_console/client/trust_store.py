"""The console's side of trust: its own key and certificate, and the device certificates it pinned at pairing.

    <data>/identity/identity.key, identity.crt   this console's TLS identity (owner-only; a passphrase from
                                                 EDGE_CONSOLE_KEY_PASSPHRASE encrypts the key when set)
    pins (a table of the console's database)      device id -> certificate, fingerprint, role, when, where

A pinned device is reached with a TLS context that presents this console's certificate and accepts that device's
certificate and nothing else; an unpaired one only with a context that presents nothing (enough to read its
public /v1/info and to pair). Qt-free and blocking (SQLite): the console calls it on its store lane.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from edge_console.client.storage.database import ConsoleDatabase, open_or_share
from edge_console.core.trust.tls_identity import (
    TlsIdentity,
    certificate_fingerprint,
    client_context,
    load_or_create_identity,
    short_fingerprint,
)


@dataclass(frozen=True)
class Pin:
    device_id: str
    certificate: bytes
    fingerprint: str
    role: str
    paired_at: float
    address: str = ""

    @property
    def short(self) -> str:
        return short_fingerprint(self.fingerprint)


def default_data_dir() -> Path:
    """The user's data directory for the console (database, identity, releases)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("edge-console", appauthor=False))


def console_identity(data_dir: Path) -> TlsIdentity:
    passphrase = os.environ.get("EDGE_CONSOLE_KEY_PASSPHRASE")
    return load_or_create_identity(Path(data_dir) / "identity", f"edge-console {socket.gethostname()}",
                                   passphrase=passphrase.encode() if passphrase else None)


class PinStore:
    """The pins table, on the connection of the thread that uses it (SQLite objects stay on their thread): the
    lane's shared `ConsoleDatabase`, or one of its own opened from a path."""

    def __init__(self, database: ConsoleDatabase | Path) -> None:
        self.database, self._owns_database = open_or_share(database)
        self.db = self.database.db
        self.table = self.db.table("pins")

    def pin(self, device_id: str, certificate: bytes, role: str, address: str = "") -> Pin:
        pin = Pin(device_id, certificate, certificate_fingerprint(certificate), role, time.time(), address)
        with self.db.conn:
            self.table.upsert({"device_id": device_id, "certificate": certificate.decode("ascii"),
                               "fingerprint": pin.fingerprint, "role": role, "paired_at": pin.paired_at,
                               "address": address}, pk="device_id")
        return pin

    def get(self, device_id: str) -> Pin | None:
        row = next(self.table.rows_where("device_id = ?", [device_id]), None)
        return _pin(row) if row else None

    def all(self) -> list[Pin]:
        return [_pin(row) for row in self.table.rows]

    def unpin(self, device_id: str) -> None:
        with self.db.conn:
            self.table.delete_where("device_id = ?", [device_id])

    def close(self) -> None:
        if self._owns_database:
            self.database.close()


def _pin(row: dict) -> Pin:
    return Pin(row["device_id"], row["certificate"].encode("ascii"), row["fingerprint"], row["role"],
               row["paired_at"], row.get("address") or "")


class TlsContexts:
    """TLS contexts by pinned certificate, made once each (a context loads the console's key: not per request)."""

    def __init__(self, identity: TlsIdentity) -> None:
        self.identity = identity
        self._by_fingerprint: dict[str, ssl.SSLContext] = {}
        self._unpinned: ssl.SSLContext | None = None

    def pinned(self, pin: Pin) -> ssl.SSLContext:
        context = self._by_fingerprint.get(pin.fingerprint)
        if context is None:
            context = self._by_fingerprint[pin.fingerprint] = client_context(self.identity, pin.certificate)
        return context

    def unpinned(self) -> ssl.SSLContext:
        """No client certificate, any server certificate: only for public /v1/info and pairing."""
        if self._unpinned is None:
            self._unpinned = client_context(None, None)
        return self._unpinned


class ConsoleTrust:
    """The console's identity, its TLS contexts and its pins, for the network loop and the GUI alike.

    The pins are read once from the database (on the store's thread) and kept here as an immutable mapping that is
    replaced, never edited, so the network loop can read it while the GUI thread pins a device."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.identity = console_identity(self.data_dir)
        self.contexts = TlsContexts(self.identity)
        self._pins: dict[str, Pin] = {}

    def pin_for(self, device_id: str) -> Pin | None:
        return self._pins.get(device_id)

    def load(self, pins: list[Pin]) -> None:
        """Pins read from the database; one made while they were being read (a pairing) wins over its row."""
        self._pins = {**{p.device_id: p for p in pins}, **self._pins}

    def remember(self, pin: Pin) -> None:
        self._pins = {**self._pins, pin.device_id: pin}

    def all(self) -> list[Pin]:
        return list(self._pins.values())

    def drop(self, device_id: str) -> None:
        self._pins = {k: v for k, v in self._pins.items() if k != device_id}
