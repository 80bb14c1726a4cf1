"""TLS for the benchmarks, as on a site: a throwaway console identity enrolled on the benchmark's agents (a local
enrolment, as the demo does), client contexts that present it and accept only the agent's own certificate, and
raw sockets for the clients that misbehave on purpose (they must get through TLS and the role check before they
can stall anything).

The console identity lives in a temporary folder the benchmark owns, never in the user's data directory.
`--no-tls` runs the agents in insecure lab mode (plain HTTP) instead, for the figures without TLS.
"""

from __future__ import annotations

import argparse
import socket
import ssl
from pathlib import Path

from edge_console.agent.trust.device_trust import TrustStore
from edge_console.client.trust_store import console_identity
from edge_console.core.trust.tls_identity import TlsIdentity, client_context


def add_tls_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                        help="agents serve TLS 1.3 with mutual TLS, as on a site (default); --no-tls: insecure lab "
                             "mode, plain HTTP")


def bench_console_identity(data_dir: Path) -> TlsIdentity:
    """The benchmark's console identity, made in `data_dir` (a temporary folder)."""
    return console_identity(data_dir)


def enrol_console(state_dir: Path, identity: TlsIdentity, role: str = "admin") -> None:
    """Pair the benchmark's console with the agent whose state folder this is, through the files (before it starts)."""
    TrustStore(state_dir).enrol("benchmark console", identity.cert_pem, role)


def device_certificate(state_dir: Path) -> bytes:
    return (state_dir / "tls" / "identity.crt").read_bytes()


def pinned_context(identity: TlsIdentity, state_dir: Path) -> ssl.SSLContext:
    """Presents the console's certificate, accepts only the agent's (read from its state folder once it started)."""
    return client_context(identity, device_certificate(state_dir))


def raw_client(port: int, context: ssl.SSLContext | None, receive_buffer: int | None = None) -> socket.socket:
    """A blocking socket to 127.0.0.1:port, through the TLS handshake when `context` is given. A small receive
    buffer is set before connecting, so the window the server sees is small from the start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    if context is not None:
        sock = context.wrap_socket(sock)  # handshakes here: check_hostname is off, the pin decides
    sock.settimeout(None)
    return sock
