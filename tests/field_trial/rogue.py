"""A host on the site that answers but is not an edge agent, run in its own namespace by the field trial:

    port 8470  plain HTTP: a router's login page on every path
    port 8471  TLS with a certificate of its own: /v1/info claims to be a real, paired device (same id and name);
               everything else answers 200 {} (an impostor hoping a console sends it a release)
    mDNS       announces `_edgeinfer._tcp` with that device's id, pointing at itself

Every request is appended to LOG as one JSON line {port, method, path}.

    python -m tests.field_trial.rogue ADDR STATE_DIR CLAIMED_ID CLAIMED_NAME
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from aiohttp import web
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from edge_console.core.protocol import API_VERSION, SERVICE_TYPE
from edge_console.core.tls_identity import load_or_create_identity, server_context

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


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]))
