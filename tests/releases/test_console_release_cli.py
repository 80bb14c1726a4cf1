"""Issue 13, headless: the console's `release`, `pair`, `push`, `rollback` and `audit` commands end to end against
real agents on 127.0.0.1 (TLS, pairing, real signed releases). Run as `edge-console` where Qt cannot be imported
(issue 23: the client extra alone runs them), and any attempt to import it fails the command's test."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT, Agent, pairing_code
from tests.support.updates import build, rewrite_bundle
from tests.support.without_qt import EDGE_CONSOLE_WITHOUT_QT, QT_IMPORT_ATTEMPT


def console(data: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([*EDGE_CONSOLE_WITHOUT_QT, "--data-dir", str(data), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert QT_IMPORT_ATTEMPT not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two devices running parts-v1 that trust one release authority; a console paired with both as operator."""
    base = tmp_path_factory.mktemp("site")
    authority = ReleaseAuthority.create(base / "authority")
    golden = golden_frames(base / "golden", count=6)
    devices = []
    for i in (1, 2):
        state = base / f"device-{i}"
        agent = Agent(state, model=demo_model("parts-v1"), name=f"Line {i}", console=None,  # paired below, by code
                      release_root=authority.root_json(), settings={"probation_s": 2}).start()
        devices.append((state, agent))
    data = base / "console"
    for state, agent in devices:
        code = pairing_code(state, "operator")
        paired = console(data, "pair", f"127.0.0.1:{agent.port}", "--code", code)
        assert paired.returncode == 0, paired.stderr
    root = base / "root.json"
    root.write_bytes(authority.root_json())
    assert console(data, "release", "trust", str(root)).returncode == 0
    yield {"base": base, "authority": authority, "golden": golden, "data": data, "devices": devices}
    for _, agent in devices:
        agent.stop()


def _addresses(site) -> str:
    return ",".join(f"127.0.0.1:{agent.port}" for _, agent in site["devices"])


def test_import_push_with_a_canary_and_batches_then_audit(site):
    authority, base, data = site["authority"], site["base"], site["data"]
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", site["golden"], base)
    release = authority.sign(bundle, base / "parts-2.0.0.edgerelease")
    imported = console(data, "release", "import", str(release), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout)["verified"]
    pushed = console(data, "push", "--release", "parts:2.0.0", "--devices", _addresses(site), "--canary", "1",
                     "--batch", "1", "--json")
    assert pushed.returncode == 0, pushed.stderr
    rollout = json.loads(pushed.stdout.splitlines()[-1])
    assert rollout["status"] == "done" and [s["phase"] for s in rollout["steps"]] == ["good", "good"]
    # Followed as it goes (issue 22): a line each time a device reaches another step, not silence until the end.
    said = pushed.stderr
    assert said.index("Line 1: uploading") < said.index("Line 1: checked") < said.index("Line 1: active") \
        < said.index("Line 2: uploading") < said.index("rollout done"), said
    assert rollout["steps"][0]["canary"] and not rollout["steps"][1]["canary"]
    exported = console(data, "audit", "export", "--devices", _addresses(site))
    assert exported.returncode == 0, exported.stderr
    audit = json.loads(exported.stdout)
    assert all(chain["ok"] for chain in audit["chains"]) and len(audit["chains"]) == 3
    events = {(e["source"], e["event"]) for e in audit["entries"]}
    assert ("console", "rollout done") in events and ("Line 1", "model good") in events


def test_a_tampered_release_is_refused_on_import_and_cannot_be_pushed(site):
    base, data = site["base"], site["data"]
    release = site["authority"].sign(build(demo_model("parts-v2"), "parts", "2.0.9", site["golden"], base),
                                     base / "t.edgerelease")
    raw = bytearray(release.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered = base / "tampered.edgerelease"
    tampered.write_bytes(bytes(raw))
    imported = console(data, "release", "import", str(tampered), "--json")
    assert imported.returncode == 1 and not json.loads(imported.stdout)["verified"]
    refused = console(data, "push", "--release", str(tampered), "--devices", _addresses(site))
    assert refused.returncode == 2 and "cannot be pushed" in refused.stderr


def test_a_canary_failing_its_golden_set_halts_the_rollout_before_the_rest(site):
    base, data, authority = site["base"], site["data"], site["authority"]
    good = build(demo_model("parts-v2"), "parts", "3.0.0", site["golden"], base)
    weak = rewrite_bundle(good, base / "weak.edgebundle", replace={"model.onnx": demo_model("parts-v1").read_bytes()})
    release = authority.sign(weak, base / "parts-3.0.0.edgerelease")
    assert console(data, "release", "import", str(release), "--json").returncode == 0
    pushed = console(data, "push", "--release", "parts:3.0.0", "--devices", _addresses(site), "--json")
    rollout = json.loads(pushed.stdout.splitlines()[-1])
    assert pushed.returncode == 1 and rollout["status"] == "halted"
    canary, rest = rollout["steps"]
    assert canary["phase"] == "failed" and "golden set" in canary["detail"]
    assert rest["phase"] == "waiting"  # never sent
    rolled = console(data, "rollback", "--device", _addresses(site).split(",")[1], "--json")
    assert rolled.returncode == 0 and json.loads(rolled.stdout)["factory"]


def test_an_admin_console_lists_and_revokes_pairings_an_operator_cannot(site, tmp_path):
    state, agent = site["devices"][1]
    address = f"127.0.0.1:{agent.port}"
    refused = console(site["data"], "pairings", address)  # the site's console is an operator
    assert refused.returncode == 2 and "needs the admin role" in refused.stderr

    def paired(data: Path, role: str, name: str) -> None:
        code = pairing_code(state, role)
        for _ in range(5):  # the device takes about one pairing attempt a second, and says so
            result = console(data, "pair", address, "--code", code, "--name", name)
            if "limiting pairing attempts" not in result.stderr:
                break
            time.sleep(1.0)
        assert result.returncode == 0, result.stderr

    admin, visitor = tmp_path / "admin", tmp_path / "visitor"
    paired(admin, "admin", "Admin laptop")
    paired(visitor, "viewer", "Visitor laptop")
    assert console(visitor, "audit", "export", "--devices", address).returncode == 0  # a viewer may read it
    listing = json.loads(console(admin, "pairings", address, "--json").stdout)
    by_name = {p["console_name"]: p for p in listing}
    assert by_name["Admin laptop"]["this_console"] and by_name["Visitor laptop"]["role"] == "viewer"
    revoked = console(admin, "pairings", address, "--revoke", by_name["Visitor laptop"]["id"])
    assert revoked.returncode == 0, revoked.stderr
    after = console(visitor, "audit", "export", "--devices", address)
    assert "revoked" in after.stderr or "no longer accepts" in after.stderr, after.stderr
    names = [p["console_name"] for p in json.loads(console(admin, "pairings", address, "--json").stdout)]
    assert "Visitor laptop" not in names and "Admin laptop" in names
    audit = json.loads(console(admin, "audit", "export", "--devices", address).stdout)
    events = [(e["source"], e["event"]) for e in audit["entries"]]
    assert ("console", "pairing revoked") in events  # both sides keep a record
    assert any(source != "console" and event == "pairing revoked" for source, event in events), events
