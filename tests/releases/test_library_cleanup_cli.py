"""Issue 22, item 9, headless, through the real `edge-console release` command: a release imported before the console
trusted its authority, or under another authority, is checked again when that authority is trusted (from the
library's own copy, or from the file it came from, and said plainly when that file is gone); `release remove`
deletes a release's files and entry, writes it in the console's audit log, and keeps one a rollout still needs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.client.releases.audit_merge import console_audit
from edge_console.client.releases.rollout import DeviceStep, Rollout, RolloutStore
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT
from tests.support.updates import build

pytestmark = pytest.mark.timeout(600)


def console(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.client.releases.cli", "--data-dir", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def listed(data: Path) -> dict[str, dict]:
    return {e["id"]: e for e in json.loads(console(data, "release", "list", "--json").stdout)}


def root_file(authority: ReleaseAuthority, path: Path) -> Path:
    path.write_bytes(authority.root_json())
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Two release authorities (the plant's, and a second one) with a parts release each, on a USB stick."""
    base = tmp_path_factory.mktemp("cleanup-site")
    golden = golden_frames(base / "golden", count=2)
    plant, other = ReleaseAuthority.create(base / "plant"), ReleaseAuthority.create(base / "other")
    usb = base / "usb"
    usb.mkdir()
    plant.sign(build(demo_model("parts-v2"), "parts", "2.0.0", golden, base), usb / "parts-2.0.0.edgerelease")
    other.sign(build(demo_model("parts-v2"), "parts", "2.0.0", golden, base), usb / "other-2.0.0.edgerelease")
    other.sign(build(demo_model("parts-v2"), "parts", "2.0.1", golden, base), usb / "other-2.0.1.edgerelease")
    return {"base": base, "plant": plant, "other": other, "usb": usb}


def test_refused_releases_are_checked_again_when_an_authority_is_trusted(tmp_path, site):
    data = tmp_path / "console"
    usb = tmp_path / "usb"
    usb.mkdir()
    for name in ("parts-2.0.0.edgerelease", "other-2.0.0.edgerelease", "other-2.0.1.edgerelease"):
        (usb / name).write_bytes((site["usb"] / name).read_bytes())

    # Imported before the console trusts anything: refused, and the stick is taken out.
    first = console(data, "release", "import", str(usb / "parts-2.0.0.edgerelease"), "--json")
    assert first.returncode == 1 and "trusts no release authority yet" in json.loads(first.stdout)["problem"]
    (usb / "parts-2.0.0.edgerelease").unlink()
    trusted = console(data, "release", "trust", str(root_file(site["plant"], tmp_path / "plant-root.json")))
    assert trusted.returncode == 0, trusted.stderr
    assert "Checking the 1 refused release(s) in the library again:" in trusted.stdout
    assert "[1/1] parts 2.0.0: verified" in trusted.stdout, trusted.stdout
    assert [e["verified"] for e in listed(data).values()] == [True]

    # Signed by another authority: refused under the plant's; the console then trusts that one instead.
    for name in ("other-2.0.0.edgerelease", "other-2.0.1.edgerelease"):
        refused = console(data, "release", "import", str(usb / name), "--json")
        assert refused.returncode == 1 and json.loads(refused.stdout)["problem"], refused.stdout
    (usb / "other-2.0.1.edgerelease").unlink()  # this one's file is gone when it is checked again
    other = console(data, "release", "trust", str(root_file(site["other"], tmp_path / "other-root.json")))
    assert other.returncode == 0, other.stderr
    assert "Checking the 2 refused release(s)" in other.stdout and "parts 2.0.0: verified" in other.stdout
    assert "parts 2.0.1: still refused: " in other.stdout and "Traceback" not in other.stdout + other.stderr
    entries = {(e["version"], e["source"].rsplit("/", 1)[-1]): e for e in listed(data).values()}
    assert entries[("2.0.0", "other-2.0.0.edgerelease")]["verified"]
    gone = entries[("2.0.1", "other-2.0.1.edgerelease")]
    assert not gone["verified"]
    assert f"the file it was imported from ({usb / 'other-2.0.1.edgerelease'}) is not there now" in gone["problem"]
    assert gone["problem"].endswith("import it again"), gone["problem"]
    events = [e for e in console_audit(data).entries() if e["event"] == "release checked again"]
    assert [(e["details"]["release"], e["details"]["verified"]) for e in events] == [
        ("parts 2.0.0", True), ("parts 2.0.0", True), ("parts 2.0.1", False)]


