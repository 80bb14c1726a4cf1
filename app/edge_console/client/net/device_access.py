"""How to reach a device safely: which scheme, which TLS context, and whether it is the device we paired with.

A device is tried over HTTPS first. Its public /v1/info (read without presenting anything) says who it claims to
be; if this console has a pin for that id, the device is reached from then on only with the pinned context, so a
different certificate at that address fails the TLS handshake itself: the certificate changed (the device was
reinstalled, or something else answers there), and nothing is sent to it. A device in insecure lab mode answers
plain HTTP and says so; it is shown as such. Qt-free (asyncio, on the console's loop).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_answers import NOT_JSON, UnreadableAnswer, read_json
from edge_console.client.net.pairing_client import fetch_certificate
from edge_console.client.trust_store import Pin, TlsContexts
from edge_console.client.untrusted_text import visible_text
from edge_console.core.trust.tls_identity import certificate_fingerprint, short_fingerprint

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


def ssl_arg(tls: ssl.SSLContext | None) -> ssl.SSLContext | bool:
    """aiohttp's `ssl=`: the device's pinned context, or True (aiohttp's default, deprecated as None) for a device
    in lab mode, reached over plain HTTP where there is nothing to verify."""
    return tls if tls is not None else True


class CertificateChanged(Exception):
    """The endpoint presents another certificate than the one pinned for this device."""

    def __init__(self, address: DeviceAddress, pin: Pin, presented: str | None) -> None:
        self.presented = presented
        seen = f"presents certificate {short_fingerprint(presented)}" if presented else "presents no usable certificate"
        super().__init__(
            f"{address} {seen}, not {pin.short}, the one this console paired with. The device may have been "
            "reinstalled or replaced, or someone else may be answering at this address. Nothing was sent to it. "
            "If you know it was reinstalled, remove the pairing and pair again with a code from the device; "
            "otherwise check the network.")


class NoLongerPaired(Exception):
    """The device's certificate is the pinned one, but it refuses this console: revoked, or its pairings reset."""


@dataclass(frozen=True)
class DeviceAccess:
    base_url: str
    tls: ssl.SSLContext | None  # None: plain HTTP (insecure lab mode)
    info: dict  # /v1/info as this console may see it (public only, when not paired)
    pin: Pin | None

    @property
    def device_id(self) -> str:
        return str(self.info.get("id", ""))

    @property
    def role(self) -> str | None:
        if self.info.get("insecure_lab_mode"):
            return "admin"
        role = self.info.get("caller_role") if self.pin else None
        return role if isinstance(role, str) else None  # the device's word: only ever compared and shown


class NotAnAgentAnswer(ValueError):
    """Something answered at the address, but not as an edge agent does (a web server, a router's login page)."""


async def _info(session: aiohttp.ClientSession, url: str, tls) -> dict:
    async with session.get(url + "/v1/info", ssl=ssl_arg(tls), timeout=TIMEOUT) as r:
        if r.status in (401, 403, 404, 405):  # what a web server or a login page answers for a path it lacks
            raise NotAnAgentAnswer(f"answered /v1/info with HTTP {r.status} {visible_text(r.reason, 80)}".rstrip()
                                   + " (another program on this port?)")
        r.raise_for_status()
        try:
            data = await read_json(r, "/v1/info", expect=None)
        except UnreadableAnswer as exc:
            if exc.kind != NOT_JSON:
                raise  # an agent's answer, or something posing as one: hostile or broken, not "another program"
            raise NotAnAgentAnswer(f"did not answer JSON on /v1/info "
                                   f"({visible_text(r.content_type, 80) or 'no content type'})") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise NotAnAgentAnswer("answered /v1/info, but not as an edge agent does (no device id)")
    return data


async def reach(session: aiohttp.ClientSession, address: DeviceAddress, contexts: TlsContexts,
                pin_for) -> DeviceAccess:
    """`pin_for(device_id) -> Pin | None` (the console's pin store). Raises CertificateChanged, NoLongerPaired,
    NotAnAgentAnswer for an endpoint that is not an edge agent, UnreadableAnswer for an answer the console cannot
    read (nested too deeply, too large), or a network error."""
    https = f"https://{address}"
    try:
        public = await _info(session, https, contexts.unpinned())
    except (aiohttp.ClientConnectorSSLError, aiohttp.ClientOSError, aiohttp.ServerDisconnectedError,
            ssl.SSLError) as tls_error:
        try:  # a device in insecure lab mode speaks plain HTTP
            plain = await _info(session, f"http://{address}", None)
        except aiohttp.ClientError:
            raise tls_error from None
        if not plain.get("insecure_lab_mode"):
            raise NotAnAgentAnswer("speaks plain HTTP without saying it is in insecure lab mode") from None
        return DeviceAccess(f"http://{address}", None, plain, None)
    pin = pin_for(public["id"])
    if pin is None:
        return DeviceAccess(https, contexts.unpinned(), public, None)
    tls = contexts.pinned(pin)
    try:
        info = await _info(session, https, tls)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            raise await _changed(address, pin) from None
        # TLS 1.3 checks the client's certificate after the handshake: a device that no longer trusts this
        # console's certificate drops the connection at the first request.
        raise NoLongerPaired(f"{address} no longer accepts this console (its pairings were reset, or this console "
                             "was removed): pair again with a code from the device") from None
    except aiohttp.ClientResponseError as exc:
        if exc.status == 401:
            raise NoLongerPaired(f"{address} revoked this console's pairing: ask its admin, or pair again") from None
        raise
    if info.get("caller_role") is None:  # /v1/info is open: a revoked console gets the public part only
        raise NoLongerPaired(f"{address} revoked this console's pairing: ask its admin, or pair again")
    return DeviceAccess(https, tls, info, pin)


async def _changed(address: DeviceAddress, pin: Pin) -> CertificateChanged:
    presented = None
    try:
        presented = certificate_fingerprint(await fetch_certificate(address))
    except (OSError, ssl.SSLError, TimeoutError):
        pass
    return CertificateChanged(address, pin, presented)
