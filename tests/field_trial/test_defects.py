"""Regression tests for the defects the field trial found in the update path (D1, D2, D3, D8; benchmarks/FIELD_TRIAL.md
lists every defect). Each is the failing case the trial found, replayed on 127.0.0.1 with real agent processes where
the defect lives in what a process does (a connection, a restart), and in-process where the fault must land at
one exact line (a power cut between two writes, a disk that fills during one step). No root needed.

The other defects: hostile JSON (D6) in test_defects_input.py, clocks (D7) in test_defects_clock.py, the console's
side (D4, D5, D9) in test_defects_console.py.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time

import pytest

from edge_console.core.trust.tls_identity import client_context
from tests.support.agent_harness import Agent
from tests.support.trust import pinned_session

from .corpus_parts import CorpusDevice
from .delivery import get_json, push_release
from .releases import ReleaseKit

pytestmark = pytest.mark.timeout(120)


def _sign_at(kit: ReleaseKit, version: str, frozen_now: float, monkeypatch) -> bytes:
    """A release signed by the kit's authority with the clock stopped at `frozen_now`."""
    import edge_console.core.releases.metadata_versions as release_versions  # where signers take their versions from

    class FrozenClock:
        @staticmethod
        def time() -> float:
            return frozen_now

    monkeypatch.setattr(release_versions, "time", FrozenClock)
    try:
        path = kit.authority.sign(kit.bundle(version), kit.folder / f"frozen-{version}.edgerelease")
    finally:
        monkeypatch.undo()
    return path


def _tls(agent: Agent) -> ssl.SSLContext:
    return client_context(agent.console, agent.certificate())


# -- D1: two releases signed in the same second ---------------------------------------------------------------------
def test_two_releases_signed_in_the_same_second_both_install(secure_agent, kit, monkeypatch):
    """D1: snapshot/timestamp versions were the signing time in whole seconds; TUF takes an equal timestamp version
    for "nothing new" and keeps its cached targets, so a device that took the first release refused the second
    ('not listed in the signed targets metadata'). Two consoles' deliveries within a second did the same."""
    now = time.time()
    first = _sign_at(kit, "2.0.0", now, monkeypatch)
    second = _sign_at(kit, "2.1.0", now, monkeypatch)
    tls = _tls(secure_agent)
    for release, version in ((first, "2.0.0"), (second, "2.1.0")):
        record = asyncio.run(push_release(secure_agent.url, tls, release, until=("active",)))
        assert record["state"] == "active" and record["version"] == version, record.get("reason")
    _, models = asyncio.run(get_json(secure_agent.url, tls, "/v1/models"))
    assert models["running"]["version"] == "2.1.0"


# -- D2: a PATCH whose connection silently died holds the upload's lock ---------------------------------------------
def _tls_socket(agent: Agent) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=agent.certificate().decode())
    ctx.load_cert_chain(agent.console.cert_path, agent.console.key_path)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", agent.port)))


