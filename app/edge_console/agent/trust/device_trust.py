"""The device's side of trust: its TLS identity, the consoles paired with it (and their roles), pairing codes.

Both live as owner-only files in the agent's state folder, because two processes change them: the running agent
(pairing over the network, revocation by an admin console) and the `edge-agent pair | pairings | unpair | enrol`
commands on the device's own terminal. Every change is a locked read-modify-write with an atomic replace; the
running agent notices a change by the file's stamp and applies it to new connections at once.

    <state>/tls/identity.key, identity.crt   the device's key and self-signed certificate
    <state>/pairings.json                    [{id, console_name, fingerprint, certificate, role, paired_at}]
    <state>/pairing-code.json                the one open code: {code, role, expires_at, failures}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_console.core.trust.pairing_protocol import CODE_TTL_S, MAX_GUESSES, ROLES, new_code
from edge_console.core.trust.tls_identity import (
    TlsIdentity,
    certificate_fingerprint,
    load_or_create_identity,
    write_private,
)

log = logging.getLogger(__name__)
MIN_FINGERPRINT_PREFIX = 16  # as `edge-agent pairings` shows fingerprints


def device_identity(state_dir: Path, device_id: str) -> TlsIdentity:
    return load_or_create_identity(state_dir / "tls", f"edge-agent {device_id}", [f"edge-{device_id[:12]}.local"])


@dataclass(frozen=True)
class Pairing:
    id: str
    console_name: str
    fingerprint: str
    certificate: str  # PEM
    role: str
    paired_at: float


@dataclass(frozen=True)
class OpenCode:
    code: str
    role: str
    expires_at: float  # this device's wall clock: issued and checked here, so its skew does not matter
    failures: int = 0  # failed exchanges from every source (the API counts them per source too)

    @property
    def usable(self) -> bool:
        return self.failures < MAX_GUESSES and time.time() < self.expires_at


@contextlib.contextmanager
def _locked(state_dir: Path):
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "trust.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise OSError(f"{path} cannot be read ({exc}); move it aside to start with no pairings") from None


class TrustStore:
    """Pairings and the open code of one agent's state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._pairings_path = self.state_dir / "pairings.json"
        self._code_path = self.state_dir / "pairing-code.json"
        self._stamp: tuple[int, int] | None = None
        self._pairings: dict[str, Pairing] = {}  # by fingerprint

    # -- pairings ---------------------------------------------------------------------------------------------
    def pairings(self) -> list[Pairing]:
        self._refresh()
        return sorted(self._pairings.values(), key=lambda p: p.paired_at)

    def by_fingerprint(self, fingerprint: str) -> Pairing | None:
        self._refresh()
        return self._pairings.get(fingerprint)

    def changed_since(self, stamp: tuple[int, int] | None) -> bool:
        return self.stamp() != stamp

    def stamp(self) -> tuple[int, int] | None:
        try:
            st = self._pairings_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        stamp = self.stamp()
        if stamp is not None and stamp == self._stamp:
            return
        rows = _read_json(self._pairings_path, {"pairings": []})["pairings"] if stamp else []
        self._pairings = {r["fingerprint"]: Pairing(**r) for r in rows}
        self._stamp = stamp

    def _write(self, pairings: list[Pairing]) -> None:
        write_private(self._pairings_path, json.dumps({"pairings": [asdict(p) for p in pairings]}, indent=1).encode())

    def enrol(self, console_name: str, certificate_pem: bytes, role: str) -> Pairing:
        """Add (or re-role) the console with this certificate."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        fingerprint = certificate_fingerprint(certificate_pem)
        with _locked(self.state_dir):
            self._stamp = None
            current = [p for p in self.pairings() if p.fingerprint != fingerprint]
            pairing = Pairing(uuid.uuid4().hex[:12], console_name[:80] or "console", fingerprint,
                              certificate_pem.decode("ascii"), role, time.time())
            self._write([*current, pairing])
            self._stamp = None
        return pairing

    def revoke(self, pairing_id: str) -> Pairing | None:
        """Revoke the pairing with this id, or with a certificate fingerprint starting with it (at least
        MIN_FINGERPRINT_PREFIX characters: a short prefix would name whichever console happened to match)."""
        wanted = pairing_id.strip().lower()
        with _locked(self.state_dir):
            self._stamp = None
            current = self.pairings()
            gone = next((p for p in current if p.id == wanted or (len(wanted) >= MIN_FINGERPRINT_PREFIX
                                                                  and p.fingerprint.startswith(wanted))), None)
            if gone is not None:
                self._write([p for p in current if p is not gone])
            self._stamp = None
        return gone

    # -- the open code ---------------------------------------------------------------------------------------------
    def issue_code(self, role: str) -> OpenCode:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        code = OpenCode(new_code(), role, time.time() + CODE_TTL_S)
        with _locked(self.state_dir):
            write_private(self._code_path, json.dumps(asdict(code)).encode())
        return code

    def open_code(self) -> OpenCode | None:
        data = _read_json(self._code_path, None)
        if not data:
            return None
        code = OpenCode(**data)
        return code if code.usable else None

    def note_failure(self) -> int:
        """One more exchange that may fail, from anyone; returns the guesses left for the code before it burns."""
        with _locked(self.state_dir):
            data = _read_json(self._code_path, None)
            if not data:
                return 0
            data["failures"] += 1
            left = MAX_GUESSES - data["failures"]
            if left <= 0:
                self._code_path.unlink(missing_ok=True)
                log.warning("pairing code burnt after %d pairing attempts from the network; make a new one with "
                            "`edge-agent pair`", MAX_GUESSES)
            else:
                write_private(self._code_path, json.dumps(data).encode())
            return max(left, 0)

    def consume_code(self, code: str) -> bool:
        """Use the open code up, if it is still `code`: True for exactly one caller (one code pairs one console)."""
        with _locked(self.state_dir):
            data = _read_json(self._code_path, None)
            if not data or data.get("code") != code or not OpenCode(**data).usable:
                return False
            self._code_path.unlink(missing_ok=True)
            return True
