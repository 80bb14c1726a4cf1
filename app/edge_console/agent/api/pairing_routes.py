"""The pairing exchange and pairing management on the agent's API (see core/trust/pairing_protocol.py for the protocol).

POST /v1/pair/start, /v1/pair/finish   open: an unpaired console pairs with the code the device shows
GET /v1/pairings                        admin: the consoles paired with this device
DELETE /v1/pairings/{id}                admin: revoke one (it is refused from its next request on)
POST /v1/pairing-codes                  admin: open a code for another console, with a role
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
import uuid
from dataclasses import dataclass

from aiohttp import web
from cryptography import x509

from edge_console.agent.api.access import ACCESS, CALLER_PAIRING, OPEN, Access, add_routes
from edge_console.agent.api.json_answers import json_error, json_object_body
from edge_console.agent.trust.pairing_guard import PairingGuard
from edge_console.core.trust.pairing_protocol import ROLES, DeviceExchange, PairingFailed
from edge_console.core.trust.tls_identity import certificate_fingerprint, trust_client

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
MAX_BODY_DEPTH = 4  # the pairing messages are flat objects
EXCHANGE_TTL_S = 60.0
MAX_PENDING = 4


@dataclass
class _Pending:
    exchange: DeviceExchange
    console_name: str
    certificate: bytes
    role: str
    started: float
    code: str  # the code this exchange guessed at: it must still be the open one when it finishes
    source: str


PENDING = web.AppKey("pending_pairings", dict)
GUARD = web.AppKey("pairing_guard", PairingGuard)


async def _json_body(request: web.Request) -> dict:
    """Open to anyone: small, flat, and required (every pairing message has fields)."""
    return await json_object_body(request, max_bytes=MAX_BODY, max_depth=MAX_BODY_DEPTH)


def _hex(data: dict, key: str, max_len: int = 256) -> bytes:
    value = data.get(key)
    try:
        if not isinstance(value, str) or len(value) > max_len:
            raise ValueError
        return bytes.fromhex(value)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{key} must be a hex string") from None


def _certificate(text: object) -> bytes:
    if not isinstance(text, str) or len(text) > 8192:
        raise web.HTTPBadRequest(reason="console_cert must be a PEM certificate")
    try:
        x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise web.HTTPBadRequest(reason="console_cert is not a PEM certificate") from None
    return text.encode("ascii")


async def pair_start(request: web.Request) -> web.Response:
    access: Access = request.app[ACCESS]
    pending: dict[str, _Pending] = request.app[PENDING]
    now = time.monotonic()
    for key in [k for k, p in pending.items() if now - p.started > EXCHANGE_TTL_S]:
        del pending[key]
    code = access.trust.open_code()
    if code is None:
        return json_error(409, "no pairing code open", "run `edge-agent pair --role operator` on the device (or "
                                                       "ask an admin console for a code), then try again")
    source = request.remote or "?"
    guard = request.app[GUARD]
    refused = guard.refusal((code.code, code.expires_at), source)
    if refused is not None:
        status, detail = refused
        return json_error(status, "too many pairing attempts", detail, headers={"Retry-After": "1"})
    data = await _json_body(request)
    certificate = _certificate(data.get("console_cert"))
    name = str(data.get("console_name") or "console")[:80]
    message = _hex(data, "message")
    # Counted now, as a guess (a success uses the code up): per source here, in all in the code's file.
    attempts_left = guard.failed(source)
    await asyncio.to_thread(access.trust.note_failure)
    exchange = DeviceExchange(code.code, certificate_fingerprint(certificate), access.identity.fingerprint)
    try:
        reply, confirmation = exchange.respond(message)
    except PairingFailed as exc:
        return json_error(400, "pairing failed", str(exc))
    pairing_id = uuid.uuid4().hex
    while len(pending) >= MAX_PENDING:  # a console whose code was wrong never finishes: the oldest go first
        del pending[min(pending, key=lambda k: pending[k].started)]
    pending[pairing_id] = _Pending(exchange, name, certificate, code.role, now, code.code, source)
    return web.json_response({"pairing_id": pairing_id, "message": reply.hex(), "confirmation": confirmation.hex(),
                              "attempts_left": attempts_left})


async def pair_finish(request: web.Request) -> web.Response:
    access: Access = request.app[ACCESS]
    data = await _json_body(request)
    pending = request.app[PENDING].pop(str(data.get("pairing_id", "")), None)
    confirmation = _hex(data, "confirmation")
    if pending is None:
        return json_error(404, "no such pairing exchange", "it expired or was finished; start again")
    if not pending.exchange.check(confirmation):
        log.warning("pairing attempt from %s failed: wrong code or a certificate swapped in the middle",
                    request.remote)
        return json_error(403, "pairing failed", "the code did not match (or the connection was intercepted)")
    if not await asyncio.to_thread(access.trust.consume_code, pending.code):  # one code pairs one console
        return json_error(409, "code already used", "another console paired with this code a moment ago, or it "
                                                    "expired; open a new code on the device")
    request.app[GUARD].succeeded(pending.source)
    pairing = await asyncio.to_thread(access.trust.enrol, pending.console_name, pending.certificate, pending.role)
    if access.ssl_context is not None:
        trust_client(access.ssl_context, pending.certificate)
    log.warning("paired console %r as %s (pairing %s)", pairing.console_name, pairing.role, pairing.id)
    if access.audit is not None:
        await asyncio.to_thread(access.audit.append, f"{pairing.console_name} (pairing {pairing.id})", "paired",
                                role=pairing.role, fingerprint=pairing.fingerprint[:16], remote=request.remote)
    return web.json_response({"device_id": access.device_id, "role": pairing.role, "pairing_id": pairing.id})


async def list_pairings(request: web.Request) -> web.Response:
    access: Access = request.app[ACCESS]
    me = request.get(CALLER_PAIRING)
    return web.json_response({"pairings": [
        {"id": p.id, "console_name": p.console_name, "role": p.role, "paired_at": p.paired_at,
         "fingerprint": p.fingerprint, "this_console": me is not None and me.id == p.id}
        for p in access.trust.pairings()]})


async def revoke_pairing(request: web.Request) -> web.Response:
    access: Access = request.app[ACCESS]
    gone = await asyncio.to_thread(access.trust.revoke, request.match_info["pairing_id"])
    if gone is None:
        return json_error(404, "no such pairing", "list them with GET /v1/pairings")
    log.warning("revoked pairing %s (%r, %s)", gone.id, gone.console_name, gone.role)
    me = request.get(CALLER_PAIRING)
    if access.audit is not None:
        await asyncio.to_thread(access.audit.append, me.console_name if me else "admin", "pairing revoked",
                                pairing=gone.id, console=gone.console_name, role=gone.role)
    return web.json_response({"revoked": gone.id})


async def open_code(request: web.Request) -> web.Response:
    access: Access = request.app[ACCESS]
    data = await _json_body(request)
    role = data.get("role")
    if role not in ROLES:
        return json_error(400, "bad role", f"role must be one of {', '.join(ROLES)}")
    me = request.get(CALLER_PAIRING)
    try:
        code = await asyncio.to_thread(access.trust.issue_code, role)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return json_error(507, "disk full", "the device's disk is full, so a code cannot be stored; free space "
                                            "on the device and try again")
    if access.audit is not None:
        await asyncio.to_thread(access.audit.append, me.console_name if me else "admin", "pairing code issued",
                                role=code.role, expires_at=round(code.expires_at))
    return web.json_response({"code": code.code, "role": code.role, "expires_at": code.expires_at})


def add_pairing_routes(app: web.Application, roles: dict[tuple[str, str], str]) -> None:
    app[PENDING] = {}
    app[GUARD] = PairingGuard()
    add_routes(app, roles, (
        ("POST", "/v1/pair/start", pair_start, OPEN),
        ("POST", "/v1/pair/finish", pair_finish, OPEN),
        ("GET", "/v1/pairings", list_pairings, "admin"),
        ("DELETE", "/v1/pairings/{pairing_id}", revoke_pairing, "admin"),
        ("POST", "/v1/pairing-codes", open_code, "admin"),
    ))