def test_release_remove_deletes_files_and_entry_and_keeps_what_a_rollout_needs(tmp_path, site):
    data = tmp_path / "console"
    assert console(data, "release", "trust", str(root_file(site["plant"], tmp_path / "root.json"))).returncode == 0
    assert console(data, "release", "import", str(site["usb"])).returncode == 0  # one verified, two refused
    junk = tmp_path / "notes.edgerelease"
    junk.write_text("not a release\n")
    assert console(data, "release", "import", str(junk)).returncode == 1
    entries = listed(data)
    assert len(entries) == 4
    ours = next(e for e in entries.values() if e["verified"])

    # "parts 2.0.0" names two releases here (ours and the other authority's): the command says so, removes none.
    ambiguous = console(data, "release", "remove", "parts 2.0.0")
    assert ambiguous.returncode == 2 and "2 releases are called 'parts 2.0.0'" in ambiguous.stderr
    assert ours["id"] in ambiguous.stderr and len(listed(data)) == 4

    # A rollout of ours was left unfinished (the console closed under it): ours stays, and the command says why.
    store = RolloutStore(data / "console.sqlite")
    store.save(Rollout("a1b2c3d4e5f6", ours["id"], "parts 2.0.0", [DeviceStep("dev1", "Press line 1")],
                       created_at=time.time() - 60))
    store.close()
    held = console(data, "release", "remove", ours["id"])
    assert held.returncode == 2, held.stdout
    assert "parts 2.0.0 is not removed: the rollout of it started" in held.stderr and "a1b2c3d4e5f6" in held.stderr
    assert "let it finish, or cancel it" in held.stderr and (data / "releases" / ours["id"]).is_dir()

    # The junk and a refused release go at once, by id and by label; the rest stays; the stick is not touched.
    refused = next(e for e in entries.values() if e["version"] == "2.0.1")
    junk_id = next(i for i, e in entries.items() if i.startswith("unreadable-"))
    removed = console(data, "release", "remove", junk_id, "parts 2.0.1")
    assert removed.returncode == 0, removed.stderr
    assert f"Removed notes.edgerelease ({junk_id}) from the library" in removed.stdout
    assert f"Removed parts 2.0.1 ({refused['id']})" in removed.stdout
    assert set(listed(data)) == set(entries) - {junk_id, refused["id"]}
    assert not (data / "releases" / junk_id).exists() and not (data / "releases" / refused["id"]).exists()
    assert junk.exists() and (site["usb"] / "other-2.0.1.edgerelease").exists()
    log = [(e["event"], e["details"].get("release")) for e in console_audit(data).entries()]
    assert log[-2:] == [("release removed", "notes.edgerelease"), ("release removed", "parts 2.0.1")]

    # Once the rollout is over, ours can go too; a name the library does not hold is an error, not a traceback.
    store = RolloutStore(data / "console.sqlite")
    finished = store.get("a1b2c3d4e5f6")
    finished.status = "done"
    store.save(finished)
    store.close()
    assert console(data, "release", "remove", ours["id"]).returncode == 0
    assert not (data / "releases" / ours["id"]).exists()
    unknown = console(data, "release", "remove", ours["id"])
    assert unknown.returncode == 2 and f"no release '{ours['id']}' in the library" in unknown.stderr
    assert "Traceback" not in unknown.stderr
