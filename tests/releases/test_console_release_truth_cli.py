"""Issue 22, items 1 and 11, headless: `edge-console push` judges each device by the same rules as the console's
window, from what the device reports (a version not newer than the highest it has had, no release root, offline),
and `edge-console release install-trust` gives a device the release root this console trusts (admin only).
Real agents on 127.0.0.1 with TLS and pairing; a closed port on 127.0.0.1 stands for a device that is off."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT, Agent, pairing_code
from tests.support.updates import build

CONSOLE = [sys.executable, "-m", "edge_console.client.releases.cli"]
REPR = re.compile(r"0x[0-9a-f]{4,}|object at|SSLContext|Traceback")


def console(data: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([*CONSOLE, "--data-dir", str(data), *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert not REPR.search(result.stdout + result.stderr), result.stdout + result.stderr
    return result


def paired(data: Path, state: Path, address: str, role: str) -> None:
    code = pairing_code(state, role)
    for _ in range(5):  # a device takes about one pairing attempt a second, and says so
        result = console(data, "pair", address, "--code", code, "--name", f"{role} laptop")
        if "limiting pairing attempts" not in result.stderr:
            break
        time.sleep(1.0)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Line 1 trusts the release authority, Spare trusts none, Other trusts another authority; an admin console
    paired with all three, trusting the first authority; an address where nothing listens."""
    base = tmp_path_factory.mktemp("truth")
    authority = ReleaseAuthority.create(base / "authority")
    golden = golden_frames(base / "golden", count=4)
    roots = {"line-1": authority.root_json(), "other": ReleaseAuthority.create(base / "elsewhere").root_json()}
    devices = (("Line 1", "line-1"), ("Spare", "spare"), ("Other", "other"))
    agents = {name: Agent(base / folder, model=demo_model("parts-v1"), name=name, console=None,  # paired below
                          release_root=roots.get(folder), settings={"probation_s": 2}).start()
              for name, folder in devices}
    addresses = {name: f"127.0.0.1:{agent.port}" for name, agent in agents.items()}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addresses["Off"] = f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there
    admin = base / "admin-console"
    for name, folder in devices:
        paired(admin, base / folder, addresses[name], "admin")
    root = base / "root.json"
    root.write_bytes(authority.root_json())
    assert console(admin, "release", "trust", str(root)).returncode == 0
    release = authority.sign(build(demo_model("parts-v2"), "parts", "2.0.0", golden, base),
                             base / "parts-2.0.0.edgerelease")
    assert console(admin, "release", "import", str(release)).returncode == 0
    yield {"base": base, "admin": admin, "addresses": addresses, "root": root}
    for agent in agents.values():
        agent.stop()


def _steps(result: subprocess.CompletedProcess) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(result.stdout.splitlines()[-1])["steps"]}


def test_push_skips_what_the_devices_would_refuse_and_install_trust_makes_way(site):
    admin, at = site["admin"], site["addresses"]
    everyone = ",".join(at[name] for name in ("Line 1", "Spare", "Other", "Off"))
    pushed = console(admin, "push", "--release", "parts:2.0.0", "--devices", everyone, "--json")
    assert pushed.returncode == 0, pushed.stderr
    steps = _steps(pushed)
    assert steps["Line 1"]["phase"] == "good"
    assert steps["Spare"]["phase"] == "skipped" and steps["Spare"]["detail"].startswith("trusts no release root")
    assert steps["Other"]["phase"] == "skipped"
    assert re.fullmatch(r"trusts another release authority \(root v1, keys \w{8}…, \w{8}… and \d+ more\), not the "
                        r"one that signed parts 2\.0\.0: install this console's \(Install release trust…, as admin\)",
                        steps["Other"]["detail"]), steps["Other"]["detail"]
    assert steps[at["Off"]]["phase"] == "skipped"
    assert steps[at["Off"]]["detail"].startswith(f"offline: {at['Off']}: unreachable: connection refused")

    # Back to the factory model: the highest parts Line 1 has had is still 2.0.0, so the push is refused here.
    assert console(admin, "rollback", "--device", at["Line 1"]).returncode == 0
    again = console(admin, "push", "--release", "parts:2.0.0", "--devices", at["Line 1"])
    assert again.returncode == 1, again.stdout + again.stderr
    assert ("skipped: not newer than parts 2.0.0, the highest it has had: a device takes only a newer version; "
            "edge-console rollback can return it to 2.0.0, which it keeps") in again.stdout
    assert "nothing was sent, every device was skipped" in again.stdout

    # An operator console may not install release trust; the admin one may, and leaves a trusting device alone.
    operator = site["base"] / "operator-console"
    paired(operator, site["base"] / "spare", at["Spare"], "operator")
    assert console(operator, "release", "trust", str(site["root"])).returncode == 0
    refused = console(operator, "release", "install-trust", "--devices", at["Spare"])
    assert refused.returncode == 1 and "needs the admin role" in refused.stderr, refused.stderr
    installed = console(admin, "release", "install-trust", "--devices",
                        ",".join(at[name] for name in ("Spare", "Off", "Line 1", "Other")))
    assert installed.returncode == 1, installed.stderr  # the device that is off did not take it
    lines = installed.stdout.splitlines()
    assert lines[0].startswith(f"Spare ({at['Spare']}) now trusts release root v1 (keys ")
    assert lines[0].endswith("before: no release root")
    assert lines[1].startswith(f"Line 1 ({at['Line 1']}) already trusts this console's release authority")
    assert lines[2].startswith(f"Other ({at['Other']}) now trusts release root v1 (keys ")
    assert re.search(r"before: root v1 \(keys \w{8}…, \w{8}… and \d+ more\)$", lines[2]), lines[2]
    assert installed.stderr.strip() == (f"edge-console: {at['Off']}: release trust not installed: unreachable: "
                                        "connection refused (the host answers, but nothing listens on that port)")

    pushed = console(admin, "push", "--release", "parts:2.0.0", "--devices", f"{at['Spare']},{at['Other']}", "--json")
    assert pushed.returncode == 0, pushed.stderr
    steps = _steps(pushed)
    assert steps["Spare"]["phase"] == steps["Other"]["phase"] == "good", "the devices said to refuse take it now"


def test_install_trust_without_a_trusted_authority_says_what_to_do_first(tmp_path, site):
    result = console(tmp_path / "fresh", "release", "install-trust", "--devices", site["addresses"]["Spare"])
    assert result.returncode == 2
    assert result.stderr.strip() == ("edge-console: error: this console trusts no release authority: "
                                     "`edge-console release trust authority/metadata/1.root.json` first")
