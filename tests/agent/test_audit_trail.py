"""Issue 21 (7): the audit trail broke in ordinary use (the device's CLI and the running agent both wrote entry #1;
the console's Pair dialog and its release centre both wrote their own #1 and #8) and a log rewritten whole passed
`audit verify`. Now each log has one writer at a time (its lock), and each device signs its chain's head, which
every console checks against the pinned certificate and remembers.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.client.releases.audit_merge import AuditHeads, check
from edge_console.core.audit.anchor import SignedHead, head_is_signed_by, sign_head
from edge_console.core.audit.chain import make_entry
from edge_console.core.audit.log import AuditLog
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT, Agent, agent_cli, pairing_code
from tests.support.trust import console_identity

CONSOLE = [sys.executable, "-m", "edge_console.client.releases.cli"]


def _console(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CONSOLE, "--data-dir", str(data), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _append_many(path: str, who: str, count: int) -> None:
    log = AuditLog(Path(path))
    for n in range(count):
        log.append(who, "test entry", n=n)


def test_writers_in_several_processes_and_objects_keep_one_chain(tmp_path):
    path = tmp_path / "audit.log"
    here = [AuditLog(path), AuditLog(path)]  # the console's two writers, as the Pair dialog and release centre
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=_append_many, args=(str(path), f"process {i}", 60)) for i in range(2)]
    for p in others:
        p.start()
    for n in range(60):
        here[n % 2].append("this process", "test entry", n=n)
    for p in others:
        p.join(60)
        assert p.exitcode == 0
    entries = AuditLog(path).entries()
    assert [e["seq"] for e in entries] == list(range(1, 181))
    assert AuditLog(path).verify().ok


def test_terminal_commands_while_the_agent_writes_keep_one_chain(tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=demo_model("parts-v1"), console=None).start()  # paired below, by code
    root = tmp_path / "root.json"
    root.write_bytes(ReleaseAuthority.create(tmp_path / "authority").root_json())
    data = tmp_path / "console"
    try:
        # The README's order: the agent runs, then pair and trust-root on its terminal while a console pairs
        # (which the agent records itself).
        code = pairing_code(state, "admin")
        port = agent.port
        paired = subprocess.Popen([*CONSOLE, "--data-dir", str(data), "pair", f"127.0.0.1:{port}", "--code", code],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3):
            assert agent_cli("trust-root", str(root), "--state-dir", str(state), timeout=120).returncode == 0
        assert paired.wait(120) == 0, paired.stderr.read()
        verified = agent_cli("audit", "verify", "--state-dir", str(state), timeout=120)
        exported = _console(data, "audit", "export", "--devices", f"127.0.0.1:{port}")
    finally:
        agent.stop()
    assert verified.returncode == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["ok"] and report["entries"] >= 5
    seqs = [e["seq"] for e in AuditLog(state / "audit.log").entries()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert exported.returncode == 0, exported.stderr
    chains = json.loads(exported.stdout)["chains"]
    assert all(chain["ok"] for chain in chains), chains


def _rechain(path: Path, drop_seq: int) -> None:
    """What someone who can write the state folder does: drop an entry and chain the rest again."""
    kept = [e for e in AuditLog(path).entries() if e["seq"] != drop_seq]
    prev, lines = "", []
    for seq, entry in enumerate(kept, start=1):
        redone = make_entry(seq, prev, entry["at"], entry["actor"], entry["event"], entry["details"])
        lines.append(json.dumps(redone, separators=(",", ":")))
        prev = redone["hash"]
    path.write_text("\n".join(lines) + "\n")


def test_a_log_rewritten_whole_passes_the_devices_check_but_not_a_console_that_saw_it(tmp_path):
    state = tmp_path / "state"
    agent = Agent(state, model=demo_model("parts-v1"), console=None).start()  # paired below, by code
    data = tmp_path / "console"
    address = f"127.0.0.1:{agent.port}"
    try:
        assert _console(data, "pair", address, "--code", pairing_code(state, "admin")).returncode == 0
        pairing_code(state, "viewer")
        first = _console(data, "audit", "export", "--devices", address)  # the console sees (and keeps) the head
    finally:
        agent.stop()
    assert first.returncode == 0, first.stderr
    _rechain(state / "audit.log", drop_seq=2)
    fooled = agent_cli("audit", "verify", "--state-dir", str(state), timeout=120)
    assert json.loads(fooled.stdout)["ok"]  # the device is fooled
    agent.start(port=agent.port)  # the address the console knows it by
    try:
        second = _console(data, "audit", "export", "--devices", address)
    finally:
        agent.stop()
    assert second.returncode == 1
    assert "BROKEN AUDIT CHAIN" in second.stderr and "rewritten or cut" in second.stderr, second.stderr


def test_a_signed_head_verifies_only_against_its_devices_certificate(tmp_path):
    device = console_identity(tmp_path / "device", "edge-agent test")
    other = console_identity(tmp_path / "other", "edge-agent other")
    log = AuditLog(tmp_path / "audit.log")
    for n in range(3):
        log.append("device", "entry", n=n)
    seq, head = log.last()
    signed = sign_head(device.key_path.read_bytes(), "dev1", seq, head)
    assert head_is_signed_by(signed, device.cert_pem) and not head_is_signed_by(signed, other.cert_pem)
    forged = SignedHead("dev1", seq, "0" * 64, signed.signature)
    assert not head_is_signed_by(forged, device.cert_pem)
    with pytest.raises(ValueError):
        SignedHead.from_dict({"device_id": "dev1", "seq": "many"})

    heads = AuditHeads(tmp_path / "console.sqlite")
    entries = log.entries()
    assert check("dev", "dev1", entries, heads, signed, device.cert_pem).report.ok
    assert heads.get("dev1").seq == 3
    refused = check("dev", "dev1", entries, None, signed, other.cert_pem).report
    assert not refused.ok and "does not verify against its pinned certificate" in refused.problem
    cut = check("dev", "dev1", entries[:2], heads, None, None).report  # a log cut short after the console saw #3
    assert not cut.ok
