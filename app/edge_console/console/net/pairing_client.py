"""The console's side of pairing, and of reading the certificate a device presents (Qt-free, asyncio).

Pairing: read the certificate the device presents, then run the SPAKE2 exchange over a connection pinned to that
very certificate, with both fingerprints mixed into the exchange (core/pairing_protocol.py). On success the
device has enrolled this console's certificate with a role, and the caller pins the device's certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge_console.core.pairing_protocol import ConsoleExchange, PairingFailed, normalise_code
from edge_console.core.tls_identity import TlsIdentity, certificate_fingerprint, client_context

from .addresses import DeviceAddress

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PairingResult:
    device_id: str
    role: str
    certificate_pem: bytes  # the device's, to pin
    fingerprint: str


async def fetch_certificate(address: DeviceAddress, timeout: float = TIMEOUT_S) -> bytes:
    """The certificate (PEM) the endpoint at `address` presents; OSError/ssl.SSLError if it speaks no TLS."""
    context = client_context(None, None)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port, ssl=context),
                                            timeout)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (OSError, TimeoutError, ssl.SSLError):
            pass
    if not der:
        raise ssl.SSLError("the endpoint presented no certificate")
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


async def _post(session: aiohttp.ClientSession, url: str, body: dict, pin: str) -> dict:
    async with session.post(url, json=body, ssl=aiohttp.Fingerprint(bytes.fromhex(pin)),
                            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as resp:
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = {}
        if resp.status != 200:
            detail = data.get("detail") or data.get("error") or f"HTTP {resp.status}"
            if resp.status == 409:
                raise PairingFailed(f"the device has no pairing code open: {detail}")
            if resp.status == 429:
                raise PairingFailed("the device is limiting pairing attempts; wait a second and try again")
            raise PairingFailed(f"the device refused the pairing: {detail}")
        return data


async def pair(address: DeviceAddress, code: str, identity: TlsIdentity, console_name: str) -> PairingResult:
    """Pair with the device at `address` using the code it showed; PairingFailed says why it did not work."""
    code = normalise_code(code)  # ValueError for something that is not a code: nothing is sent
    try:
        certificate = await fetch_certificate(address)
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        raise PairingFailed(f"cannot reach a TLS endpoint at {address}: {exc or type(exc).__name__}. Is it an "
                            "edge agent (not one in insecure lab mode), and is the address right?") from exc
    fingerprint = certificate_fingerprint(certificate)
    exchange = ConsoleExchange(code, identity.fingerprint, fingerprint)
    base = f"https://{address}"
    try:
        async with aiohttp.ClientSession() as session:
            started = await _post(session, base + "/v1/pair/start", {
                "console_name": console_name, "console_cert": identity.cert_pem.decode("ascii"),
                "message": exchange.start().hex()}, fingerprint)
            try:
                confirmation = exchange.finish(bytes.fromhex(started["message"]),
                                               bytes.fromhex(started["confirmation"]))
            except PairingFailed as exc:
                left = started.get("attempts_left")
                more = f" ({left} attempt{'s' if left != 1 else ''} left for this code)" if isinstance(left, int) else ""
                raise PairingFailed(f"{exc}{more}") from None
            finished = await _post(session, base + "/v1/pair/finish", {
                "pairing_id": started["pairing_id"], "confirmation": confirmation.hex()}, fingerprint)
    except (KeyError, TypeError, ValueError) as exc:
        raise PairingFailed(f"the device's answer is not a pairing reply ({exc!r})") from None
    except aiohttp.ServerFingerprintMismatch:
        raise PairingFailed("the device's certificate changed during pairing: someone may be intercepting the "
                            "connection; pairing stopped") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PairingFailed(f"the connection to {address} failed during pairing: {exc}") from exc
    return PairingResult(str(finished["device_id"]), str(finished["role"]), certificate, fingerprint)
