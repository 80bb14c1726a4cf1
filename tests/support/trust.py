"""Trust for tests that talk to real agents: a console identity, enrolment, pinned TLS client sessions."""

from __future__ import annotations

import contextlib
from pathlib import Path

import aiohttp

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.core.trust.tls_identity import TlsIdentity, client_context, load_or_create_identity


def console_identity(folder: Path, name: str = "test console") -> TlsIdentity:
    return load_or_create_identity(folder, name)


def enrol(state_dir: Path, identity: TlsIdentity, role: str) -> None:
    TrustStore(state_dir).enrol("test console", identity.cert_pem, role)


def device_certificate(state_dir: Path) -> bytes:
    return (state_dir / "tls" / "identity.crt").read_bytes()


@contextlib.asynccontextmanager
async def pinned_session(identity: TlsIdentity | None, device_cert: bytes | None):
    """An aiohttp session that presents `identity` (None: no client certificate) and accepts only `device_cert`
    (None: any certificate)."""
    connector = aiohttp.TCPConnector(ssl=client_context(identity, device_cert))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session
