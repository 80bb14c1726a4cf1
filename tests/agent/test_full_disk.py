"""Issue 21 (6): an operator could fill the device's disk to zero (declared upload sizes were not counted, finished
uploads were kept unlisted for 24 h), and at zero bytes issuing a pairing code returned 500 and a PATCH 500
instead of 507. Real agents over TLS, their state folder on a small tmpfs (root only, as the field trial).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from edge_console.agent.updates._uploads import MAX_UPLOADS
from edge_console.core.audit.log import AuditLog
from edge_console.core.disk_reserve import RESERVE_BYTES
from tests.support.agent_harness import Agent, wait_until
from tests.support.trust import console_identity, device_certificate, pinned_session

TUS = {"Tus-Resumable": "1.0.0"}
MB = 2**20


@contextlib.contextmanager
def small_disk(folder: Path, size_mb: int):
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (root needed): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextlib.contextmanager
def device_on(disk: Path, parts_v2, tmp_path: Path):
    state = disk / "state"
    me = console_identity(tmp_path / "console")  # off the small disk, as the agent's logs
    agent = Agent(state, model=parts_v2, console=me, fps=5, log_dir=tmp_path / "agent-logs").start()
    try:
        yield agent, state, me
    finally:
        agent.stop()


def _run(me, state: Path, scenario):
    async def go():
        async with pinned_session(me, device_certificate(state)) as s:
            return await scenario(s)
    return asyncio.run(go())


async def _create(s, url: str, length: int) -> tuple[int, dict, str]:
    async with s.post(url + "/v1/uploads", headers={**TUS, "Upload-Length": str(length)}) as r:
        body = await r.json(content_type=None) if r.status != 201 else {}
        return r.status, body, r.headers.get("Location", "")


async def _patch(s, url: str, location: str, offset: int, data: bytes) -> tuple[int, dict, str]:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    async with s.patch(url + location, headers=headers, data=data) as r:
        body = await r.json(content_type=None) if r.status != 204 else {}
        return r.status, body, r.headers.get("Upload-Offset", "")


def test_declared_and_finished_uploads_hold_their_space_and_are_listed(parts_v2, tmp_path):
    with small_disk(tmp_path / "disk", 200) as disk, device_on(disk, parts_v2, tmp_path) as (agent, state, me):
        url = agent.url

        async def scenario(s):
            first = await _create(s, url, 40 * MB)
            second = await _create(s, url, 40 * MB)  # the first one's 80 MB are promised: no room for this
            small = [await _create(s, url, 1000) for _ in range(MAX_UPLOADS - 1)]
            for _, _, location in small:
                assert (await _patch(s, url, location, 0, b"r" * 1000))[0] == 204  # finished, not installed
            over = await _create(s, url, 1000)
            async with s.get(url + "/v1/uploads") as r:
                listed = await r.json()
            return first, second, over, listed

        first, second, over, listed = _run(me, state, scenario)
    assert first[0] == 201
    assert second[0] == 507 and "promised to uploads already started" in second[1]["detail"]
    assert over[0] == 429 and f"at most {MAX_UPLOADS} uploads" in over[1]["detail"]
    assert len(listed["uploads"]) == MAX_UPLOADS
    assert sum(u["finished"] for u in listed["uploads"]) == MAX_UPLOADS - 1
    assert listed["reserved_bytes"] == 80 * MB + (MAX_UPLOADS - 1) * 1000


def _fill(disk: Path) -> Path:
    """Fill the disk to its last byte, as another program on the device would."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (MB, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_at_zero_bytes_free_pairing_records_and_telemetry_still_work(parts_v2, tmp_path):
    with small_disk(tmp_path / "disk", 96) as disk, device_on(disk, parts_v2, tmp_path) as (agent, state, me):
        url = agent.url
        assert wait_until(lambda: (state / "disk-reserve").is_file(), 10, what="the disk reserve to be set aside")
        assert (state / "disk-reserve").stat().st_size == RESERVE_BYTES

        async def before(s):
            return await _create(s, url, 1 * MB)  # started while there was room

        status, _, location = _run(me, state, before)
        assert status == 201
        filler = _fill(disk)
        assert os.statvfs(disk).f_bavail == 0

        async def at_zero(s):
            async with s.ws_connect(url + "/v1/telemetry") as ws:
                samples = [json.loads((await ws.receive(timeout=10)).data) for _ in range(3)]
            patched = await _patch(s, url, location, 0, b"p" * MB)
            async with s.post(url + "/v1/pairing-codes", json={"role": "viewer"}) as r:
                code = (r.status, await r.json(content_type=None))
            # The reserve given to the code's write is not there for a release to take.
            patched_after = await _patch(s, url, location, int(patched[2] or 0), b"p" * MB)
            async with s.get(url + "/v1/health") as r:
                health = await r.json()
            return samples, code, patched, patched_after, health

        samples, code, patched, patched_after, health = _run(me, state, at_zero)
        assert samples[-1]["ts"] > samples[0]["ts"]  # telemetry goes on
        assert code[0] == 200 and len(code[1]["code"]) == 8  # the essential write took the reserve
        assert patched[0] == 507 and "disk full" in patched[1]["error"], patched
        assert patched_after[0] == 507, patched_after
        assert any("disk full" in reason for reason in health["reasons"]), health
        issued = [e for e in AuditLog(state / "audit.log").entries() if e["event"] == "pairing code issued"]
        assert issued and issued[-1]["details"]["role"] == "viewer"  # and it was recorded

        filler.unlink()  # space comes back: the reserve is set aside again and health clears
        wait_until(lambda: (state / "disk-reserve").is_file(), 15, what="the reserve to be made again")

        async def health_now(s):
            async with s.get(url + "/v1/health") as r:
                return await r.json()

        wait_until(lambda: not any("disk full" in r for r in _run(me, state, health_now)["reasons"]), 15,
                   what="health to stop saying the disk is full")