def test_an_upload_resumes_while_its_dead_connection_is_still_open(secure_agent):
    """D2: a tus PATCH whose connection died without a FIN or RST (a cut link, a laptop that moved) kept the
    upload's lock while it waited for its body forever, so the console's resumed PATCH never ended. A newer PATCH
    now supersedes it; the resumed upload ends with every byte in place."""
    agent = secure_agent
    size = 200_000
    data = os.urandom(size)
    tus = {"Tus-Resumable": "1.0.0"}

    async def create(s):
        async with s.post(agent.url + "/v1/uploads", headers={**tus, "Upload-Length": str(size)}) as r:
            assert r.status == 201
            return r.headers["Location"]

    async def run(scenario):
        async with pinned_session(agent.console, agent.certificate()) as s:
            return await asyncio.wait_for(scenario(s), 30)

    location = asyncio.run(run(create))
    stale = _tls_socket(agent)  # the connection the cut link left behind: open, silent
    try:
        stale.sendall((f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\nTus-Resumable: 1.0.0\r\n"
                       f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                       f"Content-Length: {size}\r\n\r\n").encode() + data[: size // 3])
        time.sleep(1.0)  # the device has read that third and waits for the rest

        async def resume(s):  # what the console's push does after a cut: ask the offset, send from there
            async with s.head(agent.url + location, headers=tus) as r:
                offset = int(r.headers["Upload-Offset"])
            async with s.patch(agent.url + location, data=data[offset:], headers={
                    **tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}) as r:
                return r.status, int(r.headers.get("Upload-Offset", -1))

        assert asyncio.run(run(resume)) == (204, size)
        part = next(agent.state_dir.glob(f"uploads/{location.rsplit('/', 1)[1]}.part"))
        assert part.read_bytes() == data
    finally:
        stale.close()


def test_a_silent_upload_body_ends_its_request_and_keeps_what_arrived(tmp_path, monkeypatch):
    """D2, the other half: with no newer PATCH to take over, a body that stops arriving ends its request after
    READ_TIMEOUT_S (shortened here) with what arrived confirmed, instead of holding the upload for ever.
    In-process: the upload routes alone, plain HTTP on 127.0.0.1."""
    from aiohttp import web

    import edge_console.agent.updates._uploads as uploads

    monkeypatch.setattr(uploads, "READ_TIMEOUT_S", 0.5)
    sent = 70_000

    async def scenario():
        store = uploads.UploadStore(tmp_path)
        app = web.Application()
        uploads.add_upload_routes(app, store, {})
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        upload_id, _ = store.create(200_000, "r.edgerelease")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write((f"PATCH /v1/uploads/{upload_id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                          "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                          f"Content-Length: 200000\r\n\r\n").encode() + os.urandom(sent))
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # the body went silent: it ends
            return answer.decode(), store.meta(upload_id)["offset"]
        finally:
            writer.close()
            await writer.wait_closed()  # else the server lingers up to 10 s for the body's unread rest
            await runner.cleanup()
            store.close()

    answer, offset = asyncio.run(scenario())
    assert answer.startswith("HTTP/1.1 204") and f"Upload-Offset: {sent}" in answer, answer
    assert offset == sent


# -- D3: a disk that fills during staging left the update in "staged", its verdict never told -----------------------
def test_a_disk_full_during_staging_still_reports_the_rejection(tmp_path, kit, monkeypatch):
    """D3: when the disk filled while a release was staged, the rejection could not be written (ENOSPC) and the
    exception died in the worker's Future: the record stayed 'staged' with no event, no audit entry, no log line,
    and the console following it waited until its own deadline. (The site's tmpfs version: test_site.py.)"""
    import edge_console.agent.updates._records as update_records
    import edge_console.core.audit.log as audit_log
    from edge_console.agent.updates._service import UpdateManager

    release = kit.authority.sign(kit.bundle("2.0.0"), kit.folder / "disk-full.edgerelease").read_bytes()
    device = CorpusDevice(tmp_path / "state", kit.authority.root_json())
    full = {"now": False}
    real_write_atomic, real_write = update_records.write_atomic, os.write

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write_atomic(path, data):
        return no_space() if full["now"] else real_write_atomic(path, data)

    def write(fd, data):
        return no_space() if full["now"] else real_write(fd, data)

    def stage(self, record, follower=None):  # another writer takes the last free byte while the release is unpacked
        full["now"] = True
        no_space()

    monkeypatch.setattr(update_records, "write_atomic", write_atomic)
    monkeypatch.setattr(audit_log.os, "write", write)
    monkeypatch.setattr(UpdateManager, "_stage", stage)
    try:
        drop = tmp_path / "r.edgerelease"
        drop.write_bytes(release)
        record = device.manager.submit_release(drop, "upload", "test")
        device.manager._busy.result(30)
        events = [e for e in device.manager.events.after(0) if e.get("id") == record.id]
        assert events and events[-1]["state"] == "rejected", [e.get("state") for e in events]
        assert "disk is full" in events[-1]["reason"]
        full["now"] = False  # the other writer is gone: there is room again
        device.manager.take_inbox()  # the agent's once-a-second tick
        device.manager._busy.result(30)
        assert device.manager.records.get(record.id).state == "rejected"
        rejected = [e for e in device.manager.audit.entries() if e["event"] == "update rejected"]
        assert [e["details"]["update"] for e in rejected] == [record.id]
        assert device.manager.audit.verify().ok
    finally:
        full["now"] = False
        device.close()


def test_a_device_whose_disk_is_still_full_starts_and_says_so(tmp_path, kit, monkeypatch):
    """D3, the restart half: an update left 'staged' on a disk that is still full made the agent's start-up fail
    (marking it interrupted could not be written). It starts, and tells the interruption from memory."""
    import edge_console.agent.updates._records as update_records

    device = CorpusDevice(tmp_path / "state", kit.authority.root_json())
    record = device.manager.records.new("upload", "test", "cut.edgerelease")  # a power cut right after staging
    device.close()

    def no_space(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(update_records, "write_atomic", no_space)
    device._open()
    try:
        events = [e for e in device.manager.events.after(0) if e.get("id") == record.id]
        assert events and events[-1]["state"] == "interrupted"
        monkeypatch.undo()
        device.manager.take_inbox()
        device.manager._busy.result(30)
        assert device.manager.records.get(record.id).state == "interrupted"
    finally:
        device.close()


# -- D8: a power cut between the lifecycle's switch and the record's "active" step ----------------------------------
class PowerCut(BaseException):
    """The process dies here: nothing after this line runs (not even `except Exception`)."""


def test_a_power_cut_right_after_the_switch_keeps_the_record_with_the_lifecycle(tmp_path, kit, monkeypatch,
                                                                            start_secure_agent):
    """D8: _activate saves lifecycle.json (probation) before the record's 'active' step; a kill -9 in between
    restarted the agent on the new model while the record said 'interrupted: nothing was changed. Deliver it
    again.' (delivering again was refused as older than installed, and the console's push failed)."""
    from edge_console.agent.updates._lifecycle import ModelLifecycle

    release = kit.authority.sign(kit.bundle("2.0.0"), kit.folder / "cut.edgerelease").read_bytes()
    device = CorpusDevice(tmp_path / "state", kit.authority.root_json())
    real = ModelLifecycle.begin_probation

    def begin_probation(self, *args, **kwargs):
        real(self, *args, **kwargs)  # lifecycle.json now says: 2.0.0 active, in probation
        raise PowerCut()

    monkeypatch.setattr(ModelLifecycle, "begin_probation", begin_probation)
    drop = tmp_path / "r.edgerelease"
    drop.write_bytes(release)
    record = device.manager.submit_release(drop, "upload", "test")
    with pytest.raises(PowerCut):
        device.manager._busy.result(60)
    device.close()
    monkeypatch.undo()
    # The device boots: a real agent on the state folder the power cut left.
    agent = start_secure_agent(tmp_path, role="operator")
    try:
        tls = _tls(agent)
        _, models = asyncio.run(get_json(agent.url, tls, "/v1/models"))
        assert models["running"]["version"] == "2.0.0" and models["running"]["state"] == "probation"
        _, after = asyncio.run(get_json(agent.url, tls, f"/v1/updates/{record.id}"))
        assert after["state"] == "active", (after["state"], after["reason"])
        _, audit = asyncio.run(get_json(agent.url, tls, "/v1/audit"))
        entries = audit["entries"] if isinstance(audit, dict) else audit
        assert any(e["event"] == "model activated" and e["details"]["update"] == record.id for e in entries)
    finally:
        agent.stop()
