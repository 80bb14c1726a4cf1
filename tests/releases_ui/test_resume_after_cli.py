"""Issue 23: a push started by the headless command (`edge-console push`) and cut mid-upload is resumed by the
window with the very bytes whose offset it resumes.

The console's delivery key is in the authority's root, so every delivery of a release is signed afresh (its own
snapshot and timestamp): two deliveries of one release differ. The command pushes through a slow link and is
killed while the device holds part of its upload; the window, opened on the same data folder, offers to resume the
rollout. What the device ends with is checked on the device itself: the model it runs, the metadata it holds
(those of the delivery whose first bytes it had), no upload left over, one install; and the rollout's records say
the same (the delivery's bytes, the upload resumed rather than sent again).

Before rollout_runner.py the window made a fresh delivery for the resume and sent its tail after the device's head
of the command's one: the device ended with the command's metadata while the console kept and recorded another
delivery (had the cut fallen inside the metadata, the device would have refused the mix)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from edge_console.bundle.authority import ReleaseAuthority, public_key_from_json
from edge_console.client.releases.delivery import delivery_public_key
from edge_console.client.releases.rollout import RolloutStore
from tests.support.agent_harness import ROOT, pairing_code, wait_until
from tests.support.slow_link import SlowLink

from .support import LONG, Site, add_and_wait, device_api, make_site, open_window, running, trusting_agent

CLI = [sys.executable, "-m", "edge_console.client.releases.cli"]
UPLINK_BYTES_PER_S = 96 * 1024  # the 3.6 MB delivery would take ~40 s: the command is stopped long before


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, "--data-dir", str(data), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def held_versions(delivery: bytes) -> dict[str, int]:
    """The snapshot and timestamp versions a delivery (a release file's bytes) carries."""
    with tarfile.open(fileobj=io.BytesIO(delivery)) as tar:
        return {name: json.loads(tar.extractfile(f"metadata/{name}.json").read())["signed"]["version"]
                for name in ("snapshot", "timestamp")}


def test_a_push_the_command_started_and_lost_mid_upload_is_resumed_by_the_window_with_the_same_bytes(
        qtbot, agent_factory, fleet_factory, tmp_path):
    data = tmp_path / "console"  # the command's --data-dir; the window's too (the folder of its database)
    shared = make_site(tmp_path)
    authority = ReleaseAuthority.create(tmp_path / "authority", extra_delivery_keys=[
        public_key_from_json(delivery_public_key(data))])  # the console signs every delivery itself
    root = tmp_path / "root.json"
    root.write_bytes(authority.root_json())
    site = Site(authority, root, shared.golden, shared.usb)
    release = site.release("2.0.0")
    agent = trusting_agent(agent_factory, "Line 1", site)
    cli(data, "pair", str(agent.address), "--code", pairing_code(agent.state_dir, "operator"))
    cli(data, "release", "trust", str(root))
    cli(data, "release", "import", str(release))

    # The command pushes through a slow link and is killed once the device has some of the upload.
    link = SlowLink(agent.address.port, UPLINK_BYTES_PER_S)
    uploads = agent.state_dir / "uploads"
    push = subprocess.Popen([*CLI, "--data-dir", str(data), "push", "--release", "parts:2.0.0", "--devices",
                             link.address], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(p.stat().st_size > 0 for p in uploads.glob("*.part")) or push.poll() is not None,
                   timeout=120, interval=0.01, what="the first bytes of the upload on the device")
    finally:
        push.kill()
        said = push.communicate()[1]
        link.close()
    assert push.returncode == -9, f"the command ended by itself before it could be cut: {said}"
    listed = wait_until(lambda: [u for u in device_api(agent, "/v1/uploads")["uploads"] if u["offset"] > 0],
                        what="the device to keep what arrived of the cut upload")
    assert len(listed) == 1 and 0 < listed[0]["offset"] < listed[0]["length"], listed
    upload = listed[0]
    head = (uploads / f"{upload['id']}.part").read_bytes()[: upload["offset"]]
    # The delivery the command was sending: the one file of the console's whose first bytes the device holds.
    sending = [p for p in data.rglob("*.edgerelease") if p.read_bytes().startswith(head)]
    assert len(sending) == 1, sending
    first = sending[0].read_bytes()
    store = RolloutStore(data / "console.sqlite")
    (cut,) = store.all()
    store.close()
    assert cut.status == "running" and cut.steps[0].phase == "pushing", cut
    assert cut.steps[0].push["upload_url"] == f"/v1/uploads/{upload['id']}" and not cut.steps[0].push["update_id"]

    # The window, on the same data folder, offers to resume it; it is resumed from there.
    fleet = fleet_factory(discover=False, database=data / "console.sqlite")
    window = open_window(fleet, tmp_path, qtbot)
    add_and_wait(fleet, [agent], qtbot)
    qtbot.waitUntil(lambda: "Resume rollout of parts 2.0.0?" in window.notice.text, timeout=LONG)
    window.notice.action_button.click()
    center = window.releases
    qtbot.waitUntil(lambda: cut.id in center.rollouts.rollouts and center.rollouts.rollouts[cut.id].status != "running"
                    and not center.rollouts.is_running(cut.id), timeout=LONG)
    rollout = center.rollouts.rollouts[cut.id]

    # The device: the release runs, from one delivery, installed once, with nothing left of the upload.
    step = rollout.steps[0]
    assert (rollout.status, step.phase, step.record.get("state")) == ("done", "good", "good"), (rollout, step)
    assert running(agent) == ("parts", "2.0.0")
    installs = [u for u in device_api(agent, "/v1/models")["updates"] if u.get("version") == "2.0.0"]
    assert len(installs) == 1, installs
    assert device_api(agent, "/v1/uploads")["uploads"] == [], "the cut upload was finished, not left beside another"
    held = device_api(agent, "/v1/release-trust")["held"]
    assert {k: held[k] for k in ("snapshot", "timestamp")} == held_versions(first), \
        "the device holds the metadata of the delivery whose first bytes it had"
    signed = json.loads((data / "delivery-version.json").read_text())["last_version"]
    assert signed == held["timestamp"], "the resume signed a fresh delivery and sent its bytes after the old ones"

    # The rollout's records: the resume sent that delivery's bytes, on the upload the command began (resumed, not
    # sent again); its file is gone once the rollout ended (nothing resumes it any more).
    saved = RolloutStore(data / "console.sqlite")
    try:
        record = saved.get(cut.id)
    finally:
        saved.close()
    assert record.to_dict() == rollout.to_dict()
    sha256 = hashlib.sha256(first).hexdigest()
    assert record.delivery == {"name": sending[0].name, "sha256": sha256, "size": len(first)}, \
        f"the resume sent other bytes than those whose first {upload['offset']} the device had"
    assert record.steps[0].push["sha256"] == sha256
    assert record.steps[0].push["upload_url"] == cut.steps[0].push["upload_url"], "resumed, not sent again"
    assert not (data / "deliveries" / cut.id).exists()
    window.close()
