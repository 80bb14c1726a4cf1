"""Issue 21 (1, 5, 11): the attacks on the agent's API that broke it, made again against real agents over TLS.

- ids taken from a URL, percent-encoded into paths (`DELETE /v1/uploads/..%2Fpairings` removed every pairing),
  on every route and verb that takes one;
- update-event sockets that were neither counted nor closed on revocation (one viewer held every slot);
- PATCHes to made-up uploads that left lock entries, file paths shown to viewers, any IP literal taken as Host.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from edge_console.agent.api.socket_registry import MAX_PER_CONSOLE
from edge_console.agent.config import AgentConfig
from edge_console.agent.serve import serving
from edge_console.agent.trust.device_trust import TrustStore
from edge_console.bundle.authority import ReleaseAuthority
from edge_console.core.audit.log import AuditLog
from edge_console.core.releases.trust import install_root
from tests.support.agent_harness import Agent
from tests.support.trust import console_identity, device_certificate, enrol, pinned_session

TUS = {"Tus-Resumable": "1.0.0"}
HOSTILE_IDS = ["..%2Fpairings", "..%2F..%2Fcanary", "%2E%2E%2Fpairings", "..%5Cpairings", "release-trust%2Froot",
               "..", "a%00b", "x" * 65, "%2Fetc%2Fpasswd", "a.json", "0123456789abcdef0123456789abcdef%2F..%2F..%2Fcanary"]


@pytest.fixture
def site(parts_v2, tmp_path):
    state = tmp_path / "state"
    admin, viewer, operator = (console_identity(tmp_path / n, n) for n in ("admin", "viewer", "operator"))
    for identity, role in ((admin, "admin"), (viewer, "viewer"), (operator, "operator")):
        enrol(state, identity, role)
    install_root(state / "release-trust", ReleaseAuthority.create(tmp_path / "authority").root_json())
    for canary in ("canary.json", "canary.part"):
        (tmp_path / canary).write_text("must survive")
    agent = Agent(state, model=parts_v2, console=None).start()  # the three consoles above are its pairings
    yield {"agent": agent, "state": state, "admin": admin, "viewer": viewer, "operator": operator,
           "tmp": tmp_path, "cert": device_certificate(state)}
    agent.stop()


def _run(identity, cert, scenario):
    async def go():
        async with pinned_session(identity, cert) as s:
            return await scenario(s)
    return asyncio.run(go())


def test_ids_from_the_url_are_checked_on_every_route_and_verb(site):
    state, url = site["state"], site["agent"].url
    routes = [("DELETE", "/v1/uploads/{}"), ("PATCH", "/v1/uploads/{}"), ("HEAD", "/v1/uploads/{}"),
              ("GET", "/v1/updates/{}"), ("DELETE", "/v1/pairings/{}")]
    before = sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file())

    async def attack(s):
        statuses = {}
        for method, path in routes:
            for bad in HOSTILE_IDS:
                headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
                async with s.request(method, url + path.format(bad), headers=headers, data=b"x") as r:
                    body = await r.json(content_type=None) if method != "HEAD" else {}
                    statuses[method, path, bad] = (r.status, body.get("error"))
        return statuses

    statuses = _run(site["admin"], site["cert"], attack)  # admin: every route's role is met
    # One place refuses them all, before any handler (the router itself answers 404 for a bare "..").
    def expected(method: str, bad: str) -> tuple[int, str | None]:
        status, error = (404, "Not Found") if bad == ".." else (400, "bad id")
        return status, error if method != "HEAD" else None  # a HEAD answer has no body

    wrong = {k: v for k, v in statuses.items() if v != expected(k[0], k[2])}
    assert not wrong, wrong
    # Nothing was removed, inside the state folder or outside it, and the pairings all hold.
    after = sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file())
    assert set(before) <= set(after), set(before) - set(after)
    assert all((site["tmp"] / c).read_text() == "must survive" for c in ("canary.json", "canary.part"))
    assert len(TrustStore(state).pairings()) == 3
    assert (state / "release-trust" / "root.json").is_file()
    assert _run(site["viewer"], site["cert"], lambda s: _status(s, url + "/v1/health")) == 200


async def _status(s, url: str) -> int:
    async with s.get(url) as r:
        await r.read()
        return r.status


def test_an_upload_deleted_by_an_operator_is_in_the_audit_log_and_listed_before(site):
    url, state = site["agent"].url, site["state"]

    async def scenario(s):
        async with s.post(url + "/v1/uploads", headers={**TUS, "Upload-Length": "1000"}) as r:
            location = r.headers["Location"]
        async with s.get(url + "/v1/uploads") as r:
            listed = await r.json()
        async with s.delete(url + location, headers=TUS) as r:
            deleted = r.status
        async with s.delete(url + location, headers=TUS) as r:
            again = r.status
        return location.rsplit("/", 1)[1], listed, deleted, again

    upload_id, listed, deleted, again = _run(site["operator"], site["cert"], scenario)
    assert [u["id"] for u in listed["uploads"]] == [upload_id] and listed["reserved_bytes"] == 2000
    assert (deleted, again) == (204, 404)
    entries = [e for e in AuditLog(state / "audit.log").entries() if e["event"] == "upload deleted"]
    assert len(entries) == 1 and entries[0]["details"]["upload"] == upload_id
    assert "operator" in entries[0]["actor"]


def test_update_event_sockets_are_counted_limited_per_console_and_closed_on_revocation(site):
    url, state = site["agent"].url, site["state"]
    ws_url = url + "/v1/updates/events"

    async def scenario():
        async with pinned_session(site["viewer"], site["cert"]) as viewer, \
                pinned_session(site["operator"], site["cert"]) as operator:
            held = [await viewer.ws_connect(ws_url) for _ in range(MAX_PER_CONSOLE)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await viewer.ws_connect(url + "/v1/stream")  # any socket counts: this console is at its limit
            stream = await operator.ws_connect(url + "/v1/stream")  # another console is not locked out
            frame = await stream.receive(timeout=15)
            # Revoke the viewer on the device's terminal: its event sockets close, not at its next request.
            viewer_pairing = next(p for p in TrustStore(state).pairings() if p.role == "viewer")
            TrustStore(state).revoke(viewer_pairing.id)
            closes = [await ws.receive(timeout=10) for ws in held]
            await stream.close()
            return refused.value.status, frame.type, closes

    status, frame_type, closes = asyncio.run(scenario())
    assert status == 503 and frame_type == aiohttp.WSMsgType.BINARY
    assert all(msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
               for msg in closes), closes
    assert {msg.data for msg in closes if msg.type == aiohttp.WSMsgType.CLOSE} == {4401}


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


def test_viewers_see_no_file_paths_and_foreign_ip_hosts_are_refused(site):
    url, port = site["agent"].url, site["agent"].port

    async def scenario(s):
        async with s.get(url + "/v1/models") as r:
            models = await r.json()
        statuses = {}
        for host in ("192.0.2.10", f"192.0.2.10:{port}", "[2001:db8::1]", f"127.0.0.1:{port}", "127.0.0.1"):
            async with s.get(url + "/v1/health", headers={"Host": host}) as r:
                statuses[host] = r.status
        return models, statuses

    models, statuses = _run(site["viewer"], site["cert"], scenario)
    assert models["running"]["line"] == "parts" and models["running"]["sha256"]
    assert "path" not in _keys(models), json.dumps(models)[:500]
    assert statuses == {"192.0.2.10": 421, f"192.0.2.10:{port}": 421, "[2001:db8::1]": 421,
                        f"127.0.0.1:{port}": 200, "127.0.0.1": 200}


def test_a_device_behind_a_nat_names_its_other_address(parts_v2, tmp_path):
    state = tmp_path / "state"
    me = console_identity(tmp_path / "console")
    agent = Agent(state, model=parts_v2, console=me, role="viewer", extra=["--allow-host", "192.0.2.10"]).start()
    try:
        async def scenario(s):
            statuses = []
            for host in ("192.0.2.10", "192.0.2.11"):
                async with s.get(agent.url + "/v1/health", headers={"Host": host}) as r:
                    statuses.append((r.status, await r.json()))
            return statuses
        (allowed, _), (refused, body) = _run(me, device_certificate(state), scenario)
    finally:
        agent.stop()
    assert allowed == 200 and refused == 421 and "--allow-host" in body["detail"]


def test_patches_to_made_up_uploads_leave_nothing_behind(parts_v2, tmp_path):
    state = tmp_path / "state"
    me = console_identity(tmp_path / "console")
    enrol(state, me, "operator")
    config = AgentConfig(model=str(parts_v2), port=0, interfaces=["127.0.0.1"], state_dir=str(state), threads=1,
                         advertise=False).validate()

    async def scenario():
        async with serving(config) as served, pinned_session(me, device_certificate(state)) as s:
            statuses = set()
            for n in range(200):
                headers = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
                async with s.patch(f"{served.url}/v1/uploads/{n:032x}", headers=headers, data=b"x") as r:
                    statuses.add(r.status)
            uploads = served.agent.uploads
            return statuses, len(uploads._locks), len(uploads._generation), list((state / "uploads").iterdir())

    statuses, locks, generations, files = asyncio.run(scenario())
    assert statuses == {404} and locks == 0 and generations == 0
    assert [f.name for f in files if not f.name.startswith(".")] == []


def test_a_short_fingerprint_prefix_revokes_nobody(site):
    """A sibling of the id checks: `DELETE /v1/pairings/a` revoked whichever console's fingerprint began with a."""
    url, state = site["agent"].url, site["state"]
    victims = [p for p in TrustStore(state).pairings() if p.role != "admin"]

    async def scenario(s):
        out = []
        for victim in victims:
            for prefix in (victim.fingerprint[:1], victim.fingerprint[:8], victim.fingerprint[:15]):
                async with s.delete(f"{url}/v1/pairings/{prefix}") as r:
                    out.append(r.status)
        return out

    assert set(_run(site["admin"], site["cert"], scenario)) == {404}
    assert len(TrustStore(state).pairings()) == 3
    assert TrustStore(state).revoke(victims[0].fingerprint[:16]) is not None  # a prefix as the CLI shows it
