"""The agent's TLS read buffer: small on every connection, large only while an upload's body arrives.

This leans on asyncio's TLS layer (`asyncio.sslproto.SSLProtocol.max_size`, not a public API; tls_gate.py says
why), so it is proved here against the real thing: the agent's own server (GuardedAppRunner, TLS done by the
handshake gate) on 127.0.0.1, a real TLS client, and the very helper an upload's PATCH uses. A Python release that
renames or ignores `max_size` fails here, not silently on a device's memory.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from edge_console.agent.api.connections import ConnectionGuard, GuardedAppRunner
from edge_console.agent.api.tls_gate import TLS_READ_BUFFER, tls_layer_of
from edge_console.agent.updates._uploads import UPLOAD_TLS_READ, _large_tls_reads
from edge_console.core.trust.tls_identity import client_context, load_or_create_identity, server_context

BODY = bytes(range(256)) * 4096  # 1 MiB: several TLS records, read while the large buffer is in force


async def _serve_and_upload(tmp_path, tls: bool) -> dict:
    seen: dict = {}

    async def upload(request: web.Request) -> web.Response:
        layer = tls_layer_of(request.protocol)
        seen["handler"], seen["layer"] = request.protocol, layer
        if layer is not None:
            # get_buffer is what asyncio asks before each read of the socket: its length is the read's size
            seen["idle_read"] = len(layer.get_buffer(1 << 20))
        with _large_tls_reads(request):
            if layer is not None:
                seen["upload_read"] = len(layer.get_buffer(1 << 20))
            seen["received"] = len(await request.read())
        if layer is not None:
            seen["max_size_after"] = layer.max_size
        return web.Response(text="ok")

    app = web.Application(client_max_size=2 * len(BODY))
    app.router.add_post("/upload", upload)
    context = server_context(load_or_create_identity(tmp_path / "agent", "test-agent"), []) if tls else None
    runner = GuardedAppRunner(app, ConnectionGuard(), tls=context)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        scheme, ssl = ("https", client_context(None, None)) if tls else ("http", False)
        async with aiohttp.ClientSession() as session, \
                session.post(f"{scheme}://127.0.0.1:{port}/upload", data=BODY, ssl=ssl) as response:
            assert response.status == 200, await response.text()
        # The client has closed its connection: the layer leaves the table once the agent sees it go.
        deadline = time.monotonic() + 10
        while tls_layer_of(seen["handler"]) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        seen["forgotten"] = tls_layer_of(seen["handler"]) is None
    finally:
        await runner.cleanup()
    return seen


def test_an_upload_reads_tls_in_large_pieces_and_every_other_read_is_small(tmp_path):
    seen = asyncio.run(_serve_and_upload(tmp_path, tls=True))
    assert seen["layer"] is not None, "the TLS layer under a request's connection must be found"
    assert seen["idle_read"] == TLS_READ_BUFFER < UPLOAD_TLS_READ
    assert seen["upload_read"] == UPLOAD_TLS_READ
    assert seen["max_size_after"] == TLS_READ_BUFFER  # back to the small reads once the body is in
    assert seen["received"] == len(BODY)
    assert seen["forgotten"], "a closed connection's TLS layer must not stay in the table"


def test_plain_tcp_has_no_tls_layer_and_uploads_all_the_same(tmp_path):
    seen = asyncio.run(_serve_and_upload(tmp_path, tls=False))
    assert seen["layer"] is None
    assert seen["received"] == len(BODY)
