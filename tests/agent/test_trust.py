"""Issue 11, the device's side: TLS 1.3 only, pairing by code, roles on every route, revocation, no secrets out.

Real agents (in this process through `serving`, or real processes), real TLS on 127.0.0.1, the console's real
pairing client.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time

import aiohttp
import pytest

from edge_console.agent.config import AgentConfig
from edge_console.agent.serve import serving
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.pairing_client import fetch_certificate, pair
from edge_console.core.trust.pairing_protocol import PairingFailed
from edge_console.core.trust.tls_identity import certificate_fingerprint, client_context
from tests.support.agents import ROOT, AgentProcess, agent_args
from tests.support.trust import console_identity, device_certificate, enrol, pinned_session


def _agent_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.agent.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def _code(state_dir, role: str) -> str:
    out = _agent_cli("pair", "--role", role, "--state-dir", str(state_dir)).stdout
    return out.split(": ", 1)[1].split()[0].replace("-", "")


def _fill(path: str) -> str:
    for name in ("{pairing_id}", "{upload_id}", "{update_id}"):
        path = path.replace(name, "0123456789ab")
    return path


def test_every_route_refuses_an_unpaired_console_and_checks_roles(parts_v2, tmp_path):
    """Walks the router: a route added later without a role, or with the wrong one, fails here."""
    viewer, operator = console_identity(tmp_path / "viewer"), console_identity(tmp_path / "operator")
    state = tmp_path / "state"
    enrol(state, viewer, "viewer")
    enrol(state, operator, "operator")
    config = AgentConfig(model=str(parts_v2), port=0, interfaces=["127.0.0.1"], state_dir=str(state), threads=1,
                         advertise=False, insecure_lab_mode=False).validate()
    open_routes = {"/v1/info", "/v1/pair/start", "/v1/pair/finish"}
    needs = {"/v1/pipeline/restart": "operator", "/v1/pairings": "admin", "/v1/pairings/{pairing_id}": "admin",
             "/v1/pairing-codes": "admin", "/v1/uploads": "operator", "/v1/uploads/{upload_id}": "operator",
             "/v1/updates": "operator", "/v1/models/rollback": "operator", "/v1/release-trust/root": "admin"}

    async def scenario():
        async with serving(config) as served:
            cert = device_certificate(state)
            routes = [(r.method, r.resource.canonical) for r in served.app.router.routes() if r.method != "HEAD"]
            results = {}
            for who, identity in (("unpaired", None), ("viewer", viewer), ("operator", operator)):
                async with pinned_session(identity, cert) as s:
                    for method, path in routes:
                        async with s.request(method, f"https://127.0.0.1:{served.port}{_fill(path)}",
                                             json={}) as r:
                            results[who, method, path] = r.status
            return routes, results

    routes, results = asyncio.run(scenario())
    assert len(routes) >= 12
    for method, path in routes:
        unpaired = results["unpaired", method, path]
        if path in open_routes:
            assert unpaired not in (401, 403), (method, path)
        else:
            assert unpaired == 401, (method, path, unpaired)
        for who in ("viewer", "operator"):
            needed = needs.get(path, "viewer")
            allowed = ["viewer", "operator", "admin"].index(who) >= ["viewer", "operator", "admin"].index(needed)
            status = results[who, method, path]
            assert (status == 403) == (not allowed and path not in open_routes), (who, method, path, status)


def test_pairing_by_code_then_roles_revocation_and_no_secrets_out(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = AgentProcess(agent_args(parts_v2, state, "--no-advertise", secure=True))
    address = DeviceAddress("127.0.0.1", agent.agents[0]["port"])
    me = console_identity(tmp_path / "console")
    code = _code(state, "operator")
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
        assert info["fingerprint"] == agent.agents[0]["fingerprint"] == certificate_fingerprint(
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

        listing = _agent_cli("pairings", "--state-dir", str(state)).stdout
        assert "Laptop of A. Engineer" in listing and "operator" in listing
        pairing_id = listing.split()[0]
        assert _agent_cli("unpair", pairing_id, "--state-dir", str(state)).returncode == 0
        assert asyncio.run(paired())["/v1/health"] == 401  # revoked: refused from its next request on
    finally:
        agent.stop()
    secrets_files = [state / "tls" / "identity.key", state / "pairings.json", me.key_path]
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets_files)
    said = "".join(agent.stderr) + "".join(agent.lines)
    assert code not in said and f"{code[:4]}-{code[4:]}" not in said


def test_wrong_codes_are_limited_burnt_and_codes_expire(parts_v2, tmp_path):
    state = tmp_path / "state"
    agent = AgentProcess(agent_args(parts_v2, state, "--no-advertise", secure=True))
    address = DeviceAddress("127.0.0.1", agent.agents[0]["port"])
    me = console_identity(tmp_path / "console")
    try:
        code = _code(state, "admin")
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
        _code(state, "admin")
        stored = json.loads((state / "pairing-code.json").read_text())
        stored["expires_at"] = time.time() - 1
        (state / "pairing-code.json").write_text(json.dumps(stored))
        time.sleep(1.05)
        with pytest.raises(PairingFailed, match="no pairing code open"):
            asyncio.run(pair(address, stored["code"], me, "late"))
    finally:
        agent.stop()
    assert "No console is paired" in _agent_cli("pairings", "--state-dir", str(state)).stdout


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
    agent = AgentProcess(agent_args(parts_v2, state, "--no-advertise", secure=True))
    me = console_identity(tmp_path / "console")
    mitm = console_identity(tmp_path / "mitm", "edge-agent impostor")
    enrol(state, me, "viewer")  # already paired: the pinned certificate must not be swapped
    try:
        code = _code(state, "admin")

        async def scenario():
            relay = _TlsRelay(agent.agents[0]["port"], mitm)
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
    assert "victim" not in _agent_cli("pairings", "--state-dir", str(state)).stdout


def test_browsers_and_foreign_host_names_are_refused(parts_v2, tmp_path):
    state = tmp_path / "state"
    me = console_identity(tmp_path / "console")
    enrol(state, me, "admin")
    agent = AgentProcess(agent_args(parts_v2, state, "--no-advertise", secure=True))
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
