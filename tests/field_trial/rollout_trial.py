"""A whole staged rollout under faults: the console's own `edge-console push` (canary, then batches) to every device
of the site while a seeded chaos thread flaps links and kills agents (and restarts them). Then what must hold:
every device runs a verified model, the rollout's state (its JSON and the console's database) agrees with what the
devices run, a second push brings the devices the rollout failed on to the release, and every audit chain verifies.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import subprocess
import threading
import time

from tests.support.agent_harness import ROOT

from .console_side import CONSOLE_CLI
from .faults import check_device
from .results import FaultResult
from .site import FieldSite


class Chaos:
    """Every 1.5-4 s: one device's link down for 1-4 s, or its agent killed and started again 0.5-2 s later."""

    def __init__(self, site: FieldSite, rng: random.Random, devices) -> None:
        self.site, self.rng, self.devices = site, rng, list(devices)
        self.events: list[dict] = []
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.rng.uniform(1.5, 4.0)):
            device = self.rng.choice(self.devices)
            kind = self.rng.choice(("link", "link", "kill"))
            t = time.time()
            try:
                if kind == "link":
                    down = self.rng.uniform(1.0, 4.0)
                    self.site.net.set_link(device.ns, False)
                    self.stop.wait(down)
                    self.site.net.set_link(device.ns, True)
                    self.events.append({"t": t, "kind": "link", "device": device.index, "down_s": round(down, 1)})
                else:
                    device.kill()
                    self.stop.wait(self.rng.uniform(0.5, 2.0))
                    device.start()
                    self.events.append({"t": t, "kind": "kill", "device": device.index})
            except Exception as exc:  # noqa: BLE001 - reported with the rollout's figures
                self.errors.append(f"{kind} on {device.name}: {exc!r}")
                with contextlib.suppress(Exception):
                    self.site.net.set_link(device.ns, True)

    def heal(self) -> None:
        for device in self.devices:
            self.site.net.set_link(device.ns, True)
            if not device.running:
                device.start()


