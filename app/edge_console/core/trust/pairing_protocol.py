"""Pairing a console with a device by a one-time code, without the code ever crossing the network.

SPAKE2 (the `spake2` package), a password-authenticated key exchange: each side sends one message derived from
the code; both derive the same key only if they used the same code. Someone who sniffs the exchange learns
nothing that lets them test guesses offline; someone who takes part can test one guess per exchange. The device
counts failed exchanges per source address (MAX_FAILURES each) and in all (MAX_GUESSES, then the code burns), so
a stranger on the network cannot burn the owner's code with a handful of junk attempts. The identities mixed into the exchange are both TLS certificate
fingerprints, as each side sees them: a man in the middle who terminates TLS with a certificate of his own makes
the two sides compute different keys, so the confirmation fails even with the right code.

Messages (JSON over HTTPS, the console without a client certificate):
    console -> POST /v1/pair/start   {console_name, console_cert (PEM), message (hex)}
    device  -> {pairing_id, message (hex), confirmation (hex), attempts_left}
    console -> POST /v1/pair/finish  {pairing_id, confirmation (hex)}
    device  -> {device_id, role}
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from spake2 import SPAKE2_A, SPAKE2_B
from spake2.spake2 import SPAKEError

from edge_console.core.errors import EdgeConsoleError

CODE_DIGITS = 8
CODE_TTL_S = 600.0
MAX_FAILURES = 5  # failed exchanges from one source address; that address may then not try this code again
MAX_GUESSES = 200  # failed exchanges from everyone: 200 guesses at 10^8 codes is a 2-in-a-million chance
ROLES = ("viewer", "operator", "admin")  # each allows everything the ones before it allow


class PairingFailed(EdgeConsoleError):
    """Wrong code, expired code, or a certificate swapped in the middle: the message says which is likely."""


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_code(text: str) -> str:
    """What a person types (`1234 5678`, `1234-5678`) -> the 8 digits; ValueError if it is not a code."""
    digits = "".join(ch for ch in text if not ch.isspace() and ch != "-")
    if len(digits) != CODE_DIGITS or not digits.isdigit():
        raise ValueError(f"a pairing code is {CODE_DIGITS} digits, as the device shows it (e.g. 1234-5678)")
    return digits


def role_allows(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _ids(console_fingerprint: str, device_fingerprint: str) -> dict[str, bytes]:
    return {"idA": b"edge-console:" + console_fingerprint.encode(), "idB": b"edge-agent:" + device_fingerprint.encode()}


def _confirmation(key: bytes, who: bytes, message_a: bytes, message_b: bytes) -> bytes:
    transcript = hashlib.sha256(message_a + message_b).digest()
    return hmac.new(key, b"edge pairing confirm " + who + transcript, hashlib.sha256).digest()


class ConsoleExchange:
    """The console's side: `start()`, then `finish(device message, device confirmation)` -> own confirmation."""

    def __init__(self, code: str, console_fingerprint: str, device_fingerprint: str) -> None:
        self._spake = SPAKE2_A(normalise_code(code).encode(), **_ids(console_fingerprint, device_fingerprint))
        self._message_a = b""

    def start(self) -> bytes:
        self._message_a = self._spake.start()
        return self._message_a

    def finish(self, message_b: bytes, device_confirmation: bytes) -> bytes:
        try:
            key = self._spake.finish(message_b)
        except (SPAKEError, ValueError) as exc:
            raise PairingFailed(f"the device's pairing message is malformed ({exc})") from None
        expected = _confirmation(key, b"device", self._message_a, message_b)
        if not hmac.compare_digest(expected, device_confirmation):
            raise PairingFailed("the code does not match: it was mistyped or has expired, or someone between this "
                                "console and the device presented another certificate")
        return _confirmation(key, b"console", self._message_a, message_b)


class DeviceExchange:
    """The device's side: `respond(console message)` -> (own message, confirmation); `check(console confirmation)`."""

    def __init__(self, code: str, console_fingerprint: str, device_fingerprint: str) -> None:
        self._spake = SPAKE2_B(code.encode(), **_ids(console_fingerprint, device_fingerprint))
        self._key = b""
        self._message_a = self._message_b = b""

    def respond(self, message_a: bytes) -> tuple[bytes, bytes]:
        self._message_b = self._spake.start()
        try:
            self._key = self._spake.finish(message_a)
        except (SPAKEError, ValueError) as exc:
            raise PairingFailed(f"the console's pairing message is malformed ({exc})") from None
        self._message_a = message_a
        return self._message_b, _confirmation(self._key, b"device", message_a, self._message_b)

    def check(self, console_confirmation: bytes) -> bool:
        expected = _confirmation(self._key, b"console", self._message_a, self._message_b)
        return bool(self._key) and hmac.compare_digest(expected, console_confirmation)
