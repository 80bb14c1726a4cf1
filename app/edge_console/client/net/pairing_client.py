"""The console's side of pairing, and of reading the certificate a device presents (Qt-free, asyncio).

Pairing: read the certificate the device presents, then run the SPAKE2 exchange over a connection pinned to that
very certificate, with both fingerprints mixed into the exchange (core/trust/pairing_protocol.py). On success the
device has enrolled this console's certificate with a role, and the caller pins the device's certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_answers import UnreadableAnswer, read_error_detail, read_json
from edge_console.client.untrusted_text import visible_text
from edge_console.core.trust.pairing_protocol import ConsoleExchange, PairingFailed, normalise_code
from edge_console.core.trust.tls_identity import TlsIdentity, certificate_fingerprint, client_context

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
        if resp.status != 200:
            detail = visible_text(await read_error_detail(resp), 300) or f"HTTP {resp.status}"
            if resp.status == 409:
                raise PairingFailed(f"the device has no pairing code open: {detail}")
            if resp.status == 429:
                raise PairingFailed(f"the device is limiting pairing attempts: {detail}")
            raise PairingFailed(f"the device refused the pairing: {detail}")
        try:
            return await read_json(resp, expect=dict)
        except UnreadableAnswer as exc:
            raise PairingFailed(f"{exc}; pairing stopped") from None


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
                plural = "s" if left != 1 else ""
                more = f" ({left} attempt{plural} left for this code from this computer)" if isinstance(left, int) else ""
                raise PairingFailed(f"{exc}{more}") from None
            finished = await _post(session, base + "/v1/pair/finish", {
                "pairing_id": started["pairing_id"], "confirmation": confirmation.hex()}, fingerprint)
        device_id, role = finished["device_id"], finished["role"]
        if not (isinstance(device_id, str) and device_id and isinstance(role, str) and role):
            raise TypeError("device_id and role are not text")
    except KeyError as exc:
        raise PairingFailed(f"the device's answer is not a pairing reply (it has no {exc})") from None
    except (TypeError, ValueError):
        raise PairingFailed("the device's answer is not a pairing reply (a field of it is not what pairing "
                            "sends)") from None
    except aiohttp.ServerFingerprintMismatch:
        raise PairingFailed("the device's certificate changed during pairing: someone may be intercepting the "
                            "connection; pairing stopped") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PairingFailed(f"the connection to {address} failed during pairing: {exc}") from exc
    return PairingResult(device_id, role, certificate, fingerprint)
