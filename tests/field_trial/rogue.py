"""A host on the site that answers but is not an edge agent, run in its own namespace by the field trial:

    port 8470  plain HTTP: a router's login page on every path
    port 8471  TLS with a certificate of its own: /v1/info claims to be a real, paired device (same id and name);
               everything else answers 200 {} (an impostor hoping a console sends it a release)
    mDNS       announces `_edgeinfer._tcp` with that device's id, pointing at itself

Every request is appended to LOG as one JSON line {port, method, path}.

    python -m tests.field_trial.rogue ADDR STATE_DIR CLAIMED_ID CLAIMED_NAME

With `flood`, the same host is a hostile client of a device (issue 21) instead: TLS connections without a
certificate that send a `POST /v1/pair/finish` head declaring 16,000 bytes and one byte (bodies that never arrive),
then raw TCP connections that never finish a TLS handshake (a third never start one, a third stop inside their
ClientHello, a third never answer the device's reply); it prints one JSON line: how many of each went out, and how
long the device let each body connection live.

    python -m tests.field_trial.rogue flood DEVICE_ADDR PORT BODIES HALF_OPEN
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
import time
from pathlib import Path

from aiohttp import web
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from edge_console.core.protocol import API_VERSION, SERVICE_TYPE
from edge_console.core.trust.tls_identity import load_or_create_identity, server_context

ROUTER_PAGE = "<html><head><title>Router login</title></head><body><form>admin password</form></body></html>"


async def main(addr: str, state: Path, claimed_id: str, claimed_name: str) -> None:
    log = state / "requests.jsonl"
    identity = load_or_create_identity(state / "tls", "impostor")

    def note(port: int, request: web.Request) -> None:
        with open(log, "a") as f:
            f.write(json.dumps({"port": port, "method": request.method, "path": request.path}) + "\n")

    async def router(request: web.Request) -> web.Response:
        note(8470, request)
        return web.Response(text=ROUTER_PAGE, content_type="text/html")

    async def impostor(request: web.Request) -> web.Response:
        note(8471, request)
        if request.path == "/v1/info":
            return web.json_response({"id": claimed_id, "name": claimed_name, "api_version": API_VERSION,
                                      "fingerprint": identity.fingerprint, "insecure_lab_mode": False,
                                      "pairing_code_open": False, "caller_role": None})
        return web.json_response({})

    runners = []
    for port, handler, tls in ((8470, router, None), (8471, impostor, server_context(identity, []))):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, addr, port, ssl_context=tls).start()
        runners.append(runner)
    zc = AsyncZeroconf(interfaces=[addr])
    info = AsyncServiceInfo(SERVICE_TYPE, f"{claimed_name} [{claimed_id[:6]}].{SERVICE_TYPE}",
                            addresses=[socket.inet_aton(addr)], port=8471,
                            properties={"id": claimed_id, "name": claimed_name, "api": str(API_VERSION)},
                            server="impostor.local.")
    await (await zc.async_register_service(info, allow_name_change=True))
    print("rogue ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await zc.async_close()
        for runner in runners:
            await runner.cleanup()


PAIR_FINISH_HEAD = ("POST /v1/pair/finish HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 16000\r\n\r\n{{")  # and nothing more of the 16,000 bytes


def _client_hello() -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    try:
        ctx.wrap_bio(ssl.MemoryBIO(), outgoing).do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


async def _closed_by_peer(reader: asyncio.StreamReader, limit_s: float) -> bool:
    """Read until the other side closes (True) or limit_s passes (False)."""
    try:
        while await asyncio.wait_for(reader.read(65536), limit_s):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        pass
    return True


async def flood(addr: str, port: int, bodies: int, half_open: int) -> dict:
    no_certificate = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_certificate.check_hostname, no_certificate.verify_mode = False, ssl.CERT_NONE
    handshakes, connecting = asyncio.Semaphore(8), asyncio.Semaphore(64)
    held: list[float] = []
    figures = {"bodies_sent": 0, "half_open_sent": 0, "half_open_closed_by_device": 0}

    async def body() -> None:
        async with handshakes:
            try:
                reader, writer = await asyncio.open_connection(addr, port, ssl=no_certificate)
                writer.write(PAIR_FINISH_HEAD.format(addr=addr).encode())
                await writer.drain()
            except OSError:
                return
        figures["bodies_sent"] += 1
        sent = time.monotonic()
        await _closed_by_peer(reader, 60)
        held.append(round(time.monotonic() - sent, 2))
        writer.transport.abort()

    async def never_finished(first_bytes: bytes) -> None:
        async with connecting:
            try:
                reader, writer = await asyncio.open_connection(addr, port)
                writer.write(first_bytes)
            except OSError:
                return
        figures["half_open_sent"] += 1
        closed = await _closed_by_peer(reader, 30)
        figures["half_open_closed_by_device"] += closed
        writer.transport.abort()

    hello = _client_hello()
    holders = [asyncio.create_task(body()) for _ in range(bodies)]
    await asyncio.sleep(1.0)  # the bodies' handshakes first: the flood below pushes out this host's own
    floods = [asyncio.create_task(never_finished((b"", hello[:40], hello)[i % 3])) for i in range(half_open)]
    await asyncio.gather(*holders, *floods)
    return {**figures, "held_s": sorted(held)}


if __name__ == "__main__":
    if sys.argv[1] == "flood":
        print("rogue ready", flush=True)
        print(json.dumps(asyncio.run(flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))),
              flush=True)
    else:
        asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
