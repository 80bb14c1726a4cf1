"""Who may do what on the agent's API: every route (method and path) declares the role it needs, and one
middleware enforces it.

open      the minimal /v1/info and the pairing exchange: what an unpaired console needs to pair
viewer    info, health, time, stream, telemetry, history, the lossless frame
operator  viewer plus everything that changes the device (models, restarting the pipeline)
admin     operator plus pairing and trust changes

A route without a declared role is refused to everyone (a route added later cannot slip through; a test walks
the router). The role belongs to the method and the path together: GET and DELETE on one path may need different
roles, and a method added to a path later gets none until it declares its own. The caller's role comes from the TLS client certificate it presented, looked up among the paired
consoles. Browsers are kept out twice: any request carrying an `Origin` header is refused (consoles never send
one; a web page opened on a site laptop always does), and the `Host` header must name this device: the address the
request arrived on, or its own mDNS name, so a DNS-rebinding page cannot reach it by a name of its own.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from edge_console.agent.api.json_answers import json_error
from edge_console.agent.trust.device_trust import Pairing, TrustStore
from edge_console.core.audit.log import AuditLog
from edge_console.core.trust.pairing_protocol import role_allows
from edge_console.core.trust.tls_identity import TlsIdentity, certificate_fingerprint, peer_certificate, trust_client

log = logging.getLogger(__name__)
OPEN = "open"
# Every id a route takes from its URL (an upload, an update, a pairing): aiohttp decodes %2F inside a placeholder,
# so `..%2Fpairings` would reach a handler as a path. Ids are checked here, once, for every route and verb.
ROUTE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HOW_TO_PAIR = ("pair this console with the device first: run `edge-agent pair --role viewer` (or operator, admin) "
               "on the device and type the code it prints into the console (Pair… on the device, or "
               "`edge-console pair HOST:PORT`)")


@dataclass
class Access:
    device_id: str
    identity: TlsIdentity | None  # None only in insecure lab mode
    trust: TrustStore
    insecure: bool = False
    host_names: set[str] = field(default_factory=set)  # names besides IP literals the Host header may carry
    roles: dict[tuple[str, str], str] = field(default_factory=dict)  # (method, route resource) -> role needed
    ssl_context: ssl.SSLContext | None = None
    audit: AuditLog | None = None  # pairing changes are recorded there
    _trusted: set[str] = field(default_factory=set)
    _stamp: object = None

    def sync_trust(self) -> bool:
        """Trust, for new TLS connections, every console paired since (by the API or the device's CLI); True when
        the pairings changed (one may have been revoked)."""
        if self.ssl_context is None or not self.trust.changed_since(self._stamp):
            return False
        self._stamp = self.trust.stamp()
        for pairing in self.trust.pairings():
            if pairing.fingerprint not in self._trusted:
                trust_client(self.ssl_context, pairing.certificate.encode("ascii"))
                self._trusted.add(pairing.fingerprint)
        return True

    def role_needed(self, route: web.AbstractRoute) -> str | None:
        """The role `route` declared (OPEN for the pairing exchange); None when it declared none."""
        resource = route.resource
        return None if resource is None else self.roles.get((route.method, resource.canonical))

    def caller(self, request: web.Request) -> tuple[str | None, Pairing | None]:
        """(role, pairing) of whoever sent `request`; (None, None) for an unpaired or revoked console."""
        if self.insecure:
            return "admin", None
        cert = peer_certificate(request.transport.get_extra_info("ssl_object") if request.transport else None)
        if cert is None:
            return None, None
        pairing = self.trust.by_fingerprint(certificate_fingerprint(cert))
        return (pairing.role, pairing) if pairing else (None, None)


ACCESS = web.AppKey("access", Access)
CALLER_ROLE = web.RequestKey("caller_role", str)
CALLER_PAIRING = web.RequestKey("caller_pairing", Pairing)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, roles: dict[tuple[str, str], str],
               routes: Iterable[tuple[str, str, Handler, str]]) -> None:
    """Register each (method, path, handler, role needed): the route and its role are declared together."""
    for method, path, handler, role in routes:
        app.router.add_route(method, path, handler)
        roles[method, path] = role


def actor(request: web.Request) -> str:
    """Who sent `request`, as the audit log names them: the paired console, else its address (lab mode)."""
    pairing = request.get(CALLER_PAIRING)
    return f"{pairing.console_name} ({pairing.role}, pairing {pairing.id})" if pairing else f"console at {request.remote}"


def _host_allowed(access: Access, request: web.Request) -> bool:
    """The Host header names this device: the address the request arrived on, or one of the device's own names.
    (Any other address, like any other name, is someone else's: a page that rebinds a name, a proxy's guess.)"""
    host_header = request.headers.get("Host")
    if not host_header:
        return False
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    host = host.strip("[]").lower().rstrip(".")
    if host in access.host_names:  # its own names, and any name or address given with --allow-host
        return True
    try:
        named = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    try:
        arrived_on = ipaddress.ip_address(sockname[0]) if sockname else None
    except (ValueError, TypeError, IndexError):
        arrived_on = None
    if isinstance(arrived_on, ipaddress.IPv6Address) and arrived_on.ipv4_mapped:
        arrived_on = arrived_on.ipv4_mapped
    return named == arrived_on


@web.middleware
async def authorize(request: web.Request, handler):
    access: Access = request.app[ACCESS]
    if "Origin" in request.headers:
        return json_error(403, "cross-origin request refused",
                          "requests from web pages are not accepted; use the Edge Console")
    if not _host_allowed(access, request):
        return json_error(421, "unknown host name",
                          "address the device by the IP address it listens on or its own .local name (a device "
                          "behind a NAT or a published container port: start it with --allow-host ADDRESS)")
    route = request.match_info.route
    if route.resource is None:  # no such route: the router answers 404/405 as usual
        return await handler(request)
    needed = access.role_needed(route)
    if needed is None:
        log.error("route %s %s has no declared role; refused to everyone", route.method, route.resource.canonical)
        return json_error(403, "forbidden", "this route is not available")
    role, pairing = access.caller(request)
    request[CALLER_ROLE], request[CALLER_PAIRING] = role, pairing
    if needed == OPEN:
        return await handler(request)
    if role is None:
        return json_error(401, "not paired", HOW_TO_PAIR)
    if not role_allows(role, needed):
        return json_error(403, "forbidden", f"this needs the {needed} role; this console is paired as {role}. "
                                            "Ask an admin to pair it again with a higher role.")
    return await handler(request)


@web.middleware
async def checked_route_ids(request: web.Request, handler):
    """Refuse a request whose URL placeholders are not plain ids, before any handler sees them."""
    for name, value in request.match_info.items():
        if not ROUTE_ID.fullmatch(value):
            log.warning("refused %s %s from %s: %s is not an id", request.method, request.match_info.route.resource
                        .canonical if request.match_info.route.resource else "?", request.remote, name)
            return json_error(400, "bad id", f"{name} must be 1 to 64 letters, digits, '-' or '_'")
    return await handler(request)
