"""Issue 11, the device's side: TLS 1.3 only, pairing by code, roles on every route, revocation, no secrets out.

Real agents (in this process through `serving`, or real processes), real TLS on 127.0.0.1, the console's real
pairing client.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time

import aiohttp
import pytest

from edge_console.agent.api.access import ACCESS
from edge_console.agent.config import AgentConfig
from edge_console.agent.serve import serving
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.pairing_client import fetch_certificate, pair
from edge_console.core.trust.pairing_protocol import PairingFailed
from edge_console.core.trust.tls_identity import certificate_fingerprint, client_context
from tests.support.agent_harness import Agent, agent_cli, pairing_code
from tests.support.trust import console_identity, device_certificate, enrol, pinned_session


def _fill(path: str) -> str:
    for name in ("{pairing_id}", "{upload_id}", "{update_id}"):
        path = path.replace(name, "0123456789ab")
    return path


def test_every_route_refuses_an_unpaired_console_and_checks_roles(parts_v2, tmp_path):
    """Walks the router, method by method: a route or a method added later without a role, or with the wrong one,
    fails here."""
    viewer, operator = console_identity(tmp_path / "viewer"), console_identity(tmp_path / "operator")
    state = tmp_path / "state"
    enrol(state, viewer, "viewer")
    enrol(state, operator, "operator")
    config = AgentConfig(model=str(parts_v2), port=0, interfaces=["127.0.0.1"], state_dir=str(state), threads=1,
                         advertise=False, insecure_lab_mode=False).validate()
    open_routes = {("GET", "/v1/info"), ("POST", "/v1/pair/start"), ("POST", "/v1/pair/finish")}
    uploads = [(method, "/v1/uploads") for method in ("OPTIONS", "POST", "GET")] + [
        (method, "/v1/uploads/{upload_id}") for method in ("HEAD", "PATCH", "DELETE")]
    needs = {("POST", "/v1/pipeline/restart"): "operator", ("GET", "/v1/pairings"): "admin",
             ("DELETE", "/v1/pairings/{pairing_id}"): "admin", ("POST", "/v1/pairing-codes"): "admin",
             **dict.fromkeys(uploads, "operator"), ("POST", "/v1/updates"): "operator",
             ("POST", "/v1/models/rollback"): "operator", ("PUT", "/v1/release-trust/root"): "admin"}

    async def scenario():
        async with serving(config) as served:
            cert = device_certificate(state)
            routes = [(r.method, r.resource.canonical) for r in served.app.router.routes()]
            declared = dict(served.app[ACCESS].roles)
            results = {}
            for who, identity in (("unpaired", None), ("viewer", viewer), ("operator", operator)):
                async with pinned_session(identity, cert) as s:
                    for method, path in routes:
                        async with s.request(method, f"https://127.0.0.1:{served.port}{_fill(path)}",
                                             json={}) as r:
                            results[who, method, path] = r.status
            return routes, declared, results

    routes, declared, results = asyncio.run(scenario())
    assert len(routes) >= 20 and set(uploads) <= set(routes)
    # Every method of every path declares its own role, and no role is declared for a route that does not exist.
    assert sorted(declared) == sorted(routes)
    assert {route for route, role in declared.items() if role == "open"} == open_routes
    for method, path in routes:
        unpaired = results["unpaired", method, path]
        if (method, path) in open_routes:
            assert unpaired not in (401, 403), (method, path)
        else:
            assert unpaired == 401, (method, path, unpaired)
        for who in ("viewer", "operator"):
            needed = needs.get((method, path), "viewer")
            assert declared[method, path] == ("open" if (method, path) in open_routes else needed), (method, path)
            allowed = ["viewer", "operator", "admin"].index(who) >= ["viewer", "operator", "admin"].index(needed)
            status = results[who, method, path]
            assert (status == 403) == (not allowed and (method, path) not in open_routes), (who, method, path, status)


def test_a_method_without_its_own_role_is_refused_even_where_its_path_has_one(tmp_path):
    """Roles belong to method and path: a POST added beside a declared GET is refused to everyone, an admin too.
    The real access middleware on 127.0.0.1 (lab mode: every caller is an admin)."""
    from aiohttp import web

    from edge_console.agent.api.access import Access, add_routes, authorize
    from edge_console.agent.trust.device_trust import TrustStore

    async def thing(request: web.Request) -> web.Response:
        return web.json_response({"thing": request.method})

    async def scenario():
        access = Access("device", None, TrustStore(tmp_path), insecure=True)
        app = web.Application(middlewares=[authorize])
        app[ACCESS] = access
        add_routes(app, access.roles, [("GET", "/v1/thing", thing, "viewer")])
        app.router.add_route("POST", "/v1/thing", thing)  # registered without declaring a role
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as s:
                answers = {}
                for method in ("GET", "POST", "PUT"):
                    async with s.request(method, f"http://127.0.0.1:{port}/v1/thing") as r:
                        answers[method] = (r.status, await r.json() if r.status != 405 else None)
                return answers
        finally:
            await runner.cleanup()

    answers = asyncio.run(scenario())
    assert answers["GET"] == (200, {"thing": "GET"})
    assert answers["POST"] == (403, {"error": "forbidden", "detail": "this route is not available"})
    assert answers["PUT"][0] == 405  # no such route at all: the router's own answer

def test_pairing_by_code_then_roles_revocation_and_no_secrets_out(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=parts_v2, console=None).start()  # paired below, by code
    address = agent.address
    me = console_identity(tmp_path / "console")
    code = pairing_code(state, "operator").replace("-", "")
    try:
        # Before pairing: the minimal info only, everything else refused with a way forward.
        async def before():
            async with pinned_session(None, device_certificate(state)) as s:
                async with s.get(f"https://{address}/v1/info") as r:
                    info = await r.json()
                async with s.get(f"https://{address}/v1/health") as r:
                    refused = (r.status, await r.json())
            return info, refused

        info, (status, refusal) = asyncio.run(before())
        assert set(info) >= {"id", "name", "api_version", "fingerprint"} and "model" not in info
        assert info["fingerprint"] == agent.fingerprint == certificate_fingerprint(
            device_certificate(state))
        assert status == 401 and "edge-agent pair" in refusal["detail"]

        result = asyncio.run(pair(address, code, me, "Laptop of A. Engineer"))
        assert result.role == "operator" and result.device_id == info["id"]
        assert result.fingerprint == info["fingerprint"]

        async def paired():
            async with pinned_session(me, result.certificate_pem) as s:
                out = {}
                for method, path in (("GET", "/v1/health"), ("POST", "/v1/pipeline/restart"),
                                     ("GET", "/v1/pairings")):
                    async with s.request(method, f"https://{address}{path}") as r:
                        out[path] = r.status
                async with s.get(f"https://{address}/v1/info") as r:
                    out["info"] = await r.json()
                return out

        out = asyncio.run(paired())
        assert out["/v1/health"] == 200 and out["/v1/pipeline/restart"] == 200 and out["/v1/pairings"] == 403
        assert out["info"]["caller_role"] == "operator" and out["info"]["model"]["version"] == "2.0.0"
        # The code is single-use.
        with pytest.raises(PairingFailed, match="no pairing code open"):
            asyncio.run(pair(address, code, console_identity(tmp_path / "other"), "other"))

        listing = agent_cli("pairings", "--state-dir", str(state)).stdout
        assert "Laptop of A. Engineer" in listing and "operator" in listing
        pairing_id = listing.split()[0]
        assert agent_cli("unpair", pairing_id, "--state-dir", str(state)).returncode == 0
        assert asyncio.run(paired())["/v1/health"] == 401  # revoked: refused from its next request on
    finally:
        agent.stop()
    secrets_files = [state / "tls" / "identity.key", state / "pairings.json", me.key_path]
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets_files)
    said = agent.log()
    assert code not in said and f"{code[:4]}-{code[4:]}" not in said


def test_wrong_codes_are_limited_burnt_and_codes_expire(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=parts_v2, console=None).start()  # no console paired: they guess
    address = agent.address
    me = console_identity(tmp_path / "console")
    try:
        code = pairing_code(state, "admin").replace("-", "")
        wrong = f"{(int(code) + 1) % 10 ** 8:08d}"
        messages = []
        for _ in range(5):
            with pytest.raises(PairingFailed) as err:
                asyncio.run(pair(address, wrong, me, "guesser"))
            messages.append(str(err.value))
            time.sleep(1.05)  # the device takes one attempt a second
        assert "code does not match" in messages[0] and "4 attempts left" in messages[0]
        # Five failures from this address: it may not try this code again, even with the right one (others may:
        # tests/agent/test_pairing_attacks.py).
        with pytest.raises(PairingFailed, match="may not try this code again"):
            asyncio.run(pair(address, code, me, "too late"))
        # Expiry: a code whose ten minutes are over is refused.
        pairing_code(state, "admin")
        stored = json.loads((state / "pairing-code.json").read_text())
        stored["expires_at"] = time.time() - 1
        (state / "pairing-code.json").write_text(json.dumps(stored))
        time.sleep(1.05)
        with pytest.raises(PairingFailed, match="no pairing code open"):
            asyncio.run(pair(address, stored["code"], me, "late"))
    finally:
        agent.stop()
    assert "No console is paired" in agent_cli("pairings", "--state-dir", str(state)).stdout


class _TlsRelay:
    """A man in the middle on 127.0.0.1: terminates TLS with its own certificate and relays to the device."""

    def __init__(self, target_port: int, identity) -> None:
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(identity.cert_path, identity.key_path)
        self.server = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self.context)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port,
                                                             ssl=client_context(None, None))

        async def pump(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def test_a_man_in_the_middle_can_neither_pair_nor_pass_for_the_device(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=parts_v2, console=None).start()
    me = console_identity(tmp_path / "console")
    mitm = console_identity(tmp_path / "mitm", "edge-agent impostor")
    enrol(state, me, "viewer")  # already paired: the pinned certificate must not be swapped
    try:
        code = pairing_code(state, "admin").replace("-", "")

        async def scenario():
            relay = _TlsRelay(agent.port, mitm)
            port = await relay.start()
            via = DeviceAddress("127.0.0.1", port)
            try:
                presented = await fetch_certificate(via)
                with pytest.raises(PairingFailed) as err:
                    await pair(via, code, me, "victim")
                async with pinned_session(me, device_certificate(state)) as s:
                    with pytest.raises(aiohttp.ClientConnectorCertificateError):
                        await s.get(f"https://{via}/v1/health")
                return presented, str(err.value)
            finally:
                relay.server.close()

        presented, message = asyncio.run(scenario())
    finally:
        agent.stop()
    assert certificate_fingerprint(presented) == mitm.fingerprint
    assert "code does not match" in message and "another certificate" in message
    assert "victim" not in agent_cli("pairings", "--state-dir", str(state)).stdout


def test_browsers_and_foreign_host_names_are_refused(parts_v2, tmp_path):
    state = tmp_path / "state"
    me = console_identity(tmp_path / "console")
    agent = Agent(state, model=parts_v2, console=me).start()
    url = agent.url

    async def scenario():
        async with pinned_session(me, device_certificate(state)) as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await s.ws_connect(url + "/v1/stream", headers={"Origin": "http://evil.example"})
            async with s.get(url + "/v1/health", headers={"Host": "evil.example"}) as r:
                host_status = r.status
            async with s.get(url + "/v1/health") as r:
                ok = r.status
            return err.value.status, host_status, ok

    try:
        origin_status, host_status, ok = asyncio.run(scenario())
    finally:
        agent.stop()
    assert origin_status == 403 and host_status == 421 and ok == 200
