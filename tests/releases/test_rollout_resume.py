"""Resuming a rollout through the one orchestration the window and `edge-console push` share (rollout_runner.py),
against a real agent over TLS: an upload the device holds part of, begun with other bytes than the delivery at
hand (a console before issue 23 did not keep them), is sent again from its start through the state table
(uploading -> waiting -> uploading), the device's part of the old one dropped, never continued with these bytes."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.client.releases.library import ReleaseLibrary
from edge_console.client.releases.rollout import DeviceStep, Rollout, RolloutStore
from edge_console.client.releases.rollout_runner import DeliverySource, RolloutRunner
from edge_console.client.releases.rollout_states import PUSHING, UPLOADING, WAITING
from edge_console.core.paths import demo_model
from edge_console.core.trust.tls_identity import client_context
from tests.support.trust import device_certificate
from tests.support.updates import TrustingDevice, build, upload

pytestmark = pytest.mark.timeout(300)
STALE_BYTES = 64 * 1024


def test_an_upload_begun_with_other_bytes_is_sent_again_from_its_start(tmp_path):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(tmp_path / "golden", count=3), tmp_path)
    # Two signings of one release: the same model, other metadata (other bytes from the first few KiB on).
    earlier = authority.sign(bundle, tmp_path / "earlier.edgerelease")
    release = authority.sign(bundle, tmp_path / "parts-2.0.0.edgerelease")
    data = tmp_path / "console"
    library = ReleaseLibrary(data)
    library.trust(authority.root_json())
    entry = library.import_release(release)
    assert entry.verified, entry.problem
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        tls = client_context(device.console, device_certificate(device.state))
        stale = device.run(lambda s, url: upload(s, url, earlier, cut_after=STALE_BYTES))
        # The row as a console before issue 23 saved it mid-upload: no sha256 says which bytes the upload carries.
        step = DeviceStep("dev-1", "Line 1", phase=PUSHING, push={"upload_url": f"/v1/uploads/{stale}",
                                                                 "offset": STALE_BYTES, "update_id": ""},
                          updated_at=1.0)
        assert step.stage == UPLOADING
        rollout = Rollout("r-legacy", entry.id, entry.label, [step])
        store = RolloutStore(data / "console.sqlite")
        store.save(rollout)
        seen: list[tuple[str, str, str]] = []
        audit: list[str] = []

        async def resume() -> Rollout:
            async with aiohttp.ClientSession() as session:
                runner = RolloutRunner(
                    rollout, session, lambda _device: (device.url, tls), store.save,
                    changed=lambda r: seen.append((r.steps[0].stage, r.steps[0].push["upload_url"], r.steps[0].detail)),
                    audit=lambda event, **_details: audit.append(event))
                return await runner.run(DeliverySource(lambda: library, entry, data))

        try:
            ended = asyncio.run(resume())
            saved = store.get(rollout.id)
        finally:
            store.close()
        sent = hashlib.sha256(release.read_bytes()).hexdigest()  # delivered as signed: this console's key is
        assert ended.status == "done" and ended.steps[0].phase == "good", ended  # not in the root
        assert ended.delivery == {"name": Path(entry.file).name, "sha256": sent, "size": release.stat().st_size}
        assert ended.steps[0].push["sha256"] == sent
        assert ended.steps[0].push["upload_url"] not in ("", f"/v1/uploads/{stale}"), "a new upload, from the start"
        assert seen[0][:2] == (WAITING, "") and seen[0][2].startswith("sent again from the start"), seen[0]
        assert audit[0] == "rollout resumed" and audit[-1] == "rollout done", audit
        assert saved.to_dict() == ended.to_dict()
        assert not (data / "deliveries" / rollout.id).exists(), "the kept delivery goes once the rollout ended"

        # The device: the release runs, installed once, and nothing is left of the stale upload.
        assert device.model()["version"] == "2.0.0"

        async def listing(s, url):
            async with s.get(url + "/v1/uploads") as r:
                return (await r.json())["uploads"]

        async def updates(s, url):
            async with s.get(url + "/v1/models") as r:
                return [u for u in (await r.json())["updates"] if u.get("version") == "2.0.0"]

        assert device.run(listing) == [], "the old upload was dropped, not left to hold the device's space"
        assert len(device.run(updates)) == 1
    finally:
        device.stop()