def _push(site: FieldSite, release_id: str, devices, canary: int, batch: int, chaos: Chaos | None,
          max_failure_pct: float = 60.0, timeout: float = 900.0) -> tuple[int, dict | None, str]:
    args = [*site.net.exec_prefix(site.net.console_ns), *CONSOLE_CLI, "--data-dir", str(site.console.data_dir), "push",
            "--release", release_id, "--devices", ",".join(d.host_port for d in devices), "--canary", str(canary),
            "--batch", str(batch), "--max-failure-pct", f"{max_failure_pct:g}", "--json"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    if chaos is not None:  # faults start once the console has reached every device (it checks them all first)
        deadline = time.monotonic() + 120
        while sum(" runs " in x or "skipped" in x for x in lines) < len(devices) and time.monotonic() < deadline \
                and proc.poll() is None:
            time.sleep(0.05)
        chaos.thread.start()
    # stdout is read here and stderr only by the reader (communicate() would read and close stderr under it)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        killer.cancel()
    reader.join(5)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        body = json.loads(last)
    except ValueError:
        body = None
    return proc.returncode, body, "".join(lines)


def _stored_rollout(site: FieldSite, rollout_id: str) -> dict | None:
    db = sqlite3.connect(site.console.data_dir / "console.sqlite")
    try:
        row = db.execute("SELECT body, status FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
    finally:
        db.close()
    return {"body": json.loads(row[0]), "status": row[1]} if row else None


def rollout_under_faults(site: FieldSite, rng: random.Random, release, version: str, canary: int = 1,
                         batch: int = 3, chaos: bool = True) -> tuple[FaultResult, dict]:
    result = FaultResult("rollout_under_faults", "edge-console push (canary, batches) while links flap (link state) "
                                                 "and agents are killed (SIGKILL) and restarted")
    t0 = time.monotonic()
    imported = site.console.cli("release", "import", str(release))
    if imported.returncode != 0:
        raise RuntimeError(f"the console would not import {release.name}: {imported.stdout[-800:]}"
                           f"{imported.stderr[-800:]}")
    release_id = f"parts:{version}"
    devices = list(site.devices)
    monkey = Chaos(site, rng, devices) if chaos else None
    try:
        rc, body, log = _push(site, release_id, devices, canary, batch, monkey)
    finally:
        if monkey is not None:
            monkey.stop.set()
            if monkey.thread.is_alive():
                monkey.thread.join(30)
            monkey.heal()
    first_pass_s = time.monotonic() - t0
    outcome: dict = {"release": version, "devices": len(devices), "canary": canary, "batch": batch,
                     "first_push_rc": rc, "first_push_s": round(first_pass_s, 1)}
    if monkey is not None:
        outcome["faults_injected"] = {"link": sum(e["kind"] == "link" for e in monkey.events),
                                      "kill": sum(e["kind"] == "kill" for e in monkey.events)}
        if monkey.errors:
            outcome["chaos_errors"] = monkey.errors[:3]
    if body is None:
        result.trial(False, f"the push printed no rollout (rc {rc}): {log[-1500:]}")
        return result, outcome
    outcome["status"] = body["status"]
    phases = {s["device_id"]: s["phase"] for s in body["steps"]}
    outcome["first_pass"] = {p: list(phases.values()).count(p) for p in sorted(set(phases.values()))}
    # The rollout's own record: the console's database says what its JSON said.
    stored = _stored_rollout(site, body["id"])
    consistent = stored is not None and stored["status"] == body["status"] and \
        {s["device_id"]: s["phase"] for s in stored["body"]["steps"]} == phases
    problems = [] if consistent else [f"the console's database disagrees with the push's answer: {stored}"]
    # Each device against what the rollout says of it.
    for device in devices:
        ok, why, lost = check_device(site, device, timeout=90)
        active = device.lifecycle().get("active") or {}
        on_release = active.get("version") == version
        phase = phases.get(device.id)
        if phase == "good" and not on_release:
            problems.append(f"{device.name}: the rollout says good, the device runs {active.get('version')}")
        if phase == "failed" and on_release and device.lifecycle().get("state") == "good":
            outcome.setdefault("failed_but_installed", []).append(device.name)  # the console gave up too early
        result.trial(ok, why, lost)
    # Converge: push again to every device the rollout did not finish, with no faults.
    todo = [d for d in devices if (d.lifecycle().get("active") or {}).get("version") != version]
    outcome["second_push_devices"] = len(todo)
    if todo:
        rc2, body2, log2 = _push(site, release_id, todo, canary=0, batch=len(todo), chaos=None)
        outcome["second_push_status"] = (body2 or {}).get("status")
        if body2 is None or body2["status"] != "done":
            problems.append(f"the second push did not finish: rc {rc2}: {log2[-800:]}")
    on_release = [d for d in devices if (d.lifecycle().get("active") or {}).get("version") == version]
    outcome["on_release_at_end"] = len(on_release)
    for device in devices:
        ok, why, lost = check_device(site, device, timeout=60)
        if not ok:
            problems.append(why)
    # Every audit chain (the console's and each device's), merged and verified by the console.
    audit = site.console.cli("audit", "export", "--devices", ",".join(d.host_port for d in devices), "--format",
                             "json", timeout=300)
    chains = []
    with contextlib.suppress(ValueError, TypeError):
        chains = json.loads(audit.stdout)["chains"]
    outcome["audit_chains"] = len(chains)
    outcome["audit_chains_ok"] = bool(chains) and audit.returncode == 0 and all(c["ok"] for c in chains) and \
        len(chains) == len(devices) + 1
    if not outcome["audit_chains_ok"]:
        problems.append(f"audit export: rc {audit.returncode}, {[c for c in chains if not c['ok']][:3]}, "
                        f"{audit.stderr[-500:]}")
    outcome["rollout_state_consistent"] = consistent
    outcome["every_device_on_verified_model"] = all(d.expected_model_sha() in d.verified_models() for d in devices)
    outcome["all_on_release_at_end"] = len(on_release) == len(devices)
    result.trial(not problems and outcome["all_on_release_at_end"], "; ".join(problems)[:1500])
    outcome["total_s"] = round(time.monotonic() - t0, 1)
    return result, outcome
