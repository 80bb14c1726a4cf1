"""Defects the field trial found on the console's side (D4, D5, D9; benchmarks/FIELD_TRIAL.md lists every defect),
each kept as the case that failed before its fix. Loopback only.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid

import aiohttp
import pytest
from aiohttp import web

from tests.support.fake_devices import serving

from .corpus_parts import replace_members

pytestmark = pytest.mark.timeout(120)


def test_reach_says_a_web_server_is_not_an_edge_agent():
    """D4: reach() falls back to plain HTTP for lab-mode agents; when the plain answer was not an agent's (a
    router page) it re-raised the TLS error (WRONG_VERSION_NUMBER), which the CLI printed as is. (Fixed in the
    console's device access: NotAnAgentAnswer, a ValueError that says what answered.)"""
    from edge_console.client.net.device_access import reach
    from edge_console.client.trust_store import TlsContexts

    async def router_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>Router login</html>", content_type="text/html")

    async def scenario():
        app = web.Application()
        app.router.add_get("/{tail:.*}", router_page)
        async with serving(app) as address:
            try:
                async with aiohttp.ClientSession() as session:
                    await reach(session, address, TlsContexts(None), lambda _id: None)
            except Exception as exc:  # noqa: BLE001 - what the operator is told is what is checked
                return exc
        return None

    error = asyncio.run(scenario())
    assert isinstance(error, ValueError) and not isinstance(error, ssl.SSLError | aiohttp.ClientError), repr(error)
    assert "/v1/info" in str(error) and "WRONG_VERSION_NUMBER" not in str(error), str(error)


def test_a_release_with_malformed_metadata_is_listed_as_refused(tmp_path, kit):
    from edge_console.client.releases.library import ReleaseLibrary

    release = kit.authority.sign(kit.bundle("2.0.0"), kit.folder / "malformed.edgerelease").read_bytes()
    broken = replace_members(release, {"metadata/targets.json": b"{ not json"})
    library = ReleaseLibrary(tmp_path / "console")
    library.trust(kit.authority.root_json())
    path = tmp_path / "broken.edgerelease"
    path.write_bytes(broken)
    entry = library.import_release(path)
    assert not entry.verified and entry.problem


def test_a_device_whose_first_resolve_failed_is_still_reported(monkeypatch):
    """The trial saw it once in ~10 restarts under load; here the first resolve is made to fail as a timed-out
    one does (real mDNS on 127.0.0.1 otherwise)."""
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    import edge_console.client.net.mdns_browser as mdns_browser
    from edge_console.core.protocol import SERVICE_TYPE

    tag = uuid.uuid4().hex[:8]  # other people's agents may announce on this loopback too: ours carries this tag
    name = f"lost-answer-{tag}.{SERVICE_TYPE}"
    failed: list[str] = []

    class FirstResolveTimesOut(mdns_browser.AsyncServiceInfo):
        async def async_request(self, zc, timeout, *args, **kwargs):
            if self.name == name and not failed:
                failed.append(self.name)
                return False  # what async_request returns when no answer came within the timeout
            return await super().async_request(zc, timeout, *args, **kwargs)

    monkeypatch.setattr(mdns_browser, "AsyncServiceInfo", FirstResolveTimesOut)
    found: list[str] = []

    async def scenario() -> None:
        publisher = AsyncZeroconf(interfaces=["127.0.0.1"])  # loopback only: never the machine's real network
        info = ServiceInfo(SERVICE_TYPE, name, addresses=[socket.inet_aton("127.0.0.1")], port=8470,
                           properties={"id": tag}, server=f"lost-{tag}.local.")
        browser = mdns_browser.MdnsBrowser(["127.0.0.1"], on_found=lambda s: found.append(s.service_name),
                                           on_removed=lambda _n: None, on_error=lambda _e: None)
        try:
            await publisher.async_register_service(info)
            await browser.start()
            for _ in range(80):  # a guard, not a timing assertion: a retry a few seconds later is enough
                if name in found:
                    break
                await asyncio.sleep(0.05)
        finally:
            await browser.close()
            await publisher.async_unregister_service(info)
            await publisher.async_close()

    asyncio.run(scenario())
    assert failed, "the browser never tried to resolve the service"
    assert name in found
